"""The values schedctl works with: rows read from the database, as typed records, and
checked input, as the command line hands it to the operations."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from enum import Enum
from typing import Any, NamedTuple


class Overlap(str, Enum):
    """What tick does for a slot when a job of the same domain and organisation is active."""

    REPLACE = "replace"
    SKIP = "skip"
    ALLOW = "allow"


# `--catchup-window none`: no window (every due slot is served, however late).
NO_WINDOW = 0

# `--start-at now`: the database's clock at the moment of the change.
START_NOW = "now"
Start = datetime | str  # an aware UTC datetime, or START_NOW


def paths_to_db(paths: list[str]) -> str | None:
    """A path list as the host's tables store it: JSON array text, NULL when empty."""
    return json.dumps(paths) if paths else None


def paths_from_db(text: str | None) -> list[str]:
    """A stored path list; anything malformed a host wrote (`'null'` included) reads as []."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def rfc3339(moment: datetime) -> str:
    """A time as an RFC 3339 string in UTC."""
    if moment.tzinfo is not timezone.utc:  # the database's times are loaded in UTC already
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat()[:-6] + "Z"  # less its "+00:00"


def plain(value: Any) -> Any:
    """A value as JSON holds it: times in RFC 3339 UTC, UUIDs as strings."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


# A field read for schedctl's own use, left out of the JSON document.
_INTERNAL = {"json": False}


@dataclass(frozen=True)
class Scheduler:
    """One scheduler: the host's row, what schedctl keeps beside it, and the database clock
    when it was read."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    domain: str
    schedule_interval_hours: int
    next_run_at: datetime
    is_enabled: bool
    pause_reason: str | None
    overlap_policy: str
    concurrency: int
    find_links: bool
    max_pages: int
    include_paths: list[str]
    exclude_paths: list[str]
    required_workers: int
    created_at: datetime
    updated_at: datetime
    # A wall-clock grid: the time of day ("03:00") in time_zone, or None for the elapsed-time
    # grid; a spread window and this scheduler's stable offset in it; the catch-up window;
    # when a pause ends by itself.
    at: str | None
    time_zone: str
    spread_seconds: int
    spread_offset_seconds: int
    catchup_window_seconds: int | None
    paused_until: datetime | None
    # One wall-clock time of the grid, in time_zone (None: the elapsed-time grid).
    grid_anchor: datetime | None = field(metadata=_INTERNAL)
    domain_id: int = field(metadata=_INTERNAL)
    db_now: datetime = field(metadata=_INTERNAL)
    # Read by `list` only: the organisation's name and the newest job tick or `run` made.
    organisation_name: str | None = field(default=None, metadata=_INTERNAL)
    last_run: LastRun | None = field(default=None, metadata=_INTERNAL)

    @classmethod
    def from_row(cls, **row: Any) -> Scheduler:
        """A scheduler from a row of the scheduler queries (path lists as stored)."""
        row["include_paths"] = paths_from_db(row["include_paths"])
        row["exclude_paths"] = paths_from_db(row["exclude_paths"])
        job_id = row.pop("last_job_id", None)
        status = row.pop("last_job_status", None)
        at = row.pop("last_job_at", None)
        if job_id is not None:
            row["last_run"] = LastRun(job_id=job_id, status=status, created_at=at)
        return cls(**row)


@dataclass(frozen=True)
class LastRun:
    """The newest job schedctl made for a scheduler (a tick's slot or a `run`)."""

    job_id: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class Job:
    """A job, in the shape `history` shows."""

    id: str
    scheduler_id: uuid.UUID | None
    domain: str
    status: str
    progress: float
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    total_tasks: int
    completed_tasks: int
    failed_tasks: int
    skipped_tasks: int
    # The slot a tick made the job for (None when it was not made for a slot), and whether
    # the schedule made it ("scheduled") or an operator's `run` ("manual").
    slot: datetime | None = None
    trigger: str = "scheduled"


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit trail."""

    id: int
    at: datetime
    actor: str
    action: str
    # None for an entry about no scheduler (an organisation's) or no organisation.
    scheduler_id: uuid.UUID | None
    organisation_id: uuid.UUID | None
    domain: str | None
    changes: dict[str, Any]
    reason: str | None
    db_now: datetime = field(metadata=_INTERNAL)
    organisation_name: str | None = field(default=None, metadata=_INTERNAL)
    # Where the change came from: cli (a command), apply (a file) or tick; None where the
    # query does not say (left out of JSON then).
    source: str | None = field(default=None, metadata=_INTERNAL)


@dataclass(frozen=True)
class Organisation:
    """An organisation; `schedulers` is its number of schedulers where a query counts them."""

    id: uuid.UUID
    name: str
    created_at: datetime
    schedulers: int | None = None


def public_fields(record: Any) -> dict[str, Any]:
    """A record's fields for its JSON document, in declaration order."""
    return {
        f.name: getattr(record, f.name)
        for f in dataclasses.fields(record)
        if f.metadata.get("json", True)
    }


@dataclass(frozen=True)
class Ref:
    """A scheduler as a command names it: its id, or its domain in the lowercased spellings
    the host may have stored (A-label and Unicode form). A text that is neither matches
    nothing."""

    text: str
    id: uuid.UUID | None = None
    spellings: tuple[str, ...] = ()
    # The leading hex digits of an id (8 or more, hyphens left out), to be resolved first.
    prefix: str | None = None

    @classmethod
    def of_id(cls, scheduler_id: uuid.UUID) -> Ref:
        return cls(text=str(scheduler_id), id=scheduler_id)

    def params(self) -> dict[str, Any]:
        """The parameters of the queries that find a scheduler by id or domain."""
        return {"id": self.id, "spellings": list(self.spellings)}


class PathEdit(NamedTuple):
    """A path list edited as it is (`update`): paths added at its end (once each), and paths
    removed from it."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


NO_EDIT = PathEdit()


@dataclass(frozen=True)
class SchedulerChanges:
    """Checked input of `create` and `update`: each field set is a change (None: as it is,
    or the default on create). Path lists are normalised; an empty list clears them."""

    schedule_interval_hours: int | None = None
    concurrency: int | None = None
    find_links: bool | None = None
    max_pages: int | None = None
    include_paths: list[str] | None = None
    exclude_paths: list[str] | None = None
    required_workers: int | None = None
    overlap_policy: Overlap | None = None
    start: Start | None = None
    is_enabled: bool | None = None
    # The path lists edited as they are (`update` only).
    include_edit: PathEdit = NO_EDIT
    exclude_edit: PathEdit = NO_EDIT
    # A wall-clock grid: the time of day and the zone (see Scheduler).
    at: time | None = None
    time_zone: str | None = None
    # The spread window (0: none), the catch-up window (NO_WINDOW: none), in seconds.
    spread_seconds: int | None = None
    catchup_window_seconds: int | None = None
    # When a pause ends by itself: a time, or a duration from the database's clock.
    until: datetime | timedelta | None = None

    def is_empty(self) -> bool:
        return self == SchedulerChanges()


def describe(found: dict[str, Any]) -> str:
    """A target in one line: `crawler on db.internal:5432 as schedctl`."""
    return f"{found['database']} on {found['host']}:{found['port']} as {found['user']}"
