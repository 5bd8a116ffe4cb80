"""Every exit code, each with its own test: one `error:` line on stderr, and
nothing on stdout for exits 2-5."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest

from tests.helpers import (
    Cli,
    Conn,
    assert_error,
    fetch_one,
    fingerprint,
    make_due,
    make_org,
    make_scheduler,
    run_cli,
)

UNREACHABLE = "postgresql://schedctl:s3cr3t-pw@127.0.0.1:1/postgres"


# ------------------------------------------------------------------ 0


def test_exit_0_on_success_with_nothing_on_stderr(cli: Cli) -> None:
    make_org(cli, "Acme")
    for args in (("create", "example.com", "--every", "6h"), ("list",), ("show", "example.com")):
        result = cli(*args)
        assert (result.code, result.stderr) == (0, ""), args
        assert result.stdout != ""


# ------------------------------------------------------------------ 1


def test_exit_1_when_tick_has_a_failing_scheduler(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    good = make_scheduler(cli, "example.com")
    bad = make_scheduler(cli, "example.org")
    for doc in (good, bad):
        make_due(conn, doc["id"])
    bad_domain = fetch_one(conn, "SELECT domain_id FROM schedulers WHERE id = %s", [bad["id"]])[0]
    conn.execute(f"ALTER TABLE jobs ADD CONSTRAINT host_refuses CHECK (domain_id <> {bad_domain})")

    result = cli("tick", "--json")
    assert result.code == 1
    summary = json.loads(result.stdout)  # the summary is still printed
    assert (summary["due"], summary["created"], summary["failed"]) == (2, 1, 1)
    assert [e["scheduler_id"] for e in summary["errors"]] == [bad["id"]]
    assert "host_refuses" in summary["errors"][0]["message"]

    # The failing scheduler stays due, so the next pass fails again; the good one is done.
    again = cli("tick", "--json")
    assert again.code == 1
    assert (json.loads(again.stdout)["due"], json.loads(again.stdout)["failed"]) == (1, 1)


def test_exit_1_plain_tick_reports_the_failure_on_stderr(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    bad = make_scheduler(cli, "example.org")
    make_due(conn, bad["id"])
    conn.execute(
        """
        CREATE FUNCTION host_no_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the host refuses this job'; END $$;
        CREATE TRIGGER host_no_jobs BEFORE INSERT ON jobs
            FOR EACH ROW EXECUTE FUNCTION host_no_jobs();
        """
    )
    result = cli("tick")
    assert result.code == 1
    assert "1 failed" in result.stdout
    assert result.stderr == (f"error: scheduler {bad['id']}: the host refuses this job\n")


# ------------------------------------------------------------------ 2


USAGE_ERRORS = [
    ("list", "--bogus"),
    ("create", "--every", "6h"),  # missing DOMAIN
    ("show",),  # missing REF
    ("create", "example.com", "--every", "6h", "--concurrency", "many"),
    ("create", "example.com", "--every", "6h", "--max-pages", "1.5"),
    ("history", "example.com", "--limit", "x"),
    ("tick", "--limit", "0"),
    ("nosuchcommand",),
    ("create", "example.com", "--every"),  # option without its value
    ("org", "create"),
    ("org", "nosuchcommand"),
]


def _problems(check: Callable[[tuple[str, ...]], None], cases: list[tuple[str, ...]]) -> list[str]:
    """Run `check` on every case; the cases it failed for, with why."""
    problems = []
    for args in cases:
        try:
            check(args)
        except AssertionError as exc:
            problems.append(f"{' '.join(args)}: {exc}")
    return problems


def test_exit_2_usage_errors_are_one_line(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    before = fingerprint(conn)

    def check(args: tuple[str, ...]) -> None:
        message = assert_error(cli(*args), 2)
        assert "Traceback" not in message
        assert "╭" not in message  # no rich panel

    assert _problems(check, USAGE_ERRORS) == []
    assert fingerprint(conn) == before


def test_exit_2_the_json_flag_does_not_put_anything_on_stdout(cli: Cli) -> None:
    make_org(cli, "Acme")
    assert_error(cli("create", "localhost", "--every", "6h", "--json"), 2)


# ------------------------------------------------------------------ 3


REF_COMMANDS = [
    ("show", "{ref}"),
    ("history", "{ref}"),
    ("update", "{ref}", "--concurrency", "3"),
    ("delete", "{ref}", "--yes"),
    ("pause", "{ref}"),
    ("resume", "{ref}"),
    ("run", "{ref}"),
]


def test_exit_3_another_organisations_scheduler_looks_like_a_missing_one(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    make_org(cli, "Other")
    theirs = make_scheduler(cli, "theirs.com", "--org", "Other")
    missing_id = str(uuid.uuid4())
    before = fingerprint(conn)

    def message(command: tuple[str, ...], ref: str) -> str:
        args = [part.format(ref=ref) for part in command]
        return assert_error(cli(*args, "--org", "Acme", "--json"), 3).replace(ref, "<REF>")

    def check(command: tuple[str, ...]) -> None:
        by_id, missing_by_id = message(command, theirs["id"]), message(command, missing_id)
        by_domain = message(command, "theirs.com")
        missing_by_domain = message(command, "nothere.com")
        assert by_id == missing_by_id
        assert by_domain == missing_by_domain
        assert by_id == by_domain
        assert "<REF>" in by_id

    assert _problems(check, REF_COMMANDS) == []
    assert fingerprint(conn) == before


def test_exit_3_for_a_ref_that_is_neither_id_nor_domain(cli: Cli) -> None:
    make_org(cli, "Acme")
    assert_error(cli("show", "not a domain/at all"), 3)


def test_exit_3_for_an_unknown_organisation(cli: Cli) -> None:
    make_org(cli, "Acme")
    message = assert_error(cli("list", "--org", "Nobody", "--json"), 3)
    assert "Nobody" in message


# ------------------------------------------------------------------ 4


@pytest.mark.parametrize("spelling", ["example.com", "https://WWW.EXAMPLE.com/"])
def test_exit_4_on_a_duplicate_create(cli: Cli, conn: Conn, spelling: str) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    before = fingerprint(conn)
    message = assert_error(cli("create", spelling, "--every", "12h", "--json"), 4)
    assert "example.com" in message
    assert "already exists" in message
    assert fingerprint(conn) == before


def test_the_same_domain_in_another_organisation_is_no_conflict(cli: Cli) -> None:
    make_org(cli, "Acme")
    make_org(cli, "Other")
    first = make_scheduler(cli, "example.com", "--org", "Acme")
    second = make_scheduler(cli, "example.com", "--org", "Other")
    assert first["id"] != second["id"]


# ------------------------------------------------------------------ 5


UNREACHABLE_COMMANDS = [
    ("list", "--json"),
    ("org", "list", "--json"),
    ("create", "example.com", "--every", "6h", "--json"),
    ("tick", "--json"),
    ("migrate", "--json"),
    ("status", "--json"),
    ("pg-cron", "install", "--json"),
    ("pg-cron", "show", "--json"),
]


def test_exit_5_when_the_database_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", UNREACHABLE)
    monkeypatch.setenv("SCHEDCTL_CONNECT_TIMEOUT", "2")

    def check(args: tuple[str, ...]) -> None:
        result = run_cli(list(args))
        assert "connect" in assert_error(result, 5)
        assert "s3cr3t-pw" not in result.stderr

    assert _problems(check, UNREACHABLE_COMMANDS) == []


def test_exit_5_unreachable_through_database_url_too(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"DATABASE_URL": UNREACHABLE, "SCHEDCTL_CONNECT_TIMEOUT": "2"}
    assert cli("org", "list", env=env).code == 0  # SCHEDCTL_DATABASE_URL wins
    monkeypatch.delenv("SCHEDCTL_DATABASE_URL")
    assert_error(cli("org", "list"), 5)


NOT_MIGRATED_COMMANDS = [
    ("list", "--json"),
    ("org", "list", "--json"),
    ("org", "create", "Acme"),
    ("create", "example.com", "--every", "6h", "--json"),
    ("show", "example.com"),
    ("history", "example.com"),
    ("tick", "--json"),
    ("tick", "--dry-run"),
    ("status", "--json"),
    ("pg-cron", "install"),
    ("pg-cron", "show"),
    ("pg-cron", "remove"),
]


def test_exit_5_when_the_schema_is_not_migrated(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", empty_database_url)

    def check(args: tuple[str, ...]) -> None:
        assert "schedctl migrate" in assert_error(run_cli(list(args)), 5)

    assert _problems(check, NOT_MIGRATED_COMMANDS) == []


def test_exit_5_when_only_part_of_the_schema_is_migrated(
    cli: Cli, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schedctl import migrate
    from schedctl.config import Settings

    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", empty_database_url)
    assert migrate.migrate(Settings(), upto="0002_schedulers").migrations == [
        "0001_host_tables",
        "0002_schedulers",
    ]
    for args in (
        ("org", "create", "Acme"),
        ("create", "example.com", "--every", "6h"),
        ("list",),
        ("tick",),
    ):
        message = assert_error(cli(*args), 5)
        assert "schedctl migrate" in message, args
