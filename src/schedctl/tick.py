"""The tick pass: turn every due scheduler into one job and move its schedule on."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from schedctl import db

# A pass claims its first batch small and doubles each next one up to the maximum: a
# pass over a few due schedulers commits soon (and several ticks starting together share
# the work), while a large one pays the cost of a batch (planning, a commit, its scans)
# only a few times.
BATCH_SIZE = 1000
MAX_BATCH_SIZE = 8000

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

    @property
    def ok(self) -> bool:
        return self.failed == 0


JobSink = Callable[[dict[str, Any]], None]
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
) -> Summary:
    """One pass over the due schedulers, in committed batches of `batch_size` doubling
    up to `max_batch_size` (one rolled-back transaction for a dry run), then this host's
    heartbeat. `now` replaces the database clock, for tests."""
    try:
        summary = _pass(
            conn, on_job, dry_run, limit, now, batch_size, max(batch_size, max_batch_size), actor
        )
    except psycopg.Error as exc:
        if not dry_run:
            _record_failure(conn, str(exc))
        raise
    if not dry_run:
        record_heartbeat(conn, summary)
    return summary


def _pass(
    conn: db.Connection,
    on_job: JobSink,
    dry_run: bool,
    limit: int | None,
    now: datetime | None,
    batch_size: int,
    max_batch_size: int,
    actor: str,
) -> Summary:
    summary = Summary()
    failed_ids: list[uuid.UUID] = []
    # A real pass commits batch by batch, so a killed tick keeps the batches it finished;
    # a dry run does the same work inside one transaction that is rolled back.
    outer = conn.transaction(force_rollback=True) if dry_run else nullcontext()
    with outer:
        while limit is None or summary.due < limit:
            size = batch_size if limit is None else min(batch_size, limit - summary.due)
            batch_size = min(batch_size * 2, max_batch_size)
            ids = None
            try:
                with conn.transaction():
                    ids = _claim(conn, now, size, None, failed_ids)
                    if ids is None:
                        break
                    outcomes = db.fetch_tuples(conn, "tick_apply", ids=ids, now=now, actor=actor)
            except _ROW_ERRORS:
                if ids is None:
                    raise
                # A row of the batch failed, and the batch was rolled back: redo it one
                # scheduler at a time, so that only the failing ones are left out.
                outcomes = _one_at_a_time(conn, ids, now, actor, summary, failed_ids)
            # Reported once the batch is committed: a job that is printed exists.
            _report(summary, outcomes, on_job, dry_run)
    return summary


def _claim(
    conn: db.Connection,
    now: datetime | None,
    size: int,
    only: str | None,
    failed_ids: list[uuid.UUID],
) -> str | None:
    """Lock up to `size` due schedulers (of `only`, when given); their ids as a uuid[]
    literal, or None when there are none."""
    claimed = db.fetch_one(conn, "tick_claim", now=now, batch=size, only=only, exclude=failed_ids)
    return claimed["ids"] if claimed is not None and claimed["claimed"] else None


def _one_at_a_time(
    conn: db.Connection,
    ids: str,
    now: datetime | None,
    actor: str,
    summary: Summary,
    failed_ids: list[uuid.UUID],
) -> list[Outcome]:
    """Each scheduler of a rolled-back batch (`ids`: a uuid[] literal) claimed again and
    applied in its own transaction; one that still fails is counted and left out."""
    outcomes: list[Outcome] = []
    for scheduler_id in ids.strip("{}").split(","):
        try:
            with conn.transaction():
                # Still due and free? Another tick may have taken it meanwhile.
                one = _claim(conn, now, 1, f"{{{scheduler_id}}}", failed_ids)
                if one is not None:
                    outcomes += db.fetch_tuples(conn, "tick_apply", ids=one, now=now, actor=actor)
        except _ROW_ERRORS as exc:
            summary.due += 1
            summary.failed += 1
            failed_ids.append(uuid.UUID(scheduler_id))
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            summary.errors.append({"scheduler_id": str(scheduler_id), "message": message})
    return outcomes


def _report(summary: Summary, outcomes: list[Outcome], on_job: JobSink, dry_run: bool) -> None:
    """Count a committed batch's outcomes and hand its jobs to `on_job`. Plain tuples in
    tick_apply's column order: a large pass has tens of thousands of them."""
    for scheduler_id, job_id, organisation_id, domain, slot, next_run_at, missed, skip in outcomes:
        summary.due += 1
        summary.missed += missed
        if job_id is not None:
            summary.created += 1
        else:  # skipped by the overlap policy, or the slot was already served
            summary.skipped += 1
        if job_id is not None or (dry_run and not skip):
            on_job(
                {
                    "scheduler_id": scheduler_id,
                    "job_id": None if dry_run else job_id,
                    "organisation_id": organisation_id,
                    "domain": domain,
                    "slot": slot,
                    "next_run_at": next_run_at,
                }
            )


def record_heartbeat(conn: db.Connection, summary: Summary) -> None:
    """Leave this host's outcome for `status`."""
    with conn.transaction():
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
