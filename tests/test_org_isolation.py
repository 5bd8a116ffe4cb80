"""Organisation isolation: one organisation never sees, names or changes another's schedulers.

Naming another organisation's scheduler, by id or by domain, is exit 3 worded exactly as for
a scheduler that does not exist, and writes nothing. `list`, `history`, `log` and `status`
show only the organisation's own rows; `list` and `status` show every organisation's only
with `--all-orgs`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import Cli, Conn, SharedWorld, SharedWorlds, check_result, fingerprint


def _ok(result: Any) -> Any:
    assert result.code == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.lstrip().startswith(("{", "[")) else None


@pytest.fixture
def orgs(cli: Cli, conn: Conn) -> dict[str, Any]:
    """Acme and Globex, each with its own schedulers, jobs and audit trail; both have one
    for shared.com. Globex also has a scheduler it deleted."""
    return _two_organisations(cli, conn)


@pytest.fixture(scope="module")
def shared_orgs(
    shared_worlds: SharedWorlds, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SharedWorld, dict[str, Any]]]:
    """The world of `orgs`, shared by the checks that change nothing in it."""
    made: dict[str, Any] = {}

    def setup(cli: Cli, conn: Conn, folder: Path) -> None:
        made.update(_two_organisations(cli, conn))

    with shared_worlds(tmp_path_factory.mktemp("orgs"), setup) as world:
        yield world, made


def _two_organisations(cli: Cli, conn: Conn) -> dict[str, Any]:
    acme = _ok(cli("org", "create", "Acme", "--json"))["id"]
    globex = _ok(cli("org", "create", "Globex", "--json"))["id"]
    ids = {}
    for org, domain in [
        (acme, "acme-shop.com"),
        (acme, "shared.com"),
        (globex, "globex-shop.com"),
        (globex, "shared.com"),
        (globex, "globex-gone.com"),
    ]:
        doc = _ok(cli("create", domain, "--every", "6h", "--org", org, "--json"))
        ids[(org, domain)] = doc["id"]
    # Every scheduler gets a job from tick, and Globex's also a manual run and a pause. They
    # existed before the times they are due for (lag counts from a scheduler's creation).
    conn.execute(
        "UPDATE schedulers SET next_run_at = now() - interval '1 minute',"
        " created_at = now() - interval '1 day'"
    )
    _ok(cli("tick", "--json"))
    _ok(cli("run", "globex-shop.com", "--org", globex, "--json"))
    _ok(cli("pause", "shared.com", "--org", globex, "--reason", "globex only", "--json"))
    _ok(cli("delete", "globex-gone.com", "--org", globex, "--yes", "--json"))
    # Globex's schedulers are due again: lag that Acme's status must not count.
    conn.execute(
        "UPDATE schedulers SET next_run_at = now() - interval '2 hours' WHERE organisation_id = %s",
        [globex],
    )
    return {"acme": acme, "globex": globex, "ids": ids}


# Every command that takes a REF, with options that would make it change something.
REF_COMMANDS = [
    ["show"],
    ["show", "--next", "3", "--json"],
    ["update", "--concurrency", "7"],
    ["update", "--every", "12h", "--json"],
    ["delete", "--yes"],
    ["delete", "--yes", "--json"],
    ["history"],
    ["history", "--json"],
    ["pause", "--reason", "not yours"],
    ["resume"],
    ["run"],
    ["run", "--json"],
    ["log"],
    ["log", "--json"],
]


def _foreign_refs(orgs: dict[str, Any]) -> list[str]:
    globex = orgs["globex"]
    shop = orgs["ids"][(globex, "globex-shop.com")]
    gone = orgs["ids"][(globex, "globex-gone.com")]
    return [
        shop,  # by id
        shop.upper(),
        f"  {shop}  ",
        "globex-shop.com",  # by domain
        "https://WWW.Globex-Shop.com/",
        gone,  # deleted, but still in Globex's audit trail
        "globex-gone.com",
    ]


@pytest.mark.parametrize("command", REF_COMMANDS, ids=lambda c: " ".join(c))
def test_another_organisations_scheduler_is_not_found_and_untouched(
    shared_orgs: tuple[SharedWorld, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    world, orgs = shared_orgs
    cli = world.cli_for(monkeypatch)
    with psycopg.connect(world.url, autocommit=True) as conn:
        _not_found_and_untouched(cli, conn, orgs, command)


def _not_found_and_untouched(
    cli: Cli, conn: Conn, orgs: dict[str, Any], command: list[str]
) -> None:
    acme = orgs["acme"]
    for ref in _foreign_refs(orgs):
        before = fingerprint(conn)
        foreign = cli(command[0], ref, *command[1:], "--org", acme)
        check_result(foreign)
        assert foreign.code == 3, (ref, foreign)
        assert fingerprint(conn) == before, f"{command} {ref!r} from Acme changed something"
        # Worded exactly as for a scheduler that does not exist, of the same kind of name.
        missing = (str(uuid.uuid4()) if ref.strip().count("-") == 4 else "nowhere-at-all.com").join(
            ref.split(ref.strip())
        )
        absent = cli(command[0], missing, *command[1:], "--org", acme)
        assert absent.code == 3
        assert foreign.stderr.replace(ref.strip(), missing.strip()) == absent.stderr
        # The message names the organisation it looked in: the caller's own.
        assert foreign.stderr == f"error: no scheduler {ref.strip()!r} in organisation 'Acme'\n"


def test_the_organisations_own_scheduler_of_a_shared_domain_is_the_one_changed(
    cli: Cli, conn: Conn, orgs: dict[str, Any]
) -> None:
    acme, globex = orgs["acme"], orgs["globex"]
    ours = orgs["ids"][(acme, "shared.com")]
    theirs = orgs["ids"][(globex, "shared.com")]
    theirs_before = conn.execute(
        "SELECT s::text FROM schedulers s WHERE id = %s", [theirs]
    ).fetchone()
    updated = _ok(cli("update", "shared.com", "--concurrency", "9", "--org", acme, "--json"))
    assert (updated["id"], updated["concurrency"]) == (ours, 9)
    paused = _ok(cli("pause", "shared.com", "--org", acme, "--json"))
    assert paused["id"] == ours
    assert (
        conn.execute("SELECT s::text FROM schedulers s WHERE id = %s", [theirs]).fetchone()
        == theirs_before
    )


def test_creating_a_domain_another_organisation_schedules_is_no_conflict(
    cli: Cli, orgs: dict[str, Any]
) -> None:
    created = cli("create", "globex-shop.com", "--every", "24h", "--org", orgs["acme"], "--json")
    assert created.code == 0, created.stderr
    assert json.loads(created.stdout)["organisation_id"] == orgs["acme"]


def _org_ids_of(conn: Conn, table: str, ids: list[str]) -> set[str]:
    rows = conn.execute(
        f"SELECT DISTINCT organisation_id::text FROM {table} WHERE id::text = ANY(%s)", [ids]
    ).fetchall()
    return {row[0] for row in rows}


def test_list_shows_only_the_organisations_schedulers_unless_all_orgs(
    cli: Cli, conn: Conn, orgs: dict[str, Any]
) -> None:
    acme, globex = orgs["acme"], orgs["globex"]
    for flags in ([], ["--due"], ["--enabled"], ["--disabled"]):
        listed = _ok(cli("list", "--org", acme, "--json", *flags))
        assert {doc["organisation_id"] for doc in listed} <= {acme}
    listed = _ok(cli("list", "--org", acme, "--json"))
    assert sorted(doc["domain"] for doc in listed) == ["acme-shop.com", "shared.com"]
    assert _org_ids_of(conn, "schedulers", [doc["id"] for doc in listed]) == {acme}
    # The table for people names no other organisation's domain either.
    table = cli("list", "--org", acme)
    assert table.code == 0 and "globex" not in table.stdout
    everything = _ok(cli("list", "--all-orgs", "--json"))
    assert {doc["organisation_id"] for doc in everything} == {acme, globex}
    assert len(everything) == 4  # the deleted one is gone


def test_history_shows_only_the_organisations_jobs(
    cli: Cli, conn: Conn, orgs: dict[str, Any]
) -> None:
    acme, globex = orgs["acme"], orgs["globex"]
    ours = orgs["ids"][(acme, "shared.com")]
    # A job the host wrote inconsistently: linked to Acme's scheduler, but Globex's.
    conn.execute(
        "INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,"
        " concurrency, find_links, max_pages, scheduler_id)"
        " SELECT 'foreign-job', domain_id, %s, 'pending', 0, now(), 1, TRUE, 0, id"
        " FROM schedulers WHERE id = %s",
        [globex, ours],
    )
    jobs = _ok(cli("history", "shared.com", "--org", acme, "--json"))
    assert len(jobs) == 1
    assert _org_ids_of(conn, "jobs", [job["id"] for job in jobs]) == {acme}
    shown = _ok(cli("show", "shared.com", "--org", acme, "--json"))
    assert shown["last_job"]["id"] == jobs[0]["id"]
    table = cli("history", "shared.com", "--org", acme)
    assert table.code == 0 and "foreign-job" not in table.stdout


def test_log_shows_only_the_organisations_audit_entries(
    cli: Cli, conn: Conn, orgs: dict[str, Any]
) -> None:
    acme, globex = orgs["acme"], orgs["globex"]
    entries = _ok(cli("log", "--org", acme, "--limit", "1000", "--json"))
    assert entries, "Acme's creates are in its log"
    assert {entry["organisation_id"] for entry in entries} == {acme}
    # Its schedulers' entries, and its own (org_create, without a domain).
    assert {entry["domain"] for entry in entries} == {"acme-shop.com", "shared.com", None}
    shared = _ok(cli("log", "shared.com", "--org", acme, "--json"))
    assert {entry["scheduler_id"] for entry in shared} == {orgs["ids"][(acme, "shared.com")]}
    assert all(entry.get("reason") != "globex only" for entry in shared)
    table = cli("log", "--org", acme, "--limit", "1000")
    assert table.code == 0 and "globex" not in table.stdout.lower()
    # Globex sees its own, including the deleted scheduler's entries.
    theirs = _ok(cli("log", "--org", globex, "--limit", "1000", "--json"))
    assert {entry["organisation_id"] for entry in theirs} == {globex}
    assert "globex-gone.com" in {entry["domain"] for entry in theirs}


def test_status_counts_only_the_organisations_schedulers_unless_all_orgs(
    cli: Cli, orgs: dict[str, Any]
) -> None:
    acme = orgs["acme"]
    ours = cli("status", "--org", acme, "--json")
    check_result(ours)
    report = json.loads(ours.stdout)
    # Globex's two overdue schedulers (one of them paused) are not Acme's problem.
    assert (report["enabled"], report["paused"], report["due"]) == (2, 0, 0)
    assert report["worst_lag_seconds"] < 3600
    assert ours.code == 0, report["problems"]
    everyone = cli("status", "--all-orgs", "--json")
    report = json.loads(everyone.stdout)
    assert (report["enabled"], report["paused"], report["due"]) == (3, 1, 1)
    assert report["worst_lag_seconds"] >= 7200 - 60
    assert everyone.code == 1  # the lag is over the default 5 minutes


def test_an_unknown_organisation_is_not_found_and_nothing_is_written(
    cli: Cli, conn: Conn, orgs: dict[str, Any]
) -> None:
    before = fingerprint(conn)
    for org in (
        str(uuid.uuid4()),
        "Initech",
        orgs["acme"][:-1] + ("1" if orgs["acme"][-1] != "1" else "2"),
    ):
        for command in (
            ["list"],
            ["status"],
            ["log"],
            ["show", "shared.com"],
            ["run", "shared.com"],
        ):
            result = cli(*command, "--org", org)
            check_result(result)
            assert result.code == 3, (command, org, result)
            assert result.stderr == f"error: organisation {org!r} not found\n"
    assert fingerprint(conn) == before
