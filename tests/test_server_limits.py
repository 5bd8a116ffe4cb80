"""schedctl against servers that set limits of their own, each a private cluster with
schedctl migrated there: a statement timeout that cancels big batches, an idle-in-transaction
timeout, a read-only database and a hot standby, a small max_connections, and a restart in
the middle of a tick pass. Whatever the server does, a slot never gets two jobs, nothing is
half-written, a failure is one `error:` line, and the next tick serves what was left."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from tests.helpers import (
    Result,
    assert_error,
    fingerprint,
    finish_cli_process,
    run_cli,
    run_cli_subprocess,
    seed_due,
    start_cli_process,
)
from tests.servers import PostgresCluster, StartCluster, StartStandby

pytest_plugins = ("tests.conftest_servers",)

Connection = psycopg.Connection[tuple[Any, ...]]

DBNAME = "schedctl"
READ_ONLY = "the database is read-only here"


# ---------------------------------------------------------------- helpers


def url_of(cluster: PostgresCluster, dbname: str = DBNAME, user: str = "postgres") -> str:
    return f"postgresql://{quote(user)}@{cluster.host}:{cluster.port}/{quote(dbname)}"


def create_database(cluster: PostgresCluster, dbname: str = DBNAME, *, migrate: bool = True) -> str:
    """A new database on the cluster, migrated by `schedctl migrate` unless told not to."""
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = url_of(cluster, dbname)
    if migrate:
        # Free of the limits under test: a migration is not what they are about, and a 50 ms
        # idle timeout would end it whenever the machine is busy.
        free = "-c idle_in_transaction_session_timeout=0 -c statement_timeout=0"
        result = run_cli_subprocess(["migrate"], {"SCHEDCTL_DATABASE_URL": url, "PGOPTIONS": free})
        assert result.code == 0, result.stderr
    return url


@contextmanager
def connected(url: str) -> Iterator[Connection]:
    """An autocommit connection for setting up and checking, free of the limits under test."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0;"
            " SET default_transaction_read_only = off"
        )
        yield conn


