"""The example hooks of contrib/hooks under real processes: eight ticks at once call
create-job exactly once per slot; ticks killed with SIGKILL never leave a job without its
task or a task without its job; the example worker, a process of its own, is woken by the
notification and claims every job tick made (the latency from a batch's commit to the
claim is printed, not asserted)."""

from __future__ import annotations

import json
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cli, Conn, cli_env, fetch_one, ok_json, seed_due, sigint_as_at_a_terminal
from tests.test_hooks import CANCEL, CREATE, install_example
from tests.test_tick_concurrency import (
    _due_again,
    _due_slots,
    _job_slots,
    _kill_at_random,
    _race,
    _start_ticks,
    _summaries,
)

pytestmark = pytest.mark.slow

WORKER = Path(__file__).resolve().parents[1] / "contrib" / "hooks" / "worker.py"


def _assert_every_job_has_its_task(conn: Conn) -> None:
    """Each job tick made has exactly one task, its domain's root URL; no task is left
    without its job; each served slot's record names a job that exists, and no slot has
    two jobs."""
    assert conn.execute(
        "SELECT count(*) FROM jobs j WHERE (SELECT count(*) FROM tasks t WHERE t.job_id = j.id)"
        " <> 1"
    ).fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM tasks t LEFT JOIN jobs j ON j.id = t.job_id WHERE j.id IS NULL"
    ).fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM tasks t JOIN jobs j ON j.id = t.job_id"
        " JOIN domains d ON d.id = j.domain_id WHERE t.url <> 'https://' || d.name || '/'"
    ).fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM schedctl.served_slots ss LEFT JOIN jobs j ON j.id = ss.job_id"
        " WHERE j.id IS NULL"
    ).fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM jobs j LEFT JOIN schedctl.served_slots ss ON ss.job_id = j.id"
        " WHERE ss.job_id IS NULL"
    ).fetchone() == (0,)
    slots = _job_slots(conn)
    assert len(slots) == len(set(slots))


def _set_example_hooks(cli: Cli, conn: Conn, *extra: str) -> None:
    install_example(conn)
    ok_json(cli("hooks", "set", "--create-job", CREATE, "--cancel-job", CANCEL, *extra, "--json"))


def test_eight_ticks_at_once_call_create_job_once_per_slot(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    _set_example_hooks(cli, conn)
    total = 2400
    seed_due(conn, total, orgs=25)
    due = _due_slots(conn)
    assert len(due) == total

    summaries = _race(conn, database_url, 8)

    assert sum(s["created"] for s in summaries) == total
    assert sum(1 for s in summaries if s["created"]) >= 2  # the work was shared
    (tasks,) = fetch_one(conn, "SELECT count(*) FROM tasks")
    assert tasks == total  # one call per slot: one task each
    assert set(_job_slots(conn)) == due
    reported = {j["job_id"] for s in summaries for j in s["jobs"]}
    assert reported == {r[0] for r in conn.execute("SELECT job_id FROM schedctl.served_slots")}
    _assert_every_job_has_its_task(conn)


def test_sigkilled_ticks_never_leave_a_job_without_its_task(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    install_example(conn)
    # The example's create-job, a little slower per call (as a real one is), so that a
    # batch's transaction lasts long enough for kills to land inside it.
    conn.execute(
        """
        CREATE FUNCTION public.slow_create(scheduler_id uuid, slot timestamptz) RETURNS text
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_sleep(0.0005);
            RETURN public.schedctl_create_job(scheduler_id, slot);
        END
        $$;
        """
    )
    ok_json(cli("hooks", "set", "--create-job", "public.slow_create", "--json"))
    total = 6000
    seed_due(conn, total, orgs=25)
    expected = _due_slots(conn)
    outcomes: Counter[str] = Counter()

    for round_no in range(5):
        jobs_before = len(_job_slots(conn))
        procs = _start_ticks(database_url, 2)
        kills = _kill_at_random(conn, procs, rng, (0.3, 4.0), seed)
        for killed in kills:
            outcomes["killed" if killed else "finished"] += 1
        _assert_every_job_has_its_task(conn)
        made = len(_job_slots(conn)) - jobs_before
        outcomes["killed after a commit" if made and any(kills) else "other rounds"] += 1
        expected |= _due_again(conn, 2000, f"{seed}-{round_no}")

    print(f"seed {seed}: {dict(outcomes)}")
    # Some ticks were killed with batches committed (and most, with one open as well).
    assert outcomes["killed after a commit"] >= 1, (seed, outcomes)
    (final,) = _summaries(_start_ticks(database_url, 1))
    assert final["failed"] == 0
    _assert_every_job_has_its_task(conn)
    assert set(_job_slots(conn)) == expected, seed
    (tasks,) = fetch_one(conn, "SELECT count(*) FROM tasks")
    assert tasks == len(expected), seed


def _start_worker(
    database_url: str, channel: str
) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """The example worker as a process; its stdout lines arrive on the queue once it listens."""
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "--channel", channel, "--poll", "600"],
        env=cli_env({"DATABASE_URL": database_url}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )
    assert proc.stderr is not None and proc.stdout is not None
    ready = proc.stderr.readline()
    assert ready.strip() == f"listening on {channel}", ready
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout

    def forward() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=forward, daemon=True).start()
    return proc, lines


def _claims(lines: queue.Queue[str], count: int, timeout: float) -> list[dict[str, Any]]:
    claimed: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(claimed) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the worker claimed {len(claimed)} of {count} jobs"
        try:
            claimed.append(json.loads(lines.get(timeout=remaining)))
        except queue.Empty:
            continue
    return claimed


def test_the_example_worker_is_woken_and_claims_every_job(
    cli: Cli, conn: Conn, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schedctl import db, tick
    from schedctl.config import Settings

    channel = "schedctl_jobs_test"
    _set_example_hooks(cli, conn, "--notify", channel)
    # Jobs made while no worker ran: the worker catches up from the table on start.
    seed_due(conn, 30, prefix="early")
    assert ok_json(cli("tick", "--json"))["created"] == 30
    worker, lines = _start_worker(database_url, channel)
    try:
        early = _claims(lines, 30, timeout=60)

        seed_due(conn, 600, prefix="late")
        committed: dict[str, float] = {}  # job id -> when its batch's commit was seen

        def on_job(job: dict[str, Any]) -> None:
            committed[str(job["job_id"])] = time.time()

        monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)
        with db.connect(Settings()) as tick_conn:
            summary = tick.run(
                tick_conn,
                on_job=on_job,
                batch_size=100,
                max_batch_size=200,
            )
        assert summary.created == 600
        late = _claims(lines, 600, timeout=60)
    finally:
        worker.send_signal(signal.SIGINT)
        worker.communicate(timeout=30)

    claimed = [c["job_id"] for c in early + late]
    assert len(claimed) == len(set(claimed)) == 630  # each job claimed once
    assert set(claimed) == {r[0] for r in conn.execute("SELECT id FROM jobs").fetchall()}
    assert conn.execute("SELECT DISTINCT status FROM jobs").fetchall() == [("running",)]
    # The worker's poll interval (600 s) never came: every late claim followed a wake-up.
    latencies = sorted(c["claimed_at"] - committed[c["job_id"]] for c in late)
    print(
        f"commit-to-claim latency over {len(latencies)} jobs in "
        f"{len({round(committed[c['job_id']], 3) for c in late})} batches: "
        f"median {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms"
    )
