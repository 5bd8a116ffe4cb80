"""`schedctl tick` under contention, with real processes: several ticks at once
make exactly one job per slot and miss none; ticks killed with SIGKILL at any moment
leave nothing half-done that the next tick does not finish; the overlap policies hold
while ticks race."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import psycopg
import pytest

from tests.helpers import Conn, fetch_one, start_cli_process

pytestmark = pytest.mark.slow

ACTIVE = ("pending", "initializing", "running", "paused")
ORGS = 25


def _seed_due(conn: Conn, count: int, policy: str = "replace") -> None:
    """`count` due schedulers, set-based: spread over ORGS organisations, every interval,
    slots from one minute to an hour and a half ago (the next grid time is hours away)."""
    conn.execute(
        """
        WITH new_orgs AS (
            INSERT INTO organisations (name)
            SELECT 'Org ' || g FROM generate_series(1, %(orgs)s) g
            RETURNING id
        ),
        orgs AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM new_orgs),
        new_domains AS (
            INSERT INTO domains (name)
            SELECT 'site-' || g || '-' || %(policy)s || '.com' FROM generate_series(1, %(n)s) g
            RETURNING id
        ),
        doms AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM new_domains),
        added AS (
            INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours,
                                    next_run_at)
            SELECT doms.id, orgs.id, (ARRAY[6, 12, 24, 48])[1 + doms.k %% 4],
                   now() - interval '1 minute' - doms.k * interval '997 milliseconds'
            FROM doms JOIN orgs ON orgs.k = doms.k %% %(orgs)s
            RETURNING id
        )
        INSERT INTO schedctl.scheduler_settings (scheduler_id, overlap_policy)
        SELECT id, %(policy)s FROM added
        """,
        {"n": count, "orgs": ORGS, "policy": policy},
    )


def _due_slots(conn: Conn) -> set[tuple[str, datetime]]:
    return {
        (sid, slot)
        for sid, slot in conn.execute(
            "SELECT id::text, next_run_at FROM schedulers WHERE is_enabled AND next_run_at <= now()"
        )
    }


def _job_slots(conn: Conn) -> list[tuple[str, datetime]]:
    return [
        (sid, slot)
        for sid, slot in conn.execute(
            "SELECT j.scheduler_id::text, ss.slot FROM jobs j"
            " LEFT JOIN schedctl.served_slots ss ON ss.job_id = j.id"
            " WHERE j.scheduler_id IS NOT NULL"
        )
    ]


def _start_ticks(database_url: str, count: int) -> list[subprocess.Popen[str]]:
    env = {"SCHEDCTL_DATABASE_URL": database_url, "SCHEDCTL_LOCK_TIMEOUT": "120"}
    return [start_cli_process(["tick", "--json"], env) for _ in range(count)]


def _summaries(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Wait for every tick; each must succeed and print one consistent summary."""
    summaries = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, (proc.returncode, err)
        summary: dict[str, Any] = json.loads(out)
        assert summary["due"] == summary["created"] + summary["skipped"] + summary["failed"]
        assert summary["failed"] == 0 and summary["errors"] == []
        assert len(summary["jobs"]) == summary["created"]
        summaries.append(summary)
    return summaries


def _wait_for(conn: Conn, query: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        (value,) = fetch_one(conn, query)
        if value == expected:
            return
        assert time.monotonic() < deadline, f"{query!r} stayed {value}, expected {expected}"
        time.sleep(0.05)


def _kill_at_random(
    conn: Conn,
    procs: list[subprocess.Popen[str]],
    rng: random.Random,
    between: tuple[float, float],
    seed: int,
) -> list[bool]:
    """SIGKILL each tick at a random moment `between` seconds after the first of them
    has connected (during the start-up of some, inside a batch's transaction of others, or
    after they ended), and wait until the database has ended their sessions, rolling back
    any open batch. Whether each was killed (False: it had finished)."""
    _wait_for(conn, f"SELECT ({TICK_BACKENDS}) > 0", True, timeout=60)
    started = time.monotonic()
    delays = sorted(rng.uniform(*between) for _ in procs)
    for proc, delay in zip(procs, delays, strict=True):
        time.sleep(max(0.0, started + delay - time.monotonic()))
        proc.send_signal(signal.SIGKILL)
    for proc in procs:
        proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), (seed, proc.returncode)
    _wait_for(conn, TICK_BACKENDS, 0, timeout=60)
    return [proc.returncode != 0 for proc in procs]