def schedctl(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """schedctl in this process, with SCHEDCTL_DATABASE_URL set to `url` (and `env`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCHEDCTL_DATABASE_URL", url)
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        return run_cli(list(args))


def one(conn: Connection, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def served_once(conn: Connection, slots: dict[str, datetime]) -> int:
    """Every job a tick made is the one job of its scheduler's slot, and every scheduler
    is either served (moved past now, on its grid) or untouched; returns the number served."""
    with conn.transaction():  # one snapshot: a batch committing meanwhile is seen whole
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _served_once(conn, slots)


def _served_once(conn: Connection, slots: dict[str, datetime]) -> int:
    rows = conn.execute(
        "SELECT j.scheduler_id::text, ss.slot, count(*) FROM jobs j"
        " LEFT JOIN schedctl.served_slots ss ON ss.job_id = j.id"
        " GROUP BY 1, 2"
    ).fetchall()
    assert all(count == 1 for _, _, count in rows), "a slot has two jobs"
    made = {sid: slot for sid, slot, _ in rows}
    assert len(made) == len(rows), "a scheduler has jobs for two slots"
    assert all(made[sid] == slots[sid] for sid in made), "a job for another slot"
    now = one(conn, "SELECT now()")
    for sid, next_run_at, hours in conn.execute(
        "SELECT id::text, next_run_at, schedule_interval_hours FROM schedulers"
    ).fetchall():
        if sid not in slots:
            continue
        if sid in made:
            assert next_run_at > now, sid
            assert (next_run_at - slots[sid]).total_seconds() % (hours * 3600) == 0, sid
        else:
            assert next_run_at == slots[sid], sid
    return len(made)


def tick_json(url: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One tick pass as a process; it must succeed and add up."""
    result = run_cli_subprocess(
        ["tick", "--json"], {"SCHEDCTL_DATABASE_URL": url, **(env or {})}, timeout=600
    )
    assert result.code == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["due"] == summary["created"] + summary["skipped"] + summary["failed"]
    assert summary["failed"] == 0 and summary["errors"] == []
    return summary


# ---------------------------------------------------------------- statement_timeout

# A role whose statements the server cancels after 500 ms, and a host trigger that makes a
# statement inserting more than 300 jobs take 10 s: a big batch is cancelled every time, a
# small one never (any batch takes well under 500 ms by itself). The role's statements go to
# the server log, with their parameters: each claim shows the batch size it asked for.
HEAVY_BATCHES = """
CREATE FUNCTION test_heavy_batches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM made) > 300 THEN
        PERFORM pg_sleep(10);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER test_heavy_batches AFTER INSERT ON jobs REFERENCING NEW TABLE AS made
    FOR EACH STATEMENT EXECUTE FUNCTION test_heavy_batches();
CREATE ROLE ticker LOGIN SUPERUSER;
ALTER ROLE ticker SET statement_timeout = '500ms';
ALTER ROLE ticker SET log_statement = 'all';
"""
# schedctl.tick_batch's parameters: the batch size, the schedulers to leave out, the clock,
# the actor, ...
CLAIM_LOGGED = re.compile(
    r"^.*DETAIL:  parameters: \$1 = '(\d+)', \$2 = '\{[^']*\}', \$3 = [^,]+, \$4 = 'tick'",
    re.MULTILINE,
)
CANCELLED = "canceling statement due to statement timeout"


def claims_logged(cluster: PostgresCluster, offset: int = 0) -> list[int]:
    """The batch size of every claim the server logged after `offset`, in order."""
    return [int(size) for size in CLAIM_LOGGED.findall(cluster.log()[offset:])]


@pytest.mark.slow
def test_a_statement_timeout_that_cancels_big_batches_still_serves_every_slot_once(
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster()
    url = create_database(cluster)
    total = 20_000
    with connected(url) as conn:
        slots = seed_due(conn, total)
        conn.execute(HEAVY_BATCHES)
    ticker = url_of(cluster, user="ticker")
    offset = len(cluster.log())

    created, passes = 0, 0
    while created < total:
        passes += 1
        assert passes <= 3, f"{created} of {total} served after {passes - 1} passes"
        summary = tick_json(ticker)
        assert summary["created"] == summary["due"]
        created += summary["created"]

    with connected(url) as conn:
        assert served_once(conn, slots) == total
        assert one(conn, "SELECT count(*) FROM jobs") == total
        assert one(conn, "SELECT count(*) FROM schedulers WHERE next_run_at <= now()") == 0
    claims = claims_logged(cluster, offset)
    log = cluster.log()[offset:]
    # Halved until a batch fit, then that size for the rest of the pass: a few cancelled
    # statements, not one per batch (twenty thousand due take 80 batches of 250).
    assert claims[0] == 1000 and claims[-1] <= 300, claims
    assert 2 <= log.count(CANCELLED) <= 8, claims


def test_a_batch_size_the_server_cancelled_is_not_tried_again_in_the_pass(
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster()
    url = create_database(cluster)
    total = 3000
    with connected(url) as conn:
        slots = seed_due(conn, total)
        conn.execute(HEAVY_BATCHES)
    offset = len(cluster.log())

    summary = tick_json(url_of(cluster, user="ticker"))

    assert summary["created"] == total
    with connected(url) as conn:
        assert served_once(conn, slots) == total
    claims = claims_logged(cluster, offset)
    # 1000 and 500 cancelled, 250 fits and is kept: twelve claims of 250, then the empty one.
    assert claims == [1000, 500] + [250] * 13, claims
    assert cluster.log()[offset:].count(CANCELLED) == 2


# ---------------------------------------------------------------- idle_in_transaction

IDLE_TIMEOUT = {"idle_in_transaction_session_timeout": "50ms"}
ENDED_IDLE = "idle-in-transaction timeout"  # the server's reason, in its log and to the client


def race_ticks(
    url: str,
    args: list[str],
    count: int,
    cpus: set[int] | None = None,
    tick_url: str | None = None,
) -> list[Result]:
    """`count` ticks held at a gate (a lock on schedulers) until each waits at it, so that
    they claim at the same moment; on `cpus` only when given; connected to `tick_url` when
    given (the gate to `url`). Returns their results."""
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    with connected(url) as gate, connected(url) as watch:
        gate.execute("BEGIN; LOCK TABLE schedulers IN EXCLUSIVE MODE")
        env = {"SCHEDCTL_DATABASE_URL": tick_url or url}
        procs = [start_cli_process(args, env) for _ in range(count)]
        if cpus is not None:
            for proc in procs:
                os.sched_setaffinity(proc.pid, cpus)
        deadline = time.monotonic() + 90
        while one(watch, waiting) < count:
            if time.monotonic() > deadline or any(proc.poll() is not None for proc in procs):
                for proc in procs:
                    proc.kill()
                pytest.fail(
                    "the ticks did not all reach the gate: "
                    f"{[finish_cli_process(p) for p in procs]}"
                )
            time.sleep(0.02)
        gate.execute("COMMIT")
    return [finish_cli_process(proc, timeout=300) for proc in procs]


@pytest.mark.slow
def test_four_ticks_under_a_short_idle_timeout_serve_each_slot_once_and_lose_nothing(
    start_cluster: StartCluster,
) -> None:
    """Whether or not the server ends a tick's session: a tick that ends is one error line
    (and --quiet prints nothing else), no slot gets two jobs, and the ticks that follow
    serve the rest."""
    cluster = start_cluster(IDLE_TIMEOUT)
    url = create_database(cluster)
    total = 8000
    with connected(url) as conn:
        slots = seed_due(conn, total)

    results = race_ticks(url, ["tick", "--quiet"], 4)
    # Then one tick after another until every slot is served: each commits batches.
    with connected(url) as conn:
        for _ in range(10):
            if not one(conn, "SELECT count(*) FROM schedulers WHERE next_run_at <= now()"):
                break
            results.append(run_cli_subprocess(["tick", "--quiet"], {"SCHEDCTL_DATABASE_URL": url}))
        assert served_once(conn, slots) == total

    for result in results:
        assert result.stdout == "", result
        if result.code:
            message = assert_error(result, 1)
            assert "rolled back" in message, message
        else:
            assert result.stderr == "", result


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_four_ticks_sharing_one_cpu_never_sit_idle_in_a_transaction(
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster(IDLE_TIMEOUT)
    url = create_database(cluster)
    total = 8000  # a batch of 1000 for each, then two of 2000
    with connected(url) as conn:
        slots = seed_due(conn, total)
    offset = len(cluster.log())

    results = race_ticks(url, ["tick", "--quiet"], 4, cpus={min(os.sched_getaffinity(0))})

    assert ENDED_IDLE not in cluster.log()[offset:]
    assert [(r.code, r.stdout, r.stderr) for r in results] == [(0, "", "")] * 4
    with connected(url) as conn:
        assert served_once(conn, slots) == total


@pytest.mark.slow
def test_four_ticks_of_a_role_with_a_20ms_idle_timeout_over_50000_due_all_exit_0(
    start_cluster: StartCluster,
) -> None:
    """Each batch is one statement in its own transaction: a role whose sessions the server
    ends after 20 ms idle in a transaction never loses one, however long the client takes
    to read a batch's rows."""
    cluster = start_cluster()
    url = create_database(cluster)
    total = 50_000
    with connected(url) as conn:
        slots = seed_due(conn, total)
        conn.execute("CREATE ROLE impatient LOGIN SUPERUSER")
        conn.execute("ALTER ROLE impatient SET idle_in_transaction_session_timeout = '20ms'")
    offset = len(cluster.log())

    results = race_ticks(url, ["tick", "--quiet"], 4, tick_url=url_of(cluster, user="impatient"))

    assert ENDED_IDLE not in cluster.log()[offset:]
    assert [(r.code, r.stdout, r.stderr) for r in results] == [(0, "", "")] * 4
    with connected(url) as conn:
        assert served_once(conn, slots) == total


# The tick's backend while it makes a batch (schedctl.tick_batch; pg_stat_activity keeps the
# first kilobyte of a query, where its header comment is).
TICK_APPLYING = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'schedctl' AND state = 'active'
  AND query LIKE '-- One batch of a tick pass%'
"""


def tick_held_mid_batch(
    url: str, args: list[str], *, end: bool
) -> tuple[Result, dict[str, datetime]]:
    """A tick over a few due schedulers, stopped (SIGSTOP) inside its batch's statement, then
    let go on (SIGCONT). The statement's INSERT into jobs waits (a host trigger) for a lock
    the test holds, so the tick is certainly there when it is stopped, however busy the
    machine; no timeout decides anything. A dry run holds its one transaction open: once its
    statement ends, its session sits idle in it, and the server ends it
    (pg_terminate_backend; `end`). A real pass's batch is one statement, its own transaction:
    it commits while the tick is stopped, and the session is idle outside any transaction
    (`end` false: checked). Its result, and the slots."""
    with connected(url) as conn, connected(url) as holder:
        slots = seed_due(conn, 200)
        conn.execute(
            """
            CREATE FUNCTION test_held_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_advisory_xact_lock_shared(727273); RETURN NULL; END $$;
            CREATE TRIGGER test_held_jobs AFTER INSERT ON jobs
                FOR EACH STATEMENT EXECUTE FUNCTION test_held_jobs();
            """
        )
        holder.execute("SELECT pg_advisory_lock(727273)")
        tick = start_cli_process(
            ["tick", *args], {"SCHEDCTL_DATABASE_URL": url, "SCHEDCTL_LOCK_TIMEOUT": "600"}
        )
        deadline = time.monotonic() + 120
        held = TICK_APPLYING + " AND wait_event = 'advisory'"
        while not (pids := [row[0] for row in conn.execute(held).fetchall()]):
            assert tick.poll() is None, finish_cli_process(tick, timeout=300)
            assert time.monotonic() < deadline, "the tick never applied a batch"
            time.sleep(0.005)
        # Stopped there, the tick cannot go on once its statement ends, and reads what
        # happened meanwhile only after the statement's result.
        tick.send_signal(signal.SIGSTOP)
        try:
            holder.execute("SELECT pg_advisory_unlock(727273)")
            state = "SELECT state FROM pg_stat_activity WHERE pid = %s"
            if end:
                while one(conn, state, [pids[0]]) != "idle in transaction":
                    assert time.monotonic() < deadline, "the batch's statement never ended"
                    time.sleep(0.005)
                assert one(conn, "SELECT pg_terminate_backend(%s)", [pids[0]])
            else:
                while served_once(conn, slots) < len(slots):
                    assert time.monotonic() < deadline, "the stopped tick's batch never committed"
                    time.sleep(0.05)
                # Committed, idle outside any transaction: the server has nothing to end.
                assert one(conn, state, [pids[0]]) == "idle"
        finally:
            tick.send_signal(signal.SIGCONT)
        result = finish_cli_process(tick, timeout=300)
        conn.execute("DROP TRIGGER test_held_jobs ON jobs")
    return result, slots


@pytest.mark.slow
@pytest.mark.parametrize("output", ["--quiet", "--json"])
def test_a_tick_stopped_mid_batch_holds_no_transaction_open_and_loses_nothing(
    start_cluster: StartCluster, output: str
) -> None:
    """The batch is one statement, committed by the server while the tick is stopped: the
    idle-in-transaction timeout has nothing to end, and the tick goes on to exit 0."""
    cluster = start_cluster(IDLE_TIMEOUT)
    url = create_database(cluster)
    offset = len(cluster.log())

    result, slots = tick_held_mid_batch(url, [output], end=False)

    assert result.code == 0, result
    assert result.stderr == "", result
    if output == "--json":
        assert json.loads(result.stdout)["created"] == len(slots)
    assert ENDED_IDLE not in cluster.log()[offset:]
    with connected(url) as conn:
        assert served_once(conn, slots) == len(slots)


ENDED = "terminating connection due to administrator command"  # the server's reason


@pytest.mark.parametrize("output", ["--quiet", "--json"])
def test_a_session_the_server_ends_mid_batch_is_one_error_line_and_loses_nothing(
    database_url: str, output: str
) -> None:
    """A dry run is one transaction (rolled back at the end): ended by the server
    mid-batch, it is one error line; nothing was written, and the next tick serves all."""
    result, slots = tick_held_mid_batch(database_url, ["--dry-run", output], end=True)

    assert_error(result, 1)  # one error line, and nothing on stdout
    with connected(database_url) as conn:
        assert served_once(conn, slots) == 0
    assert tick_json(database_url)["created"] == len(slots)
    with connected(database_url) as conn:
        assert served_once(conn, slots) == len(slots)


def test_a_session_the_server_ends_is_reported_with_the_servers_reason(database_url: str) -> None:
    result, _ = tick_held_mid_batch(database_url, ["--dry-run", "--quiet"], end=True)

    message = assert_error(result, 1)
    assert ENDED in message, message


# ---------------------------------------------------------------- read-only

WRITES = [
    ["org", "create", "Beta"],
    ["create", "new.com", "--every", "6h", "--org", "Acme"],
    ["update", "alpha.com", "--every", "12h", "--org", "Acme"],
    ["pause", "alpha.com", "--org", "Acme"],
    ["resume", "beta.org", "--org", "Acme"],
    ["run", "alpha.com", "--org", "Acme"],
    ["delete", "alpha.com", "--yes", "--org", "Acme"],
    ["tick"],
    ["tick", "--json"],
    ["tick", "--quiet"],
]
READS = [
    ["org", "list", "--json"],
    ["list", "--org", "Acme", "--json"],
    ["list", "--all-orgs"],
    ["show", "alpha.com", "--org", "Acme", "--json"],
    ["history", "alpha.com", "--org", "Acme", "--json"],
    ["log", "--org", "Acme", "--json"],
    ["status", "--json"],
]


def small_world(url: str) -> None:
    """Acme with alpha.com (due, one job made by a tick) and beta.org (paused)."""
    assert schedctl(url, "org", "create", "Acme").code == 0
    assert schedctl(url, "create", "alpha.com", "--every", "6h", "--start-at", "now").code == 0
    assert schedctl(url, "create", "beta.org", "--every", "24h", "--disabled").code == 0
    assert schedctl(url, "tick").code == 0
    with connected(url) as conn:
        conn.execute("UPDATE schedulers SET next_run_at = now() - interval '1 minute'")


def check_read_only(url: str, pending_url: str) -> None:
    """Every writing command fails at once with exit 5 saying the server is read-only
    (migrate on a database with migrations pending too); reading commands work."""
    for command in [*WRITES, ["migrate"]]:
        target = pending_url if command == ["migrate"] else url
        started = time.monotonic()
        result = schedctl(target, *command)
        waited = time.monotonic() - started
        message = assert_error(result, 5)
        assert message.startswith(READ_ONLY), (command, message)
        assert "nothing was changed" in message, (command, message)
        assert waited < 5, (command, waited)  # at once, not after SCHEDCTL_CONNECT_TIMEOUT
    for command in READS:
        result = schedctl(url, *command)
        assert result.code == 0, (command, result.stderr)
        if "--json" in command:
            json.loads(result.stdout)
    assert json.loads(schedctl(url, "status", "--json").stdout)["due"] == 1


def test_a_read_only_database_refuses_every_write_at_once(start_cluster: StartCluster) -> None:
    cluster = start_cluster()
    url = create_database(cluster)
    pending = create_database(cluster, "pending", migrate=False)
    small_world(url)
    with connected(cluster.url()) as admin:
        for dbname in (DBNAME, "pending"):
            admin.execute(
                sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                    sql.Identifier(dbname)
                )
            )
    with connected(url) as conn:
        before = fingerprint(conn)

    check_read_only(url, pending)

    with connected(url) as conn:
        assert fingerprint(conn) == before
    with connected(pending) as conn:
        assert one(conn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'schedctl'") == 0
        assert one(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0


def test_a_hot_standby_refuses_every_write_at_once(
    start_cluster: StartCluster, start_standby: StartStandby
) -> None:
    primary = start_cluster()
    url = create_database(primary)
    create_database(primary, "pending", migrate=False)
    small_world(url)
    with connected(url) as conn:
        before = fingerprint(conn)
        lsn = one(conn, "SELECT pg_current_wal_lsn()::text")
    standby = start_standby(primary)
    standby_url = url_of(standby)
    with connected(standby_url) as conn:
        assert one(conn, "SELECT pg_is_in_recovery()") is True
        deadline = time.monotonic() + 30
        while not one(conn, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]):
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.02)
        assert fingerprint(conn) == before

    check_read_only(standby_url, url_of(standby, "pending"))

    for server_url in (url, standby_url):
        with connected(server_url) as conn:
            assert fingerprint(conn) == before


# ---------------------------------------------------------------- max_connections


@pytest.mark.slow
def test_a_tick_that_finds_no_free_connection_exits_5_and_loses_nothing(
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster({"max_connections": 6, "superuser_reserved_connections": 0})
    url = create_database(cluster)
    total = 3000
    with ExitStack() as stack:
        conn = stack.enter_context(connected(url))
        slots = seed_due(conn, total)
        before = fingerprint(conn)
        # The other five slots taken by other sessions.
        others = [stack.enter_context(connected(url)) for _ in range(5)]

        result = run_cli_subprocess(["tick", "--json"], {"SCHEDCTL_DATABASE_URL": url})
        message = assert_error(result, 5)
        assert message.startswith("cannot connect to the database: "), message
        assert "too many clients" in message, message
        assert fingerprint(conn) == before

        # One slot free, and a tick that asks for a second connection once its first batch
        # comes back full: the server refuses it, and the tick makes do with one.
        others.pop().close()
        offset = len(cluster.log())
        summary = tick_json(url, {"SCHEDCTL_TICK_CONNECTIONS": "2"})
        assert (summary["due"], summary["created"]) == (total, total)
        assert "too many clients" in cluster.log()[offset:]
        assert served_once(conn, slots) == total


# ---------------------------------------------------------------- restart mid-pass


def pg_ctl(cluster: PostgresCluster, *args: str) -> None:
    """pg_ctl on the cluster, as the user that owns its data."""
    owner = cluster.data_dir.stat()
    as_owner: dict[str, Any] = {}
    if os.geteuid() == 0:
        as_owner = {"user": owner.st_uid, "group": owner.st_gid, "extra_groups": []}
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    done = subprocess.run(
        [str(cluster.bin_dir / "pg_ctl"), *args, "--pgdata", str(cluster.data_dir)],
        cwd=cluster.folder,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **as_owner,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_server_restart_mid_pass_leaves_one_job_per_slot_and_the_next_tick_serves_the_rest(
    start_cluster: StartCluster, mode: str
) -> None:
    cluster = start_cluster()
    url = create_database(cluster)
    total = 50_000
    with connected(url) as conn:
        slots = seed_due(conn, total)
        # Each batch takes a little longer, so that the pass is still running when it is cut.
        conn.execute(
            """
            CREATE FUNCTION test_slow_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_sleep(0.2); RETURN NULL; END $$;
            CREATE TRIGGER test_slow_jobs AFTER INSERT ON jobs
                FOR EACH STATEMENT EXECUTE FUNCTION test_slow_jobs();
            """
        )
        tick = start_cli_process(["tick", "--json"], {"SCHEDCTL_DATABASE_URL": url})
        deadline = time.monotonic() + 120
        while not one(conn, "SELECT count(*) FROM jobs"):  # once a batch has committed
            assert tick.poll() is None, finish_cli_process(tick, timeout=300)
            assert time.monotonic() < deadline, "tick never committed a batch"
            time.sleep(0.02)
    assert tick.poll() is None, "the pass ended before the restart"
    pg_ctl(cluster, "restart", "--mode", mode, "--wait", "--log", str(cluster.log_file))
    result = finish_cli_process(tick, timeout=300)

    assert result.code in (1, 5), result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    with connected(url) as conn:
        done = served_once(conn, slots)
        assert 0 < done < total
        partial = json.loads(result.stdout)  # what was committed before is still reported
        assert partial["created"] <= done
        assert [e["scheduler_id"] for e in partial["errors"]] == [None]
        conn.execute("DROP TRIGGER test_slow_jobs ON jobs")
    summary = tick_json(url)
    assert summary["created"] == total - done
    with connected(url) as conn:
        assert served_once(conn, slots) == total
        assert one(conn, "SELECT count(*) FROM jobs") == total
