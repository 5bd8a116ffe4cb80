"""The host stores domain names as typed (letter case, Unicode, a trailing dot kept). schedctl
reuses the host's row for the same host name in whatever spelling it was stored, finds a
scheduler by any spelling of its domain, and stores a domain new to the host in normal form
(lowercase A-label)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.helpers import (
    Result,
    assert_error,
    make_due,
    make_org,
    make_scheduler,
    run_cli,
    with_database,
)

Conn = psycopg.Connection[tuple[Any, ...]]
Cli = Callable[..., Result]

# The host's rows, and spellings an operator may type for each: the first is given to
# `create`, every one must find the same row.
SPELLINGS = {
    "Mixed-Case.com": ["mixed-case.com", "MIXED-CASE.COM", "https://www.Mixed-Case.com/"],
    "bücher.de": ["xn--bcher-kva.de", "BÜCHER.de", "bücher.de", "XN--BCHER-KVA.DE."],
    "trailing-dot.org.": ["trailing-dot.org", "Trailing-Dot.ORG.", "http://trailing-dot.org"],
    "Xn--Mnchen-3ya.de": ["münchen.de", "xn--mnchen-3ya.de", "MÜNCHEN.DE"],
    "MÜLLER.de": ["müller.de", "xn--mller-kva.de", "Müller.de."],
}


def host_domains(conn: Conn, names: list[str]) -> dict[str, int]:
    """Insert the host's rows as it stores them (as typed); their ids by name."""
    ids: dict[str, int] = {}
    for name in names:
        row = conn.execute(
            "INSERT INTO public.domains (name) VALUES (%s) RETURNING id", [name]
        ).fetchone()
        assert row is not None
        ids[name] = int(row[0])
    return ids


