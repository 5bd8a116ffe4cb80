"""The tick pass: turn every due scheduler into one job and move its schedule on."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg import errors as pgerrors

from schedctl import db, interrupts

# A pass claims its first batch small, then bigger ones up to the maximum: a pass over a
# few due schedulers commits soon (and several ticks starting together share the work),
# while a large one pays the cost of a batch (planning, a commit, its scans) less often.
# The maximum stays modest so that the two connections of a large pass end together.
BATCH_SIZE = 1000
MAX_BATCH_SIZE = 2000


# A pass's counts, in the order every report of it (output, heartbeat, ping) gives them.
COUNTS = ("due", "created", "skipped", "failed", "missed")


@dataclass
class Summary:
    """The counts of one pass; due = created + skipped + failed."""

    due: int = 0
    created: int = 0
    skipped: int = 0
    failed: int = 0
    missed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Ctrl-C came after a batch had committed: the pass stopped before its next batch.
    interrupted: bool = False
    # Paused schedulers whose `pause --until` had come, resumed before the pass (a dry run:
    # that would be).
    resumed: int = 0

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def counts(self) -> dict[str, int]:
        """The counts of COUNTS by name."""
        return {name: getattr(self, name) for name in COUNTS}


def interrupted_text(summary: Summary) -> str:
    """The error line of a pass that Ctrl-C stopped between batches."""
    return (
        f"interrupted: the pass stopped between batches; the {summary.created} job(s) reported "
        "are committed, and schedulers still due are served by the next tick"
    )


JobSink = Callable[[dict[str, Any]], None]
# Opens another connection like the one a pass was given (for a second worker).
Connector = Callable[[], AbstractContextManager[db.Connection]]


class Outcome(NamedTuple):
    """What a batch did for one scheduler (schedctl.tick_outcome): the job made (None: none),
    the slot and the next run; `skip`: no job by the overlap policy or a slot served already;
    `error`: the scheduler failed alone, and nothing of it was written."""

    scheduler_id: uuid.UUID
    job_id: str | None
    organisation_id: uuid.UUID | None
    domain: str | None
    slot: datetime | None
    next_run_at: datetime | None
    missed: int
    skip: bool
    error: str | None


def run(
    conn: db.Connection,
    *,
    on_job: JobSink,
    dry_run: bool = False,
    limit: int | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    max_batch_size: int = MAX_BATCH_SIZE,
    actor: str = "tick",
    connect: Connector | None = None,
    summary: Summary | None = None,
) -> Summary:
    """One pass over the due schedulers, in committed batches of `batch_size` doubling
    up to `max_batch_size`, then this host's heartbeat; a dry run is one transaction,
    rolled back. Given `connect`, a large pass (its first batch came back full) also
    claims batches over a second connection, so that the database applies two at once,
    as two ticks would. `now` replaces the database clock, for tests. Counts go into
    `summary` when given, so a caller still has them if the pass breaks off.
    Each batch is one call of schedctl.tick_batch: the database claims, makes the jobs
    (with its hooks), notifies and commits; a dry run calls no hook and writes nothing."""
    state = _Pass(
        on_job=on_job,
        dry_run=dry_run,
        limit=limit,
        now=now,
        actor=actor,
        max_batch_size=max(batch_size, max_batch_size),
        summary=summary if summary is not None else Summary(),
        lock_timeout=f"{int(conn.lock_timeout * 1000)}ms",
    )
    try:
        if dry_run:
            state.summary.resumed = int(db.fetch_one(conn, "tick_would_resume", now=now)["resumed"])
        else:
            state.summary.resumed = resume_paused(conn, now=now, actor=actor)
        _run_pass(conn, state, batch_size, connect)
    except psycopg.Error as exc:
        if not dry_run:
            _record_failure(conn, str(exc))
        raise
    if not dry_run:
        record_heartbeat(conn, state.summary)
    return state.summary


@dataclass
class _Pass:
    """One pass: what it was asked, and what it did so far. Shared by the connections
    working on it: `lock` guards the summary, `failed_ids` and the calls of `on_job`."""

    on_job: JobSink
    dry_run: bool
    limit: int | None
    now: datetime | None
    actor: str
    max_batch_size: int
    summary: Summary = field(default_factory=Summary)
    failed_ids: set[uuid.UUID] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    second_error: BaseException | None = None
    lock_timeout: str = "30000ms"


def _run_pass(
    conn: db.Connection, state: _Pass, batch_size: int, connect: Connector | None
) -> None:
    if state.dry_run:
        with conn.transaction(force_rollback=True), conn.work():
            _work(conn, state, batch_size)
        return
    # A real pass commits batch by batch, so a killed tick keeps the batches it finished.
    first = batch_size if state.limit is None else min(batch_size, state.limit)
    size = min(first * 2, state.max_batch_size)
    seconds: list[threading.Thread] = []

    def start_second() -> None:  # once the first claim came back full
        seconds.append(
            threading.Thread(target=_second_worker, args=(connect, state, size), daemon=True)
        )
        seconds[0].start()

    may_add_second = connect is not None and state.limit is None
    try:
        if _batch(conn, state, first, on_full=start_second if may_add_second else None):
            _work(conn, state, size)
    except BaseException:
        state.stop.set()
        raise
    finally:
        for worker in seconds:
            worker.join()
    if state.second_error is not None:
        raise state.second_error


def _second_worker(connect: Connector, state: _Pass, size: int) -> None:
    """The second worker of a large pass, on its own connection."""
    try:
        with connect() as conn:
            try:
                _work(conn, state, size)
            except BaseException as exc:  # raised again by the first worker
                state.second_error = exc
                state.stop.set()
    except Exception:
        pass  # no second connection (the server may refuse one): the first carries on alone


def _work(conn: db.Connection, state: _Pass, size: int) -> None:
    """Batches of growing size until none is left to claim (or the limit is reached)."""
    while not state.stop.is_set():
        if interrupts.received():  # held since a batch committed: stop between batches
            state.summary.interrupted = True
            return
        size = min(size, state.max_batch_size)  # lowered when the server cancelled a batch
        if state.limit is not None:
            size = min(size, state.limit - state.summary.due)
            if size <= 0:
                return
        if not _batch(conn, state, size):
            return
        size = min(size * 2, state.max_batch_size)


def _batch(
    conn: db.Connection, state: _Pass, size: int, on_full: Callable[[], None] | None = None
) -> int:
    """Claim, apply and commit one batch, then report it; the number of schedulers
    claimed (0: none is left). `on_full` is called when the claim took a full batch.
    A batch the server cancels (a statement timeout) is rolled back and tried again at
    half the size, which the rest of the pass keeps to; one scheduler at a time is the
    last try."""
    while True:
        try:
            return _claim_and_apply(conn, state, size, on_full)
        except pgerrors.QueryCanceled:
            if size <= 1:
                raise
            size = max(1, size // 2)
            with state.lock:
                state.max_batch_size = min(state.max_batch_size, size)


def _claim_and_apply(
    conn: db.Connection, state: _Pass, size: int, on_full: Callable[[], None] | None
) -> int:
    """One batch: a single statement, its own transaction outside a dry run (the database
    claims, makes the jobs, notifies and commits; no transaction waits on this process),
    a savepoint of the dry run's transaction in one."""
    with state.lock:
        exclude = list(state.failed_ids)
    params = {
        "batch": size,
        "exclude": exclude,
        "now": state.now,
        "actor": state.actor,
        "dry_run": state.dry_run,
        "lock_timeout": state.lock_timeout,
    }
    if state.dry_run:
        with conn.work():
            rows = db.fetch_tuples(conn, "tick_batch", **params)
    else:
        # The statement commits the batch itself: Ctrl-C is held from here on, and the pass
        # stops after this batch (interrupts.received()), saying what it committed.
        interrupts.hold()
        try:
            rows = db.fetch_tuples(conn, "tick_batch", **params)
        except BaseException:
            interrupts.commit_failed()
            raise
        interrupts.commit_returned()
    if on_full is not None and len(rows) >= size:
        on_full()
    # Reported once the batch is committed: a job that is printed exists.
    with state.lock:
        _report(state, [Outcome(*row) for row in rows])
    return len(rows)


