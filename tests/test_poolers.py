"""schedctl behind a real PgBouncer with stock settings, as the host's operators run it: every
command through a transaction-mode pool; `migrate` refused there at once and run over
SCHEDCTL_MIGRATE_DATABASE_URL instead (four at once, applied once); concurrent and large tick
passes exactly once, without server-side prepared statements; a lock held elsewhere given up
after SCHEDCTL_LOCK_TIMEOUT; a database in a time zone with daylight saving keeping the grid
exact; and a session-mode pool."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import (
    Result,
    assert_error,
    fingerprint,
    finish_cli_process,
    parse_time,
    run_cli,
    run_cli_subprocess,
    seed_due,
    start_cli_process,
)
from tests.servers import PgBouncer, StartPgBouncer

pytest_plugins = ("tests.conftest_servers",)

Connection = psycopg.Connection[tuple[Any, ...]]

POOL_SIZE = 4  # server connections per database and user: fewer than the ticks below


# ---------------------------------------------------------------- helpers


@pytest.fixture
def bouncer(start_pgbouncer: StartPgBouncer, database_url: str) -> PgBouncer:
    """A transaction-mode PgBouncer in front of this test's migrated database."""
    return start_pgbouncer(database_url, pool_mode="transaction", default_pool_size=POOL_SIZE)


@pytest.fixture
def pooled_url(bouncer: PgBouncer, database_url: str) -> str:
    """This test's database, through the bouncer."""
    return bouncer.url_for(database_url)