def domain_rows(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT id, name FROM public.domains ORDER BY id").fetchall()


def scheduler_domain_id(conn: Conn, scheduler_id: str) -> int:
    row = conn.execute(
        "SELECT domain_id FROM public.schedulers WHERE id = %s", [scheduler_id]
    ).fetchone()
    assert row is not None, scheduler_id
    return int(row[0])


def test_create_reuses_the_hosts_row_in_whatever_spelling_it_is_stored(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    ids = host_domains(conn, list(SPELLINGS))
    rows = domain_rows(conn)
    for host_name, typed in SPELLINGS.items():
        doc = make_scheduler(cli, typed[0])
        assert scheduler_domain_id(conn, doc["id"]) == ids[host_name], (host_name, typed[0])
        for spelling in typed:
            shown = cli("show", spelling, "--json")
            assert shown.code == 0, (spelling, shown.stderr)
            assert json.loads(shown.stdout)["id"] == doc["id"], spelling
            # The same host name again, in any spelling: the scheduler already exists.
            again = cli("create", spelling, "--every", "12h", "--json")
            assert_error(again, 4)
    assert domain_rows(conn) == rows


def test_every_command_that_takes_a_ref_finds_it_by_any_spelling(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    ids = host_domains(conn, ["bücher.de", "Mixed-Case.com"])
    german = make_scheduler(cli, "BÜCHER.de")
    mixed = make_scheduler(cli, "mixed-case.com")
    make_due(conn, german["id"])
    ticked = cli("tick", "--json")
    assert ticked.code == 0, ticked.stderr
    [job] = json.loads(ticked.stdout)["jobs"]
    assert job["scheduler_id"] == german["id"]

    history = cli("history", "xn--bcher-kva.de", "--json")
    assert history.code == 0, history.stderr
    assert [j["id"] for j in json.loads(history.stdout)] == [job["job_id"]]
    for args in (
        ["update", "Bücher.DE.", "--concurrency", "7"],
        ["pause", "bücher.de", "--reason", "checking"],
        ["resume", "XN--BCHER-KVA.DE"],
        ["run", "https://www.bücher.de/"],
        ["log", "BÜCHER.DE"],
        ["history", "MIXED-CASE.com"],
        ["update", "Mixed-Case.COM.", "--max-pages", "10"],
    ):
        result = cli(*args, "--json")
        assert result.code == 0, (args, result.stderr)
    assert conn.execute(
        "SELECT concurrency FROM public.schedulers WHERE id = %s", [german["id"]]
    ).fetchone() == (7,)

    deleted = cli("delete", "xn--bcher-kva.de", "--yes", "--json")
    assert deleted.code == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"id": german["id"], "deleted": True}
    deleted = cli("delete", "MIXED-CASE.COM.", "--yes", "--json")
    assert deleted.code == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"id": mixed["id"], "deleted": True}
    # The host's rows stay; the audit trail of a deleted scheduler is still found by spelling.
    assert [row[0] for row in domain_rows(conn)] == sorted(ids.values())
    log = cli("log", "Bücher.de", "--json")
    assert log.code == 0, log.stderr
    assert {entry["action"] for entry in json.loads(log.stdout)} >= {"create", "delete"}
    assert_error(cli("show", "bücher.de"), 3)


def test_a_replace_tick_cancels_the_hosts_own_active_job_of_that_row(cli: Cli, conn: Conn) -> None:
    org = make_org(cli, "Acme")
    ids = host_domains(conn, ["Mixed-Case.com", "bücher.de"])
    for name, job_id in (("Mixed-Case.com", "host-mixed"), ("bücher.de", "host-buecher")):
        conn.execute(
            """
            INSERT INTO public.jobs (id, domain_id, organisation_id, status, progress,
                                     created_at, concurrency, find_links, max_pages, source_type)
            VALUES (%s, %s, %s, 'running', 0.5, now(), 5, TRUE, 0, 'manual')
            """,
            [job_id, ids[name], org],
        )
    replacing = make_scheduler(cli, "mixed-case.com", "--overlap", "replace")
    skipping = make_scheduler(cli, "xn--bcher-kva.de", "--overlap", "skip")
    for doc in (replacing, skipping):
        make_due(conn, doc["id"])

    ticked = cli("tick", "--json")
    assert ticked.code == 0, ticked.stderr
    summary = json.loads(ticked.stdout)
    assert (summary["created"], summary["skipped"]) == (1, 1)
    [made] = summary["jobs"]
    assert made["scheduler_id"] == replacing["id"]
    assert conn.execute(
        "SELECT status, completed_at IS NOT NULL FROM public.jobs WHERE id = 'host-mixed'"
    ).fetchone() == ("cancelled", True)
    active = conn.execute(
        "SELECT id, domain_id FROM public.jobs "
        "WHERE status IN ('pending', 'initializing', 'running', 'paused') ORDER BY id"
    ).fetchall()
    assert sorted(active) == sorted(
        [(made["job_id"], ids["Mixed-Case.com"]), ("host-buecher", ids["bücher.de"])]
    )


def test_a_domain_new_to_the_host_is_stored_lowercase_as_its_a_label(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    # Near misses of the names below are other host names: none of them is reused.
    host_domains(conn, ["neu-laden.de.com", "Laden.de", "xn--mller-shop-9db.de.example.com"])
    rows = domain_rows(conn)
    for typed, stored in (
        ("Neu-Laden.DE.", "neu-laden.de"),
        ("https://www.Müller-Shop.de/", "xn--mller-shop-9db.de"),
        ("GRÜN.de", "xn--grn-ioa.de"),
    ):
        doc = make_scheduler(cli, typed)
        row = conn.execute(
            "SELECT d.name FROM public.domains d JOIN public.schedulers s ON s.domain_id = d.id "
            "WHERE s.id = %s",
            [doc["id"]],
        ).fetchone()
        assert row == (stored,), typed
    new_rows = [row for row in domain_rows(conn) if row not in rows]
    assert sorted(name for _, name in new_rows) == [
        "neu-laden.de",
        "xn--grn-ioa.de",
        "xn--mller-shop-9db.de",
    ]


# ---------------------------------------------------------------- a database in the C locale


@pytest.fixture
def c_locale_url(server_url: str) -> Iterator[str]:
    """A fresh database whose character classification is plain C: PostgreSQL's lower() there
    folds ASCII letters only."""
    name = f"schedctl_c_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
            ).format(sql.Identifier(name))
        )
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_an_uppercase_unicode_name_is_reused_in_a_c_locale_database(
    c_locale_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", c_locale_url)

    def schedctl(*args: str, env: dict[str, str] | None = None) -> Result:
        return run_cli(list(args))

    migrated = schedctl("migrate")
    assert migrated.code == 0, migrated.stderr
    make_org(schedctl, "Acme")
    with psycopg.connect(c_locale_url, autocommit=True) as conn:
        ids = host_domains(conn, ["MÜLLER.de"])
        doc = make_scheduler(schedctl, "müller.de")
        assert domain_rows(conn) == [(ids["MÜLLER.de"], "MÜLLER.de")]
        assert scheduler_domain_id(conn, doc["id"]) == ids["MÜLLER.de"]
        shown = schedctl("show", "Müller.de", "--json")
        assert shown.code == 0, shown.stderr
