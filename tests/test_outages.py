"""Outages, with real processes: a database that never answers, one not migrated, a lock
held by another session, and the connection cut in the middle of a tick pass.

Each ends in bounded time with a contract exit code and one `error:` line; nothing is left
half-written, and the next tick completes the work."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import psycopg
import pytest

from schedctl.config import Settings
from tests.helpers import Cli, Conn, check_result, fetch_one, fingerprint, run_cli_subprocess
from tests.helpers import finish_cli_process as _finish
from tests.helpers import start_cli_process as _start

# ---------------------------------------------------------------- unreachable


def test_a_database_that_never_answers_is_exit_5_within_the_connect_timeout(
    silent_port: int,
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{silent_port}/postgres"
    commands = [["tick"], ["tick", "--json"], ["status", "--json"], ["list"], ["migrate"]]
    procs = [
        _start(command, {"SCHEDCTL_DATABASE_URL": url, "SCHEDCTL_CONNECT_TIMEOUT": "2"})
        for command in commands
    ]
    # The default (10 s) bounds the wait too; started last, after the others.
    default = _start(["tick"], {"SCHEDCTL_DATABASE_URL": url})
    results = [_finish(proc, timeout=30) for proc in procs]
    two_seconds_ended = time.monotonic()
    default_result = _finish(default, timeout=30)
    default_ended = time.monotonic()
    for result in [*results, default_result]:
        check_result(result)
        assert result.code == 5, result
        assert result.stderr.startswith("error: cannot connect to the database: ")
        assert "timeout" in result.stderr.lower()
    # The 2 s setting replaced the default: the five gave up at least 5 s before the process
    # started after them with the default (10 s) did. Measured against that process, not the
    # clock, so that the start-up of six processes on a busy machine does not count.
    assert default_ended - two_seconds_ended > 5, default_ended - two_seconds_ended
    assert Settings().connect_timeout == 10


def test_a_refused_connection_is_exit_5(cli: Cli) -> None:
    for command in (["tick"], ["status"], ["migrate"], ["org", "list"]):
        result = cli(*command, env={"SCHEDCTL_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
        check_result(result)
        assert result.code == 5
        assert "Connection refused" in result.stderr


# ---------------------------------------------------------------- not migrated

EVERY_COMMAND = [
    ["org", "create", "Acme"],
    ["org", "list"],
    ["create", "example.com", "--every", "6h", "--org", "Acme"],
    ["list", "--org", "Acme"],
    ["list", "--all-orgs"],
    ["show", "example.com", "--org", "Acme"],
    ["update", "example.com", "--every", "12h", "--org", "Acme"],
    ["delete", "example.com", "--yes", "--org", "Acme"],
    ["history", "example.com", "--org", "Acme"],
    ["tick"],
    ["tick", "--json"],
    ["tick", "--dry-run"],
    ["pause", "example.com", "--org", "Acme"],
    ["resume", "example.com", "--org", "Acme"],
    ["run", "example.com", "--org", "Acme"],
    ["status"],
    ["status", "--all-orgs", "--json"],
    ["log", "--org", "Acme"],
]


def _expect_not_migrated(result: Any, command: list[str]) -> None:
    check_result(result)
    assert result.code == 5, (command, result)
    assert "run `schedctl migrate`" in result.stderr, (command, result)


def test_every_command_on_an_empty_database_says_to_migrate(
    cli: Cli, empty_database_url: str
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": empty_database_url}
    for command in EVERY_COMMAND:
        _expect_not_migrated(cli(*command, env=env), command)
    with psycopg.connect(empty_database_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)


@pytest.mark.parametrize("upto", ["0001_host_tables", "0002_schedulers"])
def test_a_partly_migrated_database_says_to_migrate(
    cli: Cli, empty_database_url: str, monkeypatch: pytest.MonkeyPatch, upto: str
) -> None:
    """The host's own tables exist (with an organisation and a due scheduler of the seed's
    columns, where the seed's table exists), schedctl's do not yet, or not all of them."""
    from schedctl.migrate import migrate

    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", empty_database_url)
    migrate(Settings(), upto=upto)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO organisations (name) VALUES ('Acme')")
        conn.execute("INSERT INTO domains (name) VALUES ('example.com')")
        if upto == "0002_schedulers":
            conn.execute(
                "INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours,"
                " next_run_at) SELECT d.id, o.id, 6, now() - interval '1 hour'"
                " FROM domains d, organisations o"
            )
        before = _rows_of(conn, upto)
        # Commands of schedctl's own tables; `org create` and `org list` may work on the
        # host's organisations table, which exists.
        for command in EVERY_COMMAND:
            if command[0] == "org":
                continue
            _expect_not_migrated(cli(*command), command)
        assert _rows_of(conn, upto) == before


def _rows_of(conn: Conn, upto: str) -> list[Any]:
    tables = ["organisations", "domains", "jobs"] + (
        ["schedulers"] if upto == "0002_schedulers" else []
    )
    return [
        conn.execute(f"SELECT t::text FROM {table} t ORDER BY 1").fetchall() for table in tables
    ]


# ---------------------------------------------------------------- a lock held elsewhere


def _due_world(cli: Cli, conn: Conn, count: int = 3) -> list[str]:
    assert cli("org", "create", "Acme").code == 0
    ids = []
    for n in range(count):
        result = cli("create", f"site{n}.com", "--every", "6h", "--start-at", "now", "--json")
        assert result.code == 0, result.stderr
        ids.append(json.loads(result.stdout)["id"])
    conn.execute("UPDATE schedulers SET next_run_at = now() - interval '1 minute'")
    return ids


@pytest.mark.slow
def test_tick_gives_up_on_a_table_lock_within_the_lock_timeout(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    _due_world(cli, conn)
    before = fingerprint(conn)
    with psycopg.connect(database_url) as locker:
        locker.execute("LOCK TABLE schedulers IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        result = _finish(
            _start(["tick"], {"SCHEDCTL_DATABASE_URL": database_url, "SCHEDCTL_LOCK_TIMEOUT": "2"}),
            timeout=60,
        )
        waited = time.monotonic() - started
        locker.rollback()
    check_result(result)
    assert result.code == 1, result
    assert result.stdout == ""
    assert result.stderr.startswith("error: gave up waiting for a database lock after 2 s")
    assert "SCHEDCTL_LOCK_TIMEOUT" in result.stderr
    assert waited < 20, waited
    # No job, no scheduler moved; only the failed pass was recorded for `status`.
    after = fingerprint(conn)
    assert {k: v for k, v in after.items() if k != "schedctl.tick_heartbeats"} == {
        k: v for k, v in before.items() if k != "schedctl.tick_heartbeats"
    }
    heartbeat = conn.execute("SELECT ok, created FROM schedctl.tick_heartbeats").fetchall()
    assert heartbeat == [(False, 0)]
    status = cli("status", "--json")
    assert status.code == 1
    assert any("last tick failed" in p for p in json.loads(status.stdout)["problems"])
    # Once the lock is gone, the next tick does the work.
    done = cli("tick", "--json")
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["created"] == 3


@pytest.mark.slow
def test_a_change_waits_for_a_locked_row_at_most_the_lock_timeout(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    ids = _due_world(cli, conn, count=1)
    before = fingerprint(conn)
    env = {"SCHEDCTL_DATABASE_URL": database_url, "SCHEDCTL_LOCK_TIMEOUT": "2"}
    with psycopg.connect(database_url) as locker:
        locker.execute("SELECT 1 FROM schedulers WHERE id = %s FOR UPDATE", [ids[0]])
        started = time.monotonic()
        procs = [
            _start(command, env)
            for command in (
                ["pause", "site0.com", "--org", "Acme"],
                ["update", "site0.com", "--every", "12h", "--org", "Acme"],
                ["run", "site0.com", "--org", "Acme"],
                ["delete", "site0.com", "--yes", "--org", "Acme"],
            )
        ]
        results = [_finish(proc, timeout=60) for proc in procs]
        waited = time.monotonic() - started
        # tick skips a locked scheduler rather than waiting for it.
        skipped = _finish(_start(["tick", "--json"], env), timeout=60)
        locker.rollback()
    for result in results:
        check_result(result)
        assert result.code == 1, result
        assert result.stderr.startswith("error: gave up waiting for a database lock after 2 s")
    assert waited < 20, waited
    assert skipped.code == 0, skipped.stderr
    assert json.loads(skipped.stdout)["due"] == 0
    after = fingerprint(conn)
    assert {k: v for k, v in after.items() if k != "schedctl.tick_heartbeats"} == {
        k: v for k, v in before.items() if k != "schedctl.tick_heartbeats"
    }


# ---------------------------------------------------------------- the connection cut mid-pass

DUE = 20_000


def _seed(conn: Conn) -> dict[str, datetime]:
    """DUE due schedulers over 4 organisations; returns each one's slot."""
    conn.execute(
        """
        WITH orgs AS (
            INSERT INTO organisations (name) SELECT 'Org ' || g FROM generate_series(0, 3) g
            RETURNING id
        ),
        numbered_orgs AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM orgs),
        doms AS (
            INSERT INTO domains (name)
            SELECT 'cut-' || g || '.com' FROM generate_series(1, %(n)s) g
            RETURNING id
        ),
        numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM doms)
        INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours, next_run_at)
        SELECT numbered.id, numbered_orgs.id, 6,
               now() - interval '1 minute' - numbered.k * interval '1 second'
        FROM numbered JOIN numbered_orgs ON numbered_orgs.k = numbered.k %% 4
        """,
        {"n": DUE},
    )
    return dict(conn.execute("SELECT id::text, next_run_at FROM schedulers").fetchall())


