"""Ctrl-C says what happened: before the commit, nothing is written and the error line says
so; once a change may have committed, the command finishes and prints what it did. Real
processes, SIGINT before and after the commit."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
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

# A few hundred entries at three chosen moments; bench/interrupt_apply.py sends SIGINT at
# random moments of an 8,000-entry apply.
ENTRIES = 300
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


def _until(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.05)


def _interrupted_while_waiting_for(
    database_url: str, conn: Conn, env: dict[str, str], path: str, table: str
) -> Any:
    """An apply interrupted while it waits for a lock on `table` that another session holds
    (so inside its transaction, before the commit)."""
    import psycopg

    with psycopg.connect(database_url) as holder:
        holder.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        proc = start_cli_process(["apply", "-f", path], env)
        _until(
            lambda: fetch_one(
                conn,
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                [table],
            )[0],
            f"the apply to wait for its lock on {table}",
        )
        proc.send_signal(signal.SIGINT)
        result = finish_cli_process(proc)
        holder.rollback()
    return result


@pytest.mark.timeout(300)
def test_sigint_before_and_after_the_commit_of_an_apply_says_what_happened(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url, "SCHEDCTL_ORG": "Acme"}
    assert run_cli_subprocess(["org", "create", "Acme"], env).code == 0
    path = _file(tmp_path)

    # Before it wrote anything (its first write waits), then after it wrote the schedulers
    # (the audit entries wait): rolled back, nothing printed, nothing kept.
    for table in ("public.schedulers", "schedctl.audit"):
        result = _interrupted_while_waiting_for(database_url, conn, env, path, table)
        assert ROLLED_BACK in result.stderr, (table, result)
        assert result.code == 130, (table, result)
        assert result.stdout == "", (table, result)
        assert _written(conn) == (0, 0), table

    # After the commit, while the plan is printed (into a pipe of one page, not read): the
    # command finishes printing the whole plan and says it was interrupted after the commit.
    proc = start_cli_process(["apply", "-f", path], env)
    assert proc.stdout is not None
    fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    _until(lambda: _written(conn) == (ENTRIES, ENTRIES), "the apply to commit")
    time.sleep(0.2)
    assert proc.poll() is None, "the apply finished before the signal: its plan fits the pipe"
    proc.send_signal(signal.SIGINT)
    result = finish_cli_process(proc)
    assert ROLLED_BACK not in result.stderr, result
    assert _written(conn) == (ENTRIES, ENTRIES)
    if result.code == 0:  # finished: the whole plan, then its summary
        plan = result.stdout.splitlines()
        assert sum(line.startswith("+ create ") for line in plan) == ENTRIES, result
        assert plan[-1].endswith("; applied"), result
        assert "interrupted after the commit" in result.stderr, result
    else:
        assert result.code == 130, result
        assert "committed; output cut short" in result.stderr, result


@pytest.fixture
def sigint_at_a_terminal() -> Iterator[None]:
    """This process handles SIGINT as Python does at a terminal (KeyboardInterrupt), also
    when the suite was started with SIGINT ignored (in the background)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _connect(database_url: str) -> Any:
    from schedctl import db
    from schedctl.config import load_settings

    os.environ["SCHEDCTL_DATABASE_URL"] = database_url
    return db.connect(load_settings())


@pytest.mark.usefixtures("sigint_at_a_terminal")
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


def test_a_process_started_ignoring_sigint_keeps_ignoring_it_through_a_commit(
    database_url: str, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started with SIGINT ignored (nohup, a job a shell put in the background), schedctl
    leaves it ignored: a commit that wrote does not start catching it."""
    from schedctl import interrupts

    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    interrupts.reset()
    try:
        with _connect(database_url) as session:
            with session.work():
                session.execute("INSERT INTO organisations (name) VALUES ('Ignored')")
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert not interrupts.received()
    finally:
        interrupts.reset()
        signal.signal(signal.SIGINT, previous)
    assert fetch_one(conn, "SELECT count(*) FROM organisations WHERE name = 'Ignored'")[0] == 1


@pytest.mark.usefixtures("sigint_at_a_terminal")
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
        if not made:  # after the first batch's commit
            # To the main thread, which holds it: a signal sent to the process may go to
            # another thread of the test runner, and reach the main thread a batch later.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
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