def _due_again(conn: Conn, count: int, salt: str) -> set[tuple[str, datetime]]:
    """Make up to `count` served schedulers (a stable choice by `salt`) due again, each at a
    new slot in the last hour; those new slots."""
    moved = conn.execute(
        """
        UPDATE schedulers SET next_run_at = now() - random() * interval '1 hour'
        WHERE id IN (
            SELECT id FROM schedulers WHERE next_run_at > now()
            ORDER BY md5(id::text || %s) LIMIT %s
        )
        RETURNING id::text, next_run_at
        """,
        [salt, count],
    ).fetchall()
    return {(sid, slot) for sid, slot in moved}


TICK_BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = 'schedctl'"
)
TICKS_WAITING = TICK_BACKENDS + " AND wait_event_type = 'Lock'"


def _race(conn: Conn, database_url: str, count: int) -> list[dict[str, Any]]:
    """Start `count` ticks held at a gate (a lock on schedulers), open it once every one
    is waiting, so that all of them claim at the same moment; return their summaries."""
    with psycopg.connect(database_url) as gate:
        gate.execute("LOCK TABLE schedulers IN EXCLUSIVE MODE")
        procs = _start_ticks(database_url, count)
        try:
            _wait_for(conn, TICKS_WAITING, count, timeout=90)
        except BaseException:
            for proc in procs:
                proc.kill()
                proc.communicate()
            raise
        gate.commit()
    return _summaries(procs)


def test_eight_ticks_at_once_make_exactly_one_job_per_due_scheduler(
    conn: Conn, database_url: str
) -> None:
    total = 6000  # six batches of 1000, for eight processes to fight over
    _seed_due(conn, total)
    due = _due_slots(conn)
    assert len(due) == total

    summaries = _race(conn, database_url, 8)

    created = [s["created"] for s in summaries]
    assert sum(created) == total
    assert sum(s["due"] for s in summaries) == total  # no slot seen as due twice
    assert sum(1 for c in created if c) >= 2, created  # the work was shared
    reported = [(j["scheduler_id"], j["slot"]) for s in summaries for j in s["jobs"]]
    assert len(reported) == len(set(reported)) == total
    jobs = _job_slots(conn)
    assert len(jobs) == total
    assert set(jobs) == due  # each due slot served, by exactly one job
    assert conn.execute(
        "SELECT count(*) FROM schedulers WHERE next_run_at <= now()"
    ).fetchone() == (0,)
    # Every job is the one its process reported, pending and linked to its scheduler.
    ids = {j["job_id"] for s in summaries for j in s["jobs"]}
    rows = conn.execute(
        "SELECT id, status, source_type, source_detail = scheduler_id::text FROM jobs"
    ).fetchall()
    assert {r[0] for r in rows} == ids
    assert {r[1:] for r in rows} == {("pending", "scheduler", True)}


def _slow_down_job_inserts(conn: Conn) -> None:
    """Each batch's INSERT into jobs takes a moment longer (a trigger, as a host may have
    one), so that kills land inside the transaction as often as between them."""
    conn.execute(
        """
        CREATE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_sleep(0.1 + random() * 0.2);
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER test_slow_insert AFTER INSERT ON jobs
            FOR EACH STATEMENT EXECUTE FUNCTION test_slow_insert();
        """
    )


