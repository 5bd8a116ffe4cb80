"""Ctrl-C that tells the truth: once a transaction that wrote is committing, an interrupt
waits for the command to finish instead of breaking it, so that what the command says
(the plan, the job it made, "rolled back") matches what the database holds."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class _State:
    """The command's interrupt state (one command per process)."""

    # SIGINT is recorded rather than raised (a commit is under way or done).
    holding = False
    # A transaction that wrote has committed.
    committed = False
    # SIGINT arrived while held.
    received = False
    previous: Any = None


def _record(signum: int, frame: FrameType | None) -> None:
    _State.received = True


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def hold() -> None:
    """From now on SIGINT is recorded, not raised: the commit of a transaction that wrote
    is under way, and the command is to finish and print what it did. (Only the main
    thread receives signals; another thread's commit holds nothing.)"""
    if _State.holding or not _main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return  # started with SIGINT ignored (nohup, a background job): it stays ignored
    _State.holding = True
    _State.previous = signal.signal(signal.SIGINT, _record)
    # Blocked as well: a handler that runs while the plan is being written to a pipe
    # interrupts the write, and Python's buffered writer can drop what it had not written.
    # (A thread started earlier may still take it: then it is only recorded.)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def commit_returned() -> None:
    """The commit returned: the change is in the database."""
    _State.committed = True


def commit_failed() -> None:
    """The commit failed: unless an earlier one succeeded, nothing was written, and Ctrl-C
    interrupts again."""
    if _State.committed or not _State.holding or not _main_thread():
        return
    _unhold()


def committed() -> bool:
    """Whether the command has committed a change (so an interrupt must not say that it
    rolled back)."""
    return _State.committed


def received() -> bool:
    """Whether SIGINT arrived while held (tick stops at its next batch)."""
    return _State.received or (_State.holding and signal.SIGINT in signal.sigpending())


def _unhold() -> None:
    """SIGINT unblocked (one that was waiting is recorded) and its handler restored."""
    _State.received = received()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, _State.previous)
    _State.holding = False
    _State.previous = None


def reset() -> None:
    """A new command: nothing committed, no interrupt held (main() runs many commands in
    one process in the tests)."""
    if _State.holding and _main_thread():
        _unhold()
    _State.holding = _State.committed = _State.received = False
    _State.previous = None


def release() -> None:
    """The command is over: SIGINT unblocked and its handler restored (one that arrived
    while held stays recorded), so that a process started afterwards does not inherit it
    blocked."""
    if _State.holding and _main_thread():
        _unhold()


def interrupted_message() -> str:
    """What an interrupt that broke the command off did, in its error line."""
    if _State.committed:
        return "interrupted after the commit: the change is committed; output cut short"
    return "interrupted; what was not yet committed was rolled back"


def failed_message(message: str) -> str:
    """An error line after a commit (printing failed): it must not read as if nothing was
    written."""
    if _State.committed:
        return f"the change is committed; output cut short: {message}"
    return message


def note_held() -> None:
    """After a command that finished: one warning line when Ctrl-C came after its commit
    (the command completed, and its output is whole)."""
    if received():
        from schedctl import journal

        journal.warning("interrupted after the commit: the change is committed, output complete")
