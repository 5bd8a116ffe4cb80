"""The tick pass: turn every due scheduler into one job and move its schedule on."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg.rows import tuple_row

from schedctl import db, interrupts
from schedctl import hooks as hooks_

# A pass claims its first batch small, then bigger ones up to the maximum: a pass over a
# few due schedulers commits soon (and several ticks starting together share the work),
# while a large one pays the cost of a batch (planning, a commit, its scans) less often.
# The maximum stays modest so that the two connections of a large pass end together.
BATCH_SIZE = 1000
MAX_BATCH_SIZE = 2000

# Errors that belong to one scheduler's rows (a host constraint or trigger refusing a
# job); anything else (connection lost, lock timeout, schema missing) ends the pass.
# A trigger's RAISE EXCEPTION (SQLSTATE class P0) is a ProgrammingError to psycopg, a
# class that also holds "schema missing", so the PL/pgSQL errors are named one by one.
_ROW_ERRORS = (
    psycopg.IntegrityError,
    psycopg.DataError,
    psycopg.InternalError,
    pgerrors.RaiseException,
    pgerrors.AssertFailure,
    pgerrors.NoDataFound,
    pgerrors.TooManyRows,
)


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


def interrupted_text(summary: Summary) -> str:
    """The error line of a pass that Ctrl-C stopped between batches."""
    return (
        f"interrupted: the pass stopped between batches; the {summary.created} job(s) reported "
        "are committed, and schedulers still due are served by the next tick"
    )


JobSink = Callable[[dict[str, Any]], None]
# Opens another connection like the one a pass was given (for a second worker).
Connector = Callable[[], AbstractContextManager[db.Connection]]
# One row of tick_apply: scheduler_id, job_id, organisation_id, domain, slot, next_run_at,
# missed, skip.
Outcome = tuple[Any, ...]


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
    The database's hooks are read once, at the start of the pass."""
    hooks = hooks_.read(conn)
    state = _Pass(
        on_job=on_job,
        dry_run=dry_run,
        limit=limit,
        now=now,
        actor=actor,
        max_batch_size=max(batch_size, max_batch_size),
        summary=summary if summary is not None else Summary(),
        statement=hooks_.tick_statement(hooks, dry_run),
        notify=None if dry_run else hooks.notify,
        hook_names=hooks.names(),
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
    working on it: `lock` guards the summary and the calls of `on_job`; `claiming` guards
    `failed_ids` and each claim that reads it."""

    on_job: JobSink
    dry_run: bool
    limit: int | None
    now: datetime | None
    actor: str
    max_batch_size: int
    summary: Summary = field(default_factory=Summary)
    failed_ids: list[uuid.UUID] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    claiming: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    second_error: BaseException | None = None
    # tick_apply with the database's hooks in it; the channel to notify after each commit
    # (None: none); the hook functions, as an error raised inside one names it.
    statement: str = ""
    notify: str | None = None
    hook_names: tuple[str, ...] = ()


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
    with conn.work():
        # Claims and failures are ordered by `claiming`: a scheduler that failed in one
        # worker is either still locked by it or already excluded here, never taken twice.
        with state.claiming:
            claimed = db.fetch_one(
                conn, "tick_claim", now=state.now, batch=size, exclude=state.failed_ids
            )
        ids, count = claimed["ids"], claimed["claimed"]
        if not count:
            return 0
        if on_full is not None and count >= size:
            on_full()
        try:
            with conn.work():  # a savepoint: the claimed rows stay locked if it fails
                # Rows read after the commit: no transaction sits idle while Python
                # converts them (the server may end a session idle in a transaction).
                applied = _apply(conn, state, ids)
        except psycopg.Error as exc:
            if not _row_error(exc, state.hook_names):
                raise
            # A row of the batch failed: redo the batch one scheduler at a time, so that
            # only the failing ones are left out.
            applied = None
            outcomes = _one_at_a_time(conn, state, ids)
        if state.notify is not None:
            if applied is not None:  # the notification needs the ids before the commit
                outcomes, applied = applied.fetchall(), None
            _notify(conn, state.notify, outcomes)
    if applied is not None:
        outcomes = applied.fetchall()
    # Reported once the batch is committed: a job that is printed exists.
    with state.lock:
        _report(state, outcomes)
    return int(count)


def _row_error(exc: psycopg.Error, hook_names: tuple[str, ...] = ()) -> bool:
    """Whether an error belongs to one scheduler's rows (a host constraint or trigger
    refusing a job, or any error raised inside a hook function), not to the session
    (ended by the server, a transaction state)."""
    if (exc.sqlstate or "").startswith(("25", "57", "08")):
        return False
    if isinstance(exc, _ROW_ERRORS):
        return True
    context = exc.diag.context or ""
    return any(f"function {name}(" in context for name in hook_names)


def _apply(
    conn: db.Connection, state: _Pass, ids: list[uuid.UUID]
) -> psycopg.Cursor[tuple[Any, ...]]:
    """Run tick_apply (with the database's hooks) over claimed schedulers; its rows are
    left to fetch."""
    cursor = conn.cursor(row_factory=tuple_row)
    cursor.execute(state.statement, {"ids": ids, "now": state.now, "actor": state.actor})
    return cursor


def _notify(conn: db.Connection, channel: str, outcomes: list[Outcome]) -> None:
    """Tell the channel's listeners that the batch made jobs: the NOTIFY goes out when the
    batch's transaction commits, and not at all if it rolls back."""
    job_ids = [str(outcome[1]) for outcome in outcomes if outcome[1] is not None]
    if job_ids:
        db.execute(conn, "tick_notify", channel=channel, payload=hooks_.notify_payload(job_ids))


def _one_at_a_time(conn: db.Connection, state: _Pass, ids: list[uuid.UUID]) -> list[Outcome]:
    """Each scheduler of a claimed batch applied in a savepoint of its own; one that still
    fails is counted and left out of this pass."""
    outcomes: list[Outcome] = []
    for scheduler_id in ids:
        try:
            with conn.work():
                outcomes += _apply(conn, state, [scheduler_id]).fetchall()
        except psycopg.Error as exc:
            if not _row_error(exc, state.hook_names):
                raise
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            with state.claiming:
                state.failed_ids.append(scheduler_id)
            with state.lock:
                state.summary.due += 1
                state.summary.failed += 1
                state.summary.errors.append({"scheduler_id": str(scheduler_id), "message": message})
    return outcomes


def _report(state: _Pass, outcomes: list[Outcome]) -> None:
    """Count a committed batch's outcomes and hand its jobs to `on_job` (under the lock).
    Plain tuples in tick_apply's column order: a large pass has tens of thousands."""
    summary, dry_run = state.summary, state.dry_run
    for scheduler_id, job_id, organisation_id, domain, slot, next_run_at, missed, skip in outcomes:
        summary.due += 1
        summary.missed += missed
        if job_id is not None:
            summary.created += 1
        else:  # skipped by the overlap policy, or the slot was already served
            summary.skipped += 1
        if job_id is not None or (dry_run and not skip):
            state.on_job(
                {
                    "scheduler_id": scheduler_id,
                    "job_id": None if dry_run else job_id,
                    "organisation_id": organisation_id,
                    "domain": domain,
                    "slot": slot,
                    "next_run_at": next_run_at,
                }
            )


def resume_paused(conn: db.Connection, *, now: datetime | None, actor: str) -> int:
    """Resume, in one statement, the schedulers whose `pause --until` has come, before the
    pass claims what is due; how many."""
    with conn.work():
        return int(db.fetch_one(conn, "tick_resume_paused", now=now, actor=actor)["resumed"])


def record_heartbeat(conn: db.Connection, summary: Summary) -> None:
    """Leave this host's outcome for `status`."""
    with conn.work():
        db.execute(conn, "tick_heartbeat_relaxed")
        db.execute(
            conn,
            "tick_heartbeat",
            host=socket.gethostname(),
            ok=summary.ok,
            due=summary.due,
            created=summary.created,
            skipped=summary.skipped,
            failed=summary.failed,
            missed=summary.missed,
            message=summary.errors[0]["message"] if summary.errors else None,
        )


def _record_failure(conn: db.Connection, message: str) -> None:
    """Best effort: leave a failed heartbeat when the pass itself broke off."""
    try:
        conn.rollback()
        first_line = message.strip().splitlines()[0] if message.strip() else "tick failed"
        record_heartbeat(conn, Summary(failed=1, errors=[{"message": first_line}]))
    except psycopg.Error:
        pass  # the connection is gone; status will see the heartbeat age instead