def test_ticks_killed_at_random_moments_leave_exactly_one_job_per_slot(
    conn: Conn, database_url: str
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    total = 3000
    _seed_due(conn, total)
    _slow_down_job_inserts(conn)
    expected = _due_slots(conn)  # every slot that has been due; each needs one job
    assert len(expected) == total
    outcomes: Counter[str] = Counter()

    for round_no in range(6):
        due_before = len(_due_slots(conn))
        procs = _start_ticks(database_url, 4)
        for killed in _kill_at_random(conn, procs, rng, (0, 0.5), seed):
            outcomes["killed" if killed else "finished"] += 1
        # No slot ever has two jobs, whatever was killed when.
        jobs = _job_slots(conn)
        assert len(jobs) == len(set(jobs)), seed
        assert set(jobs) <= expected, seed
        due_after = len(_due_slots(conn))
        outcomes["rounds cut short" if 0 < due_after < due_before else "rounds all or nothing"] += 1
        # New slots: most schedulers whose slot was served are moved back, to be due again.
        expected |= _due_again(conn, 2500, f"{seed}-{round_no}")

    left = _due_slots(conn)
    print(f"seed {seed}: {dict(outcomes)}; {len(left)} slots left due for the last tick")
    (final,) = _summaries(_start_ticks(database_url, 1))

    assert (final["due"], final["created"]) == (len(left), len(left)), seed
    jobs = _job_slots(conn)
    assert len(jobs) == len(set(jobs)), seed  # exactly one job per (scheduler, slot) ...
    assert set(jobs) == expected, seed  # ... and every slot that was due was served
    assert conn.execute(
        "SELECT count(*) FROM schedulers WHERE next_run_at <= now()"
    ).fetchone() == (0,)
    assert outcomes["killed"] >= 1, (seed, outcomes)


def _host_job(conn: Conn, policy: str, every: int) -> int:
    """An active job the host made itself for every `every`-th scheduler of a policy."""
    return conn.execute(
        """
        INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                          concurrency, find_links, max_pages, source_type)
        SELECT gen_random_uuid()::text, s.domain_id, s.organisation_id, 'running', 0.5,
               now() - interval '1 hour', 5, TRUE, 0, 'dashboard'
        FROM schedulers s
        JOIN domains d ON d.id = s.domain_id
        JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
        WHERE st.overlap_policy = %s AND d.id %% %s = 0
        """,
        [policy, every],
    ).rowcount


def _active_by_pair(conn: Conn, policy: str, source: str | None) -> Counter[str]:
    """Active jobs per domain and organisation of the policy's schedulers."""
    rows = conn.execute(
        """
        SELECT s.id::text, count(j.id)
        FROM schedulers s
        LEFT JOIN jobs j ON j.domain_id = s.domain_id AND j.organisation_id = s.organisation_id
             AND j.status IN ('pending', 'initializing', 'running', 'paused')
             AND (%(source)s::text IS NULL OR j.source_type = %(source)s)
        JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
        WHERE st.overlap_policy = %(policy)s
        GROUP BY s.id
        """,
        {"policy": policy, "source": source},
    ).fetchall()
    return Counter(count for _, count in rows)


def test_overlap_policies_hold_while_ticks_race(conn: Conn, database_url: str) -> None:
    per_policy = 1000
    _seed_due(conn, per_policy, "replace")
    _seed_due(conn, per_policy, "skip")
    host_replace = _host_job(conn, "replace", 2)
    host_skip = _host_job(conn, "skip", 2)
    assert host_replace == host_skip == per_policy // 2

    first = _race(conn, database_url, 8)

    # replace: every scheduler made its job and cancelled the host's; skip: only where
    # no job was active.
    assert sum(s["created"] for s in first) == per_policy + per_policy // 2
    assert sum(s["skipped"] for s in first) == per_policy // 2
    assert _active_by_pair(conn, "replace", None) == Counter({1: per_policy})
    assert _active_by_pair(conn, "skip", None) == Counter({1: per_policy})

    # Every slot due again at once, while each domain has an active job (a pending one
    # made by the first round, or the host's).
    conn.execute("UPDATE schedulers SET next_run_at = now() - interval '1 second'")
    second = _race(conn, database_url, 8)

    assert sum(s["created"] for s in second) == per_policy
    assert sum(s["skipped"] for s in second) == per_policy
    # replace never leaves two active jobs of a domain and organisation; the active one
    # is the newest, and everything it replaced is cancelled.
    assert _active_by_pair(conn, "replace", "scheduler") == Counter({1: per_policy})
    assert _active_by_pair(conn, "replace", None) == Counter({1: per_policy})
    newest_active = conn.execute(
        """
        SELECT count(*) FROM schedulers s
        JOIN LATERAL (
            SELECT status FROM jobs j JOIN schedctl.served_slots ss ON ss.job_id = j.id
            WHERE j.scheduler_id = s.id
            ORDER BY ss.slot DESC LIMIT 1
        ) last ON TRUE
        JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
        WHERE st.overlap_policy = 'replace' AND last.status = 'pending'
        """
    ).fetchone()
    assert newest_active == (per_policy,)
    # skip never creates a job beside an active one: one job at most per scheduler (made
    # in the first round where nothing was active), one audit entry per skipped slot.
    assert _active_by_pair(conn, "skip", None) == Counter({1: per_policy})
    per_scheduler = conn.execute(
        """
        SELECT (SELECT count(*) FROM jobs j WHERE j.scheduler_id = s.id) AS jobs,
               (SELECT count(*) FROM schedctl.audit a
                WHERE a.scheduler_id = s.id AND a.action = 'skip') AS skips
        FROM schedulers s
        JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
        WHERE st.overlap_policy = 'skip'
        """
    ).fetchall()
    assert Counter(per_scheduler) == Counter({(1, 1): per_policy // 2, (0, 2): per_policy // 2})


def test_a_large_pass_works_over_two_connections_and_leaves_a_failing_scheduler_out(
    conn: Conn, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schedctl import db, tick
    from schedctl.config import Settings

    total = 3000
    _seed_due(conn, total)
    # Which sessions made jobs, and a host rule refusing one scheduler's job.
    conn.execute(
        """
        CREATE TABLE test_sessions (pid integer);
        CREATE FUNCTION test_record_session() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO test_sessions VALUES (pg_backend_pid());
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER test_record_session AFTER INSERT ON jobs
            FOR EACH STATEMENT EXECUTE FUNCTION test_record_session();
        CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.domain_id = (SELECT id FROM domains WHERE name = 'site-1234-replace.com') THEN
                RAISE EXCEPTION 'the host refuses this job';
            END IF;
            RETURN NEW;
        END
        $$;
        CREATE TRIGGER test_refuse BEFORE INSERT ON jobs
            FOR EACH ROW EXECUTE FUNCTION test_refuse();
        """
    )
    (refused,) = fetch_one(
        conn,
        "SELECT s.id::text FROM schedulers s JOIN domains d ON d.id = s.domain_id "
        "WHERE d.name = 'site-1234-replace.com'",
    )
    due = _due_slots(conn)
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)
    settings = Settings()
    opened = []

    def connect() -> AbstractContextManager[db.Connection]:
        opened.append(1)
        return db.connect(settings)

    jobs: list[dict[str, Any]] = []
    with db.connect(settings) as tick_conn:
        summary = tick.run(
            tick_conn, on_job=jobs.append, batch_size=100, max_batch_size=400, connect=connect
        )

    assert (summary.due, summary.created, summary.failed) == (total, total - 1, 1)
    assert summary.errors == [{"scheduler_id": refused, "message": "the host refuses this job"}]
    assert opened == [1]
    (sessions,) = fetch_one(conn, "SELECT count(DISTINCT pid) FROM test_sessions")
    assert sessions == 2  # both connections made jobs
    made = _job_slots(conn)
    assert len(made) == len(set(made)) == total - 1
    assert set(made) == {(sid, slot) for sid, slot in due if sid != refused}
    assert sorted(str(j["job_id"]) for j in jobs) == sorted(
        r[0] for r in conn.execute("SELECT id FROM jobs").fetchall()
    )
    # The refused scheduler is still due, on its slot; every other one has moved on.
    assert _due_slots(conn) == {(sid, slot) for sid, slot in due if sid == refused}
