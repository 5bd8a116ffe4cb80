"""The audit trail and the jobs schedctl made, filtered (`log --since/--until/--action/
--actor/--source`, and `history` without a REF): optional filters of one static query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schedctl import db, schedulers
from schedctl.errors import InvalidInput
from schedctl.models import AuditEntry, Job, Ref

ACTIONS = (
    "create",
    "update",
    "pause",
    "resume",
    "delete",
    "run",
    "skip",
    "missed",
    "hooks",
    "org_create",
    "org_rename",
    "org_delete",
)
SOURCES = ("cli", "apply", "tick")
JOB_STATUSES = ("pending", "initializing", "running", "paused", "completed", "failed", "cancelled")

When = datetime | timedelta | None


def parse_when(raw: str | None, option: str) -> When:
    """A time (ISO 8601, UTC unless it has an offset) or an age (`2h`, `1d`: that long ago by
    the database's clock); None when not given."""
    if raw is None:
        return None
    from schedctl.validation import parse_time_or_duration

    return parse_time_or_duration(raw, option)


def _when_params(name: str, when: When) -> dict[str, Any]:
    return {
        f"{name}_at": when if isinstance(when, datetime) else None,
        f"{name}_ago": when if isinstance(when, timedelta) else None,
    }


@dataclass(frozen=True)
class AuditFilters:
    """Which entries `log` shows; None (or empty) is no filter."""

    since: When = None
    until: When = None
    actions: tuple[str, ...] = ()
    actor: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        unknown = [action for action in self.actions if action not in ACTIONS]
        if unknown:
            raise InvalidInput(f"--action {unknown[0]!r} is not one of {', '.join(ACTIONS)}")
        if self.source is not None and self.source not in SOURCES:
            raise InvalidInput(f"--source must be cli, apply or tick, got {self.source!r}")

    def params(self) -> dict[str, Any]:
        return {
            **_when_params("since", self.since),
            **_when_params("until", self.until),
            "actions": list(self.actions) or None,
            "actor": self.actor,
            "source": self.source,
        }


def audit_entries(
    conn: db.Connection,
    org_id: uuid.UUID | None,
    ref: Ref | None,
    filters: AuditFilters,
    *,
    limit: int,
) -> list[AuditEntry]:
    """The audit entries of an organisation (None: every one), or of one scheduler in it,
    that pass the filters, newest first."""
    return db.records(
        conn,
        "audit_search",
        AuditEntry,
        organisation_id=org_id,
        scheduler_id=schedulers.audit_scheduler_id(conn, org_id, ref),
        limit=limit,
        **filters.params(),
    )


def jobs_made(
    conn: db.Connection,
    org_id: uuid.UUID | None,
    *,
    since: When,
    status: str | None,
    limit: int,
    offset: int,
) -> list[Job]:
    """One page of the jobs schedctl made for an organisation's schedulers (None: every
    organisation's), newest first."""
    if status is not None and status not in JOB_STATUSES:
        raise InvalidInput(f"--status must be one of {', '.join(JOB_STATUSES)}, got {status!r}")
    return db.records(
        conn,
        "jobs_made",
        Job,
        organisation_id=org_id,
        status=status,
        limit=limit,
        offset=offset,
        **_when_params("since", since),
    )


def database_now(conn: db.Connection) -> datetime:
    """The database's clock (relative times in tables count from it)."""
    now: datetime = db.fetch_one(conn, "db_clock")["db_now"]
    return now