def _report(state: _Pass, outcomes: list[Outcome]) -> None:
    """Count a committed batch's outcomes and hand its jobs to `on_job` (under the lock).
    A scheduler that failed is counted once in the pass, though the other connection may
    have tried it again after this one's batch released it."""
    summary, dry_run = state.summary, state.dry_run
    for outcome in outcomes:
        if outcome.error is not None:
            if outcome.scheduler_id in state.failed_ids:
                continue
            state.failed_ids.add(outcome.scheduler_id)
            summary.due += 1
            summary.failed += 1
            summary.errors.append(
                {"scheduler_id": str(outcome.scheduler_id), "message": outcome.error}
            )
            continue
        summary.due += 1
        summary.missed += outcome.missed
        if outcome.job_id is not None:
            summary.created += 1
        else:  # skipped by the overlap policy, declined by a hook, or the slot was served
            summary.skipped += 1
        if outcome.job_id is not None or (dry_run and not outcome.skip):
            state.on_job(
                {
                    "scheduler_id": outcome.scheduler_id,
                    "job_id": None if dry_run else outcome.job_id,
                    "organisation_id": outcome.organisation_id,
                    "domain": outcome.domain,
                    "slot": outcome.slot,
                    "next_run_at": outcome.next_run_at,
                }
            )


def resume_paused(conn: db.Connection, *, now: datetime | None, actor: str) -> int:
    """Resume, in one statement (its own transaction), the schedulers whose `pause --until`
    has come, before the pass claims what is due; how many."""
    row = db.fetch_one(
        conn,
        "tick_resume_paused",
        now=now,
        actor=actor,
        lock_timeout=f"{int(conn.lock_timeout * 1000)}ms",
    )
    return int(row["resumed"])


def record_heartbeat(conn: db.Connection, summary: Summary) -> None:
    """Leave this host's outcome for `status` (one statement, its own transaction)."""
    db.execute(
        conn,
        "tick_heartbeat",
        host=socket.gethostname(),
        ok=summary.ok,
        message=summary.errors[0]["message"] if summary.errors else None,
        **summary.counts(),
    )


def _record_failure(conn: db.Connection, message: str) -> None:
    """Best effort: leave a failed heartbeat when the pass itself broke off."""
    try:
        conn.rollback()
        first_line = message.strip().splitlines()[0] if message.strip() else "tick failed"
        record_heartbeat(conn, Summary(failed=1, errors=[{"message": first_line}]))
    except psycopg.Error:
        pass  # the connection is gone; status will see the heartbeat age instead