def _consistent(conn: Conn, slots: dict[str, datetime]) -> int:
    """Every job has its schedule advance and every advance its job; returns the jobs."""
    jobs = conn.execute(
        "SELECT j.scheduler_id::text, ss.slot, count(*) FROM jobs j"
        " LEFT JOIN schedctl.served_slots ss ON ss.job_id = j.id"
        " GROUP BY j.scheduler_id, ss.slot"
    ).fetchall()
    made = {sid: slot for sid, slot, count in jobs}
    assert all(count == 1 for _, _, count in jobs), "two jobs for one slot"
    assert all(made[sid] == slots[sid] for sid in made), "a job for another slot"
    now = fetch_one(conn, "SELECT now()")[0]
    for sid, next_run_at in conn.execute("SELECT id::text, next_run_at FROM schedulers"):
        if sid in made:  # its job exists: its schedule moved past the slot, onto the grid
            assert next_run_at > now and (next_run_at - slots[sid]).total_seconds() % 21600 == 0
        else:  # no job: the schedule did not move either
            assert next_run_at == slots[sid], sid
    return len(made)


def _slow_down_job_inserts(conn: Conn) -> None:
    """Each insert into jobs sleeps a little, so that a pass lasts long enough to be cut."""
    conn.execute(
        """
        CREATE FUNCTION test_slow_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(0.4); RETURN NULL; END $$;
        CREATE TRIGGER test_slow_jobs AFTER INSERT ON jobs
            FOR EACH STATEMENT EXECUTE FUNCTION test_slow_jobs();
        """
    )


