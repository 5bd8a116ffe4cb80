"""The pass inside the database, as pg_cron drives it: `CALL schedctl.tick()` makes one job
per due slot in committed batches and leaves its heartbeat for `status`; killed part-way
(pg_terminate_backend), it keeps the batches it committed, serves nothing twice, and the
next call finishes the pass. Its jobs are the same as `schedctl tick`'s."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime

import psycopg

from tests.helpers import (
    Cli,
    Conn,
    Result,
    fetch_one,
    finish_cli_process,
    ok_json,
    seed_due,
    start_cli_process,
)

# Each statement inserting jobs takes 0.3 s more: a pass of several batches lasts long
# enough to be killed between two of them.
SLOW_BATCHES = """
CREATE FUNCTION test_slow_batches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
CREATE TRIGGER test_slow_batches AFTER INSERT ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION test_slow_batches();
"""


def _count(conn: Conn, query: str) -> int:
    (value,) = fetch_one(conn, query)
    return int(value)


def _served_once(conn: Conn, slots: dict[str, datetime]) -> int:
    """Every job is the one job of its scheduler's slot; the number of slots served."""
    rows = conn.execute(
        "SELECT j.scheduler_id::text, ss.slot, count(*) FROM jobs j"
        " LEFT JOIN schedctl.served_slots ss ON ss.job_id = j.id GROUP BY 1, 2"
    ).fetchall()
    assert all(count == 1 for _, _, count in rows), "a slot has two jobs"
    made = {scheduler_id: slot for scheduler_id, slot, _ in rows}
    assert len(made) == len(rows), "a scheduler has jobs for two slots"
    assert all(made[scheduler_id] == slots[scheduler_id] for scheduler_id in made)
    return len(made)


def test_call_tick_makes_one_job_per_due_slot_and_leaves_its_heartbeat(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    slots = seed_due(conn, 2500)

    with psycopg.connect(database_url, autocommit=True) as caller:
        caller.execute("CALL schedctl.tick()")

    assert _served_once(conn, slots) == 2500
    assert _count(conn, "SELECT count(*) FROM schedulers WHERE next_run_at <= now()") == 0
    assert fetch_one(
        conn,
        "SELECT ok, due, created, skipped, failed FROM schedctl.tick_heartbeats"
        " WHERE host = 'pg_cron'",
    ) == (True, 2500, 2500, 0, 0)
    # `status` counts the pass like any other tick's.
    status = ok_json(cli("status", "--all-orgs", "--json"))
    assert status["last_tick"]["host"] == "pg_cron", status
    assert status["last_tick"]["created"] == 2500, status


def test_call_tick_killed_mid_pass_keeps_its_batches_and_the_next_call_finishes(
    conn: Conn, database_url: str
) -> None:
    total = 3000
    slots = seed_due(conn, total)
    conn.execute(SLOW_BATCHES)
    # The pass in a process of its own, in batches of 200.
    call = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, psycopg\n"
            "with psycopg.connect(sys.argv[1], autocommit=True,"
            " application_name='tick_in_database') as c:\n"
            "    c.execute('CALL schedctl.tick(batch_size => 200, max_batch_size => 200)')\n",
            database_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _count(conn, "SELECT count(*) FROM jobs") < 400:
            assert call.poll() is None, call.communicate()
            assert time.monotonic() < deadline, "no batch was committed"
            time.sleep(0.02)
        (killed,) = fetch_one(
            conn,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'tick_in_database' AND datname = current_database()",
        )
        assert killed
        _, stderr = call.communicate(timeout=60)
    finally:
        if call.poll() is None:
            call.kill()
    assert call.returncode != 0 and "terminat" in stderr, stderr

    # The batches committed before the kill stay; the one it was in left nothing.
    kept = _served_once(conn, slots)
    assert 400 <= kept < total
    assert kept % 200 == 0, kept
    assert _count(conn, "SELECT count(*) FROM jobs") == kept
    assert _count(conn, "SELECT count(*) FROM schedctl.tick_heartbeats") == 0

    conn.execute("DROP TRIGGER test_slow_batches ON jobs")
    with psycopg.connect(database_url, autocommit=True) as caller:
        caller.execute("CALL schedctl.tick()")

    assert _served_once(conn, slots) == total
    assert _count(conn, "SELECT count(*) FROM jobs") == total
    assert fetch_one(
        conn, "SELECT ok, due, created FROM schedctl.tick_heartbeats WHERE host = 'pg_cron'"
    ) == (True, total - kept, total - kept)


def test_call_tick_and_cli_ticks_racing_serve_each_slot_once(conn: Conn, database_url: str) -> None:
    total = 4000
    slots = seed_due(conn, total)
    call = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, psycopg\n"
            "with psycopg.connect(sys.argv[1], autocommit=True) as c:\n"
            "    c.execute('CALL schedctl.tick(batch_size => 100, max_batch_size => 100)')\n",
            database_url,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    ticks = [
        start_cli_process(["tick", "--quiet"], {"SCHEDCTL_DATABASE_URL": database_url})
        for _ in range(2)
    ]
    _, stderr = call.communicate(timeout=300)
    assert call.returncode == 0, stderr
    assert [finish_cli_process(tick, timeout=300) for tick in ticks] == [Result(0, "", "")] * 2

    assert _served_once(conn, slots) == total
    assert _count(conn, "SELECT count(*) FROM jobs") == total