@pytest.fixture
def direct(database_url: str) -> Iterator[Connection]:
    """A direct autocommit connection to this test's database, for setting up and checking."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def schedctl(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """schedctl in this process, with SCHEDCTL_DATABASE_URL set to `url` (and `env`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCHEDCTL_DATABASE_URL", url)
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        return run_cli(list(args))


def ok_json(result: Result) -> Any:
    """The JSON document of a command that succeeded."""
    assert result.code == 0, (result.code, result.stderr)
    return json.loads(result.stdout)


def due_slots(conn: Connection) -> set[tuple[str, datetime]]:
    return set(
        conn.execute(
            "SELECT id::text, next_run_at FROM schedulers WHERE is_enabled AND next_run_at <= now()"
        ).fetchall()
    )


def job_slots(conn: Connection) -> list[tuple[str, datetime]]:
    """(scheduler, slot) of every job a tick made."""
    return [
        (sid, slot)
        for sid, slot in conn.execute(
            "SELECT j.scheduler_id::text, ss.slot FROM jobs j"
            " JOIN schedctl.served_slots ss ON ss.job_id = j.id"
        ).fetchall()
    ]


def one(conn: Connection, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def check_tick(summary: dict[str, Any]) -> None:
    """A tick summary that adds up and reports no failure."""
    assert summary["due"] == summary["created"] + summary["skipped"] + summary["failed"]
    assert summary["failed"] == 0 and summary["errors"] == [], summary["errors"][:3]
    assert len(summary["jobs"]) == summary["created"]


# ---------------------------------------------------------------- every command


def test_every_command_works_through_a_transaction_pooler(
    pooled_url: str, direct: Connection
) -> None:
    org = ok_json(schedctl(pooled_url, "org", "create", "Acme", "--json"))
    assert [o["id"] for o in ok_json(schedctl(pooled_url, "org", "list", "--json"))] == [org["id"]]

    alpha = ok_json(
        schedctl(pooled_url, "create", "alpha.com", "--every", "6h", "--include", "/blog", "--json")
    )
    beta = ok_json(
        schedctl(pooled_url, "create", "beta.org", "--every", "12h", "--overlap", "skip", "--json")
    )
    assert (alpha["organisation_id"], alpha["include_paths"]) == (org["id"], ["/blog"])
    listed = ok_json(schedctl(pooled_url, "list", "--json"))
    assert [s["id"] for s in listed] == [alpha["id"], beta["id"]]  # soonest first

    shown = ok_json(schedctl(pooled_url, "show", "alpha.com", "--next", "3", "--json"))
    assert shown["id"] == alpha["id"] and len(shown["next_runs"]) == 3
    assert shown["last_job"] is None

    updated = ok_json(schedctl(pooled_url, "update", "alpha.com", "--every", "24h", "--json"))
    expected = parse_time(alpha["next_run_at"]) + timedelta(hours=18)
    assert parse_time(updated["next_run_at"]) == expected
    paused = ok_json(schedctl(pooled_url, "pause", "beta.org", "--reason", "audit", "--json"))
    assert (paused["is_enabled"], paused["pause_reason"]) == (False, "audit")
    resumed = ok_json(schedctl(pooled_url, "resume", "beta.org", "--json"))
    assert (resumed["is_enabled"], resumed["pause_reason"]) == (True, None)

    job = ok_json(schedctl(pooled_url, "run", "alpha.com", "--json"))
    assert (job["scheduler_id"], job["status"]) == (alpha["id"], "pending")
    direct.execute(
        "UPDATE schedulers SET next_run_at = now() - interval '1 minute' WHERE id = %s",
        [beta["id"]],
    )
    ticked = ok_json(schedctl(pooled_url, "tick", "--json"))
    check_tick(ticked)
    assert [j["scheduler_id"] for j in ticked["jobs"]] == [beta["id"]]
    history = ok_json(schedctl(pooled_url, "history", "alpha.com", "--json"))
    assert [j["id"] for j in history] == [job["id"]]
    log = ok_json(schedctl(pooled_url, "log", "--json"))
    assert {"create", "update", "pause", "resume", "run"} <= {e["action"] for e in log}
    status = ok_json(schedctl(pooled_url, "status", "--json"))
    assert (status["ok"], status["enabled"], status["due"]) == (True, 2, 0)
    assert status["last_tick"]["created"] == 1

    deleted = ok_json(schedctl(pooled_url, "delete", "alpha.com", "--yes", "--json"))
    assert deleted == {"id": alpha["id"], "deleted": True}
    assert one(direct, "SELECT count(*) FROM schedulers") == 2 - 1
    # The plain (non-JSON) output goes through the same path.
    plain = schedctl(pooled_url, "list")
    assert plain.code == 0 and "beta.org" in plain.stdout, plain.stderr


# ---------------------------------------------------------------- migrate


def test_migrate_through_a_pooler_is_refused_at_once_and_runs_over_the_direct_url(
    start_pgbouncer: StartPgBouncer, empty_database_url: str
) -> None:
    bouncer = start_pgbouncer(
        empty_database_url, pool_mode="transaction", default_pool_size=POOL_SIZE
    )
    pooled = bouncer.url_for(empty_database_url)

    started = time.monotonic()
    refused = run_cli_subprocess(["migrate"], {"SCHEDCTL_DATABASE_URL": pooled}, timeout=60)
    waited = time.monotonic() - started
    message = assert_error(refused, 2)
    assert "connection pooler" in message and "SCHEDCTL_MIGRATE_DATABASE_URL" in message
    assert waited < 8, waited  # at once: no lock waited for, no migration tried
    with psycopg.connect(empty_database_url) as conn:
        assert one(conn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'schedctl'") == 0
        assert one(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0

    # Four at once, the main URL through the pooler and the migration URL direct.
    env = {"SCHEDCTL_DATABASE_URL": pooled, "SCHEDCTL_MIGRATE_DATABASE_URL": empty_database_url}
    results = [
        finish_cli_process(proc, timeout=300)
        for proc in [start_cli_process(["migrate"], env) for _ in range(4)]
    ]
    for result in results:
        assert result.code == 0, result.stderr
        assert "error" not in result.stderr, result.stderr
    applied = [r for r in results if r.stdout.startswith("applied ")]
    assert len(applied) == 1, [r.stdout for r in results]
    assert all(r.stdout == "schema is up to date\n" for r in results if r not in applied)
    with psycopg.connect(empty_database_url) as conn:
        migrations = conn.execute(
            "SELECT migration_id, count(*) FROM schedctl._yoyo_migration GROUP BY 1 ORDER BY 1"
        ).fetchall()
    reported = [
        line.removeprefix("applied ")
        for line in applied[0].stdout.splitlines()
        if line.startswith("applied ")
    ]
    assert [m for m, _ in migrations] == reported
    assert all(count == 1 for _, count in migrations)
    # The other commands keep using the pooler, on the schema just applied.
    assert run_cli_subprocess(["org", "create", "Acme"], env).code == 0
    again = run_cli_subprocess(["migrate"], env)
    assert (again.code, again.stdout) == (0, "schema is up to date\n"), again.stderr


# ---------------------------------------------------------------- ticks


def test_four_ticks_at_once_through_the_pooler_make_exactly_one_job_per_due_slot(
    pooled_url: str, database_url: str, direct: Connection
) -> None:
    total = 4000
    seed_due(direct, total, "race")
    due = due_slots(direct)
    assert len(due) == total

    # All four claim at the same moment: held at a gate (a lock on schedulers) until each
    # waits at it with a server connection of the pool.
    waiting = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with psycopg.connect(database_url) as gate:
        gate.execute("LOCK TABLE schedulers IN EXCLUSIVE MODE")
        procs = [
            start_cli_process(["tick", "--json"], {"SCHEDCTL_DATABASE_URL": pooled_url})
            for _ in range(4)
        ]
        deadline = time.monotonic() + 90
        while one(direct, waiting) < 4:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                for proc in procs:
                    proc.kill()
                pytest.fail(
                    "the ticks did not all reach the gate: "
                    f"{[finish_cli_process(p) for p in procs]}"
                )
            time.sleep(0.02)
        gate.commit()
    results = [finish_cli_process(proc, timeout=300) for proc in procs]

    summaries = []
    for result in results:
        summary = ok_json(result)
        check_tick(summary)
        summaries.append(summary)
    assert sum(s["created"] for s in summaries) == sum(s["due"] for s in summaries) == total
    reported = [(j["scheduler_id"], j["slot"]) for s in summaries for j in s["jobs"]]
    assert len(set(reported)) == total
    jobs = job_slots(direct)
    assert len(jobs) == len(set(jobs)) == total
    assert set(jobs) == due
    assert one(direct, "SELECT count(*) FROM jobs") == total
    assert due_slots(direct) == set()


@pytest.mark.slow
def test_three_large_passes_in_a_row_through_the_pooler_serve_everything(
    pooled_url: str, direct: Connection
) -> None:
    total = 20_000
    seed_due(direct, total, "large")
    served: list[tuple[str, datetime]] = []
    # The second pass opts in to a second connection, through the same pool.
    for pass_no, connections in enumerate(("1", "2", "1")):
        if pass_no:  # every scheduler due again, on a slot not served before
            direct.execute(
                "UPDATE schedulers SET next_run_at = now() - make_interval(mins => %s)"
                " - (abs(hashtext(id::text)) %% 60000) * interval '1 millisecond'",
                [pass_no],
            )
        due = due_slots(direct)
        assert len(due) == total
        result = run_cli_subprocess(
            ["tick", "--json"],
            {"SCHEDCTL_DATABASE_URL": pooled_url, "SCHEDCTL_TICK_CONNECTIONS": connections},
            timeout=600,
        )
        assert "prepared statement" not in result.stderr, result.stderr
        summary = ok_json(result)
        check_tick(summary)
        assert (summary["due"], summary["created"]) == (total, total), pass_no
        assert {(j["scheduler_id"], parse_time(j["slot"])) for j in summary["jobs"]} == due
        served += due
        assert due_slots(direct) == set()
    jobs = job_slots(direct)
    assert len(jobs) == len(set(jobs)) == 3 * total
    assert set(jobs) == set(served)


# ---------------------------------------------------------------- a lock held elsewhere


def test_a_lock_held_elsewhere_is_given_up_after_the_lock_timeout_through_the_pooler(
    pooled_url: str, database_url: str, bouncer: PgBouncer, direct: Connection
) -> None:
    ok_json(schedctl(pooled_url, "org", "create", "Acme", "--json"))
    scheduler = ok_json(schedctl(pooled_url, "create", "alpha.com", "--every", "6h", "--json"))
    before = fingerprint(direct)
    env = {"SCHEDCTL_DATABASE_URL": pooled_url, "SCHEDCTL_LOCK_TIMEOUT": "1"}
    with psycopg.connect(database_url) as locker:
        locker.execute("SELECT 1 FROM schedulers WHERE id = %s FOR UPDATE", [scheduler["id"]])
        started = time.monotonic()
        result = run_cli_subprocess(["pause", "alpha.com"], env, timeout=120)
        waited = time.monotonic() - started
        locker.rollback()
    message = assert_error(result, 1)
    assert message.startswith("gave up waiting for a database lock after 1 s"), message
    assert "SCHEDCTL_LOCK_TIMEOUT" in message
    # The default lock timeout is 30 s: the setting held although the pooler gives the
    # session no settings of its own.
    assert waited < 10, waited
    assert fingerprint(direct) == before
    # The lock timeout was the transaction's alone: no server connection of the pool kept it.
    clients = [psycopg.connect(pooled_url, autocommit=True) for _ in range(POOL_SIZE * 2)]
    try:
        assert {one(client, "SHOW lock_timeout") for client in clients} == {"0"}
    finally:
        for client in clients:
            client.close()
    paused = ok_json(run_cli_subprocess(["pause", "alpha.com", "--json"], env))
    assert paused["is_enabled"] is False


# ---------------------------------------------------------------- a time zone with DST


def test_a_database_in_a_dst_time_zone_keeps_the_grid_exact_through_the_pooler(
    start_pgbouncer: StartPgBouncer, database_url: str, direct: Connection
) -> None:
    dbname = str(conninfo_to_dict(database_url)["dbname"])
    direct.execute(
        sql.SQL("ALTER DATABASE {} SET timezone = 'Europe/Berlin'").format(sql.Identifier(dbname))
    )
    # Started now, so that its server connections are new sessions in Berlin time.
    bouncer = start_pgbouncer(database_url, pool_mode="transaction", default_pool_size=POOL_SIZE)
    pooled = bouncer.url_for(database_url)
    with psycopg.connect(pooled, autocommit=True) as berlin:
        assert one(berlin, "SHOW timezone") == "Europe/Berlin"
    ok_json(schedctl(pooled, "org", "create", "Acme", "--json"))

    # Europe/Berlin moves its clocks at 01:00 UTC on 2027-03-28 (on) and 2027-10-31 (off).
    # Changing 6 h to 24 h re-anchors the grid at next_run_at - 6 h, before the change, and
    # puts the next run 24 h after it, after the change: exactly 24 h, not a wall-clock day.
    for domain, start, expected in (
        ("spring.com", "2027-03-27T21:00:00Z", "2027-03-28T15:00:00Z"),
        ("autumn.com", "2027-10-30T21:00:00Z", "2027-10-31T15:00:00Z"),
    ):
        created = ok_json(
            schedctl(pooled, "create", domain, "--every", "6h", "--start-at", start, "--json")
        )
        assert created["next_run_at"] == start
        shown = ok_json(schedctl(pooled, "show", domain, "--next", "5", "--json"))
        _assert_grid(shown["next_runs"], start, hours=6)  # across the change, 6 h apart
        updated = ok_json(schedctl(pooled, "update", domain, "--every", "24h", "--json"))
        assert updated["next_run_at"] == expected, domain
        stored = one(
            direct,
            "SELECT next_run_at = %s::timestamptz FROM schedulers WHERE id = %s",
            [expected, created["id"]],
        )
        assert stored is True, domain
        shown = ok_json(schedctl(pooled, "show", domain, "--next", "5", "--json"))
        assert shown["next_run_at"] == expected
        _assert_grid(shown["next_runs"], expected, hours=24)

    # A slot before the change of 2026-10-25 01:00 UTC, served after it: the next run is
    # on the slot's grid, a whole number of 24 h later.
    slot = "2026-10-20T06:00:00Z"
    late = ok_json(
        schedctl(pooled, "create", "late.com", "--every", "24h", "--start-at", slot, "--json")
    )
    ticked = ok_json(schedctl(pooled, "tick", "--json"))
    check_tick(ticked)
    (job,) = ticked["jobs"]
    assert (job["scheduler_id"], job["slot"]) == (late["id"], slot)
    now = one(direct, "SELECT now()")
    steps, rest = divmod(parse_time(job["next_run_at"]) - parse_time(slot), timedelta(hours=24))
    assert rest == timedelta(0), job["next_run_at"]
    assert (
        parse_time(job["next_run_at"]) - timedelta(hours=24) <= now < parse_time(job["next_run_at"])
    )
    # the grid times in between, but for those from before the scheduler existed
    created = parse_time(late["created_at"])
    assert ticked["missed"] == sum(
        parse_time(slot) + k * timedelta(hours=24) >= created for k in range(1, steps)
    )
    shown = ok_json(schedctl(pooled, "show", "late.com", "--next", "5", "--json"))
    _assert_grid(shown["next_runs"], job["next_run_at"], hours=24)
    listed = ok_json(schedctl(pooled, "list", "--json"))
    assert all(s["next_run_at"].endswith("Z") for s in listed)


def _assert_grid(runs: list[str], first: str, *, hours: int) -> None:
    assert runs[0] == first, runs
    assert all(run.endswith("Z") for run in runs), runs
    steps = [b - a for a, b in pairwise(parse_time(run) for run in runs)]
    assert steps == [timedelta(hours=hours)] * (len(runs) - 1), runs


# ---------------------------------------------------------------- session mode


def test_commands_work_through_a_session_mode_pooler(
    start_pgbouncer: StartPgBouncer, database_url: str, direct: Connection
) -> None:
    bouncer = start_pgbouncer(database_url, pool_mode="session", default_pool_size=2)
    pooled = bouncer.url_for(database_url)
    ok_json(schedctl(pooled, "org", "create", "Acme", "--json"))
    created = ok_json(
        schedctl(pooled, "create", "alpha.com", "--every", "12h", "--start-at", "now", "--json")
    )
    ticked = ok_json(schedctl(pooled, "tick", "--json"))
    check_tick(ticked)
    assert [j["scheduler_id"] for j in ticked["jobs"]] == [created["id"]]
    shown = ok_json(schedctl(pooled, "show", "alpha.com", "--json"))
    assert shown["last_job"]["id"] == ticked["jobs"][0]["job_id"]
    assert [s["id"] for s in ok_json(schedctl(pooled, "list", "--json"))] == [created["id"]]
    assert ok_json(schedctl(pooled, "status", "--json"))["ok"] is True
    assert (
        ok_json(schedctl(pooled, "update", "alpha.com", "--every", "6h", "--json"))[
            "schedule_interval_hours"
        ]
        == 6
    )
    # A pooler in session mode is a pooler too: migrate goes to the direct URL.
    assert "SCHEDCTL_MIGRATE_DATABASE_URL" in assert_error(schedctl(pooled, "migrate"), 2)
    migrated = schedctl(pooled, "migrate", env={"SCHEDCTL_MIGRATE_DATABASE_URL": database_url})
    assert (migrated.code, migrated.stdout) == (0, "schema is up to date\n"), migrated.stderr
    assert one(direct, "SELECT count(*) FROM jobs") == 1
