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

BATCH_SIZE = 1000

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


def run(
    conn: db.Connection,
    *,
    on_job: JobSink,
    dry_run: bool = False,
    limit: int | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    actor: str = "tick",
) -> Summary:
    """One pass over the due schedulers, in committed batches (one rolled-back
    transaction for a dry run), then this host's heartbeat. `now` replaces the
    database clock, for tests."""
    try:
        summary = _pass(conn, on_job, dry_run, limit, now, batch_size, actor)
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
            with conn.transaction():
                claimed = db.fetch_one(conn, "tick_claim", now=now, batch=size, exclude=failed_ids)
                if claimed is None or not claimed["claimed"]:
                    break
                outcomes = _apply(conn, claimed["ids"], now, actor, summary, failed_ids)
            # Reported once the batch is committed: a job that is printed exists.
            for outcome in outcomes:
                _count(summary, outcome)
                if outcome["job_id"] is not None or (dry_run and not outcome["skip"]):
                    on_job(_job_entry(outcome, dry_run))
    return summary


def _apply(
    conn: db.Connection,
    ids: str,
    now: datetime | None,
    actor: str,
    summary: Summary,
    failed_ids: list[uuid.UUID],
) -> list[dict[str, Any]]:
    """Apply one claimed batch (`ids`: a uuid[] literal) set-based; if a row of it fails,
    redo the batch one scheduler at a time so that only the failing ones are left out."""
    try:
        with conn.transaction():
            return db.fetch_all(conn, "tick_apply", ids=ids, now=now, actor=actor)
    except _ROW_ERRORS:
        pass
    outcomes: list[dict[str, Any]] = []
    for scheduler_id in ids.strip("{}").split(","):
        try:
            with conn.transaction():
                outcomes += db.fetch_all(
                    conn, "tick_apply", ids=f"{{{scheduler_id}}}", now=now, actor=actor
                )
        except _ROW_ERRORS as exc:
            summary.due += 1
            summary.failed += 1
            failed_ids.append(uuid.UUID(scheduler_id))
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            summary.errors.append({"scheduler_id": str(scheduler_id), "message": message})
    return outcomes


def _count(summary: Summary, outcome: dict[str, Any]) -> None:
    summary.due += 1
    summary.missed += outcome["missed"]
    if outcome["job_id"] is not None:
        summary.created += 1
    else:  # skipped by the overlap policy, or the slot was already served
        summary.skipped += 1


def _job_entry(outcome: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    return {
        "scheduler_id": outcome["scheduler_id"],
        "job_id": None if dry_run else outcome["job_id"],
        "organisation_id": outcome["organisation_id"],
        "domain": outcome["domain"],
        "slot": outcome["slot"],
        "next_run_at": outcome["next_run_at"],
    }


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
