"""Ctrl-C says what happened: before the commit, nothing is written and the error line says
so; once a change may have committed, the command finishes and prints what it did. Real
processes, SIGINT at random moments."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    Conn,
    fetch_one,
    finish_cli_process,
    run_cli_subprocess,
    seed_due,
    start_cli_process,
)

ENTRIES = 8000
TRIES = 20
ROLLED_BACK = "what was not yet committed was rolled back"


def _file(tmp_path: Path) -> str:
    lines = ["schedulers:"]
    for index in range(ENTRIES):
        lines += [f"  - domain: site{index:05d}.example.org", "    every: 24h"]
    path = tmp_path / "large.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _written(conn: Conn) -> tuple[int, int]:
    """Schedulers, and audit entries of their creation (the audit trail is append-only)."""
    schedulers = int(fetch_one(conn, "SELECT count(*) FROM schedulers")[0])
    audit = int(fetch_one(conn, "SELECT count(*) FROM schedctl.audit WHERE action = 'create'")[0])
    return schedulers, audit


def _forget(conn: Conn) -> None:
    """Back to no schedulers, for the next try."""
    conn.execute("DELETE FROM schedulers")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # twenty runs of a large apply, on a shared machine
def test_sigint_at_random_moments_of_a_large_apply_says_what_happened(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url, "SCHEDCTL_ORG": "Acme"}
    assert run_cli_subprocess(["org", "create", "Acme"], env).code == 0
    path = _file(tmp_path)
    started = time.monotonic()
    whole = run_cli_subprocess(["apply", "-f", path], env)
    took = time.monotonic() - started
    assert whole.code == 0, whole.stderr
    assert _written(conn) == (ENTRIES, ENTRIES)
    _forget(conn)
    created = ENTRIES

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    outcomes = []
    for attempt in range(TRIES):
        # From after the interpreter has started to past the whole run's length; stdout is
        # a pipe not read until the signal, so a late one lands while the plan is printed.
        delay = rng.uniform(0.25 * took, 1.1 * took)
        proc = start_cli_process(["apply", "-f", path], env)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        result = finish_cli_process(proc)
        schedulers, audit = _written(conn)
        audit -= created  # the earlier tries'
        where = f"try {attempt} (seed {seed}, {delay:.2f} s of {took:.2f} s): {result!r}"[:2000]
        if ROLLED_BACK in result.stderr:
            assert result.code == 130, where
            assert (schedulers, audit) == (0, 0), where
            assert result.stdout == "", where
            outcomes.append("rolled back")
        else:
            assert result.code in (0, 130), where
            assert (schedulers, audit) == (ENTRIES, ENTRIES), where
            if result.code == 0:  # finished: the whole plan, then its summary
                plan = result.stdout.splitlines()
                assert sum(line.startswith("+ create ") for line in plan) == ENTRIES, where
                assert plan[-1].endswith("; applied"), where
            else:
                assert "committed; output cut short" in result.stderr, where
            outcomes.append("committed")
            created += ENTRIES
        _forget(conn)
    print(f"seed {seed}, whole run {took:.2f} s, outcomes {outcomes}")
    assert "committed" in outcomes, outcomes  # some signal came after the commit


def _connect(database_url: str) -> Any:
    from schedctl import db
    from schedctl.config import load_settings

    os.environ["SCHEDCTL_DATABASE_URL"] = database_url
    return db.connect(load_settings())


def test_a_commit_that_wrote_holds_ctrl_c_to_the_end_of_the_command(
    database_url: str, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What create, update, delete, run, pause and tick share: every unit of work that
    wrote holds SIGINT from its commit on; one that only read does not."""
    from schedctl import interrupts

    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)
    interrupts.reset()
    try:
        with _connect(database_url) as session:
            with session.work():
                session.execute("SELECT 1")
            with pytest.raises(KeyboardInterrupt):  # nothing written: Ctrl-C interrupts
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            assert not interrupts.committed()
            with session.work():
                session.execute("INSERT INTO organisations (name) VALUES ('Held')")
            os.kill(os.getpid(), signal.SIGINT)  # held: no KeyboardInterrupt
            time.sleep(0.05)
            assert interrupts.committed() and interrupts.received()
            assert interrupts.interrupted_message().startswith("interrupted after the commit")
    finally:
        interrupts.reset()
    assert fetch_one(conn, "SELECT count(*) FROM organisations WHERE name = 'Held'")[0] == 1


def test_a_tick_interrupted_after_a_batch_stops_between_batches(
    database_url: str, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that Ctrl-C reached after a committed batch reports the jobs it made and
    leaves the rest due."""
    from schedctl import interrupts
    from schedctl import tick as tick_pass

    env = {"SCHEDCTL_DATABASE_URL": database_url}
    assert run_cli_subprocess(["org", "create", "Acme"], env).code == 0
    seed_due(conn, 40, orgs=1)
    made: list[Any] = []

    def on_job(entry: dict[str, Any]) -> None:
        if not made:
            os.kill(os.getpid(), signal.SIGINT)  # after the first batch's commit
        made.append(entry)

    interrupts.reset()
    try:
        with _connect(database_url) as session:
            summary = tick_pass.run(session, on_job=on_job, batch_size=4, max_batch_size=4)
    finally:
        interrupts.reset()
    assert summary.interrupted
    assert summary.created == len(made) == 4
    assert fetch_one(conn, "SELECT count(*) FROM jobs")[0] == 4
    assert "4 job(s) reported are committed" in tick_pass.interrupted_text(summary)