@pytest.mark.slow
def test_the_connection_cut_mid_pass_leaves_no_partial_rows_and_the_next_tick_finishes(
    conn: Conn, database_url: str
) -> None:
    slots = _seed(conn)
    _slow_down_job_inserts(conn)
    tick = _start(["tick", "--json"], {"SCHEDCTL_DATABASE_URL": database_url})
    backend = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'schedctl' AND backend_xid IS NOT NULL"
    )
    deadline = time.monotonic() + 120
    # Cut it once a batch has committed, in the middle of the next one.
    while True:
        assert tick.poll() is None, f"tick ended before it could be cut: {tick.communicate()}"
        assert time.monotonic() < deadline, "tick never committed a batch"
        committed = fetch_one(conn, "SELECT count(*) FROM jobs")[0]
        pids = [row[0] for row in conn.execute(backend).fetchall()]
        if committed and pids:
            break
        time.sleep(0.02)
    terminated = conn.execute("SELECT pg_terminate_backend(%s)", [pids[0]]).fetchone()
    assert terminated == (True,)
    cut = _finish(tick, timeout=60)
    check_result(cut)
    assert cut.code == 1, cut
    # The server's reason, whether it came as the answer to a statement or as a notice
    # just before the connection closed; unless libpq was sending a statement when the
    # socket closed: it then reports the closed connection without reading the reason.
    assert cut.stderr.startswith(
        "error: the database operation failed part-way (connection lost or statement "
        "cancelled); what was not yet committed was rolled back: "
    ), cut.stderr
    assert (
        "terminating connection due to administrator command" in cut.stderr
        or "sending query and params failed: server closed the connection" in cut.stderr
    ), cut.stderr
    assert len(cut.stderr.splitlines()) == 1

    done_before = _consistent(conn, slots)
    assert 0 < done_before < DUE, done_before
    # What was committed before the cut is still reported, with the cut as an error.
    partial = json.loads(cut.stdout)
    assert (partial["due"], partial["created"], partial["failed"]) == (done_before, done_before, 0)
    assert len(partial["jobs"]) == done_before
    assert [e["scheduler_id"] for e in partial["errors"]] == [None]

    conn.execute("DROP TRIGGER test_slow_jobs ON jobs")
    result = run_cli_subprocess(["tick", "--json"], {"SCHEDCTL_DATABASE_URL": database_url})
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["created"] == DUE - done_before
    assert _consistent(conn, slots) == DUE
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (DUE,)
