"""The writes behind every change to schedulers, set-based: `create`, `update` and the other
commands write one row through them, `apply` many. What a scheduler's fields are lives in
fields.py, how its audit entries read in audit.py; where its next run goes is decided here
(placement) and computed by one statement (schedulers_place)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg.types.json import Jsonb

from schedctl import audit, db
from schedctl.errors import Conflict, InvalidInput
from schedctl.fields import HOST, SETTINGS, to_columns

# The constraint of the seed's schedulers table that makes (domain, organisation) unique.
UNIQUE_DOMAIN_ORG = "unique_domain_org"
# The fields a pause or resume changes; a change of the others is an update.
PAUSE_FIELDS = ("is_enabled", "pause_reason", "paused_until")
# What marks a scheduler as managed by `apply` (and the source of its audit entries).
MANAGED_BY = "apply"
# The fields that decide where a schedule's times fall.
_GRID = ("at", "time_zone", "schedule_interval_hours", "spread_seconds")


def domain_ids(conn: db.Connection, domains: Sequence[tuple[str, Iterable[str]]]) -> list[int]:
    """The host's row of each domain (its normal form, and the lowercased spellings the host
    may have stored it in), added where it has none."""
    params = {
        "spelling_idx": [i for i, (_, spellings) in enumerate(domains) for _ in spellings],
        "spellings": [s for _, spellings in domains for s in spellings],
        "name_idx": list(range(len(domains))),
        "names": [name for name, _ in domains],
    }
    db.execute(conn, "domains_insert", **params)
    found = dict(db.fetch_tuples(conn, "domains_find", **params))
    if len(found) != len(domains):
        raise db.NoResult("domains_find")
    return [int(found[i]) for i in range(len(domains))]


def seed_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """The host's columns of a scheduler's fields."""
    return to_columns(values, HOST)


def insert(conn: db.Connection, rows: list[dict[str, Any]], *, conflict: str) -> list[Any]:
    """Create schedulers (each row: idx, domain_id, organisation_id, its seed columns, and
    optionally start_at or start_now); (id, domain_id, organisation_id, next_run_at) of each.
    A scheduler that exists already is a conflict, with this message."""
    try:
        with conn.work():
            return db.fetch_tuples(conn, "schedulers_insert", rows=Jsonb(rows))
    except pgerrors.UniqueViolation as exc:
        if exc.diag.constraint_name != UNIQUE_DOMAIN_ORG:
            raise
        raise Conflict(conflict) from None


def update(conn: db.Connection, rows: list[dict[str, Any]]) -> dict[uuid.UUID, datetime]:
    """Store the seed columns of schedulers (each row: id, its seed columns, and optionally
    next_run_at); a new interval keeps its grid. {id: next run}."""
    if not rows:
        return {}
    try:
        with conn.work():
            return dict(db.fetch_tuples(conn, "schedulers_update", rows=Jsonb(rows)))
    except psycopg.DataError:  # out of the server's range, or of Python's when read back
        raise InvalidInput("--every: the next run would fall after the year 9999") from None


def placement(
    moved: set[str],
    at: str | None,
    old_anchor: datetime | None,
    *,
    start: bool = False,
    keep_local_time: bool = False,
    keep_next: bool = False,
) -> str | None:
    """How the next run moves when a scheduler's schedule is set (schedulers_place):
    `moved` names the grid fields set (a file: those that differ; a command: those given),
    `at` is the new time of day (None: the elapsed-time grid), `old_anchor` the grid's
    anchor so far. "shift": the elapsed-time grid moves by a new spread offset; "start":
    the grid's first time from --start-at; "next": the same wall-clock time as the next run
    (`keep_local_time`: --time-zone alone keeps it; `keep_next`: a command that changes only
    the spread, or a grid not yet anchored, keeps it too); "now": the grid's first time from
    now; None: it stays."""
    if at is None:
        return "shift" if moved & {"at", "spread_seconds"} else None
    if start:
        return "start"
    if keep_local_time:
        return "next"
    if moved & {"at", "time_zone", "schedule_interval_hours"}:
        return "now"
    if old_anchor is None:
        return "next" if keep_next else "now"
    return "next" if "spread_seconds" in moved else None


def place(
    conn: db.Connection, rows: list[dict[str, Any]]
) -> dict[uuid.UUID, tuple[datetime, datetime | None]]:
    """Move the next run of schedulers (each row: id, placement, at_time, time_zone,
    old_spread, spread_seconds, and start for "start"); {id: (next run, grid anchor)}."""
    if not rows:
        return {}
    placed = db.fetch_tuples(conn, "schedulers_place", rows=Jsonb(rows))
    return {sid: (next_run_at, anchor) for sid, next_run_at, anchor in placed}


def settings_row(
    scheduler_id: uuid.UUID,
    values: Mapping[str, Any],
    grid_anchor: datetime | None,
    managed_by: str | None = None,
) -> dict[str, Any]:
    """What schedctl keeps beside a scheduler, as settings_write takes it."""
    anchor = grid_anchor.isoformat() if grid_anchor is not None and values["at"] else None
    return {
        "id": str(scheduler_id),
        "grid_anchor": anchor,
        "managed_by": managed_by,
    } | to_columns(values, SETTINGS)


def write_settings(conn: db.Connection, rows: list[dict[str, Any]]) -> None:
    """Store the settings rows (settings_row)."""
    if rows:
        db.execute(conn, "settings_write", rows=Jsonb(rows))


def delete(conn: db.Connection, ids: list[uuid.UUID]) -> None:
    """Delete schedulers; their jobs stay, detached."""
    db.execute(conn, "scheduler_delete", ids=ids, organisation_id=None)


class AuditTrail:
    """Audit entries of one change, in order, written by one statement: {field: [old, new]},
    times in RFC 3339 UTC (audit.py)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        action: str,
        scheduler_id: uuid.UUID | None,
        org_id: uuid.UUID,
        domain: str | None,
        changes: dict[str, Any],
        reason: str | None = None,
    ) -> None:
        self.rows.append(
            {
                "ord": len(self.rows),
                "action": action,
                "scheduler_id": scheduler_id and str(scheduler_id),
                "organisation_id": str(org_id),
                "domain": domain,
                "changes": changes,
                "reason": reason,
            }
        )

    def created(
        self, scheduler_id: uuid.UUID, org_id: uuid.UUID, domain: str, values: Mapping[str, Any]
    ) -> None:
        self.add("create", scheduler_id, org_id, domain, audit.created(values))

    def changed(
        self,
        scheduler: tuple[uuid.UUID, uuid.UUID, str],
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        *,
        adopted: bool = False,
    ) -> None:
        """A change of a scheduler (its id, organisation and domain): an `update` entry for
        its fields, and a `pause` or `resume` entry of its own for whether it is enabled."""
        diff = audit.changed(old, new)
        pausing = {name: diff.pop(name) for name in PAUSE_FIELDS if name in diff}
        if adopted:
            diff["managed_by"] = [None, MANAGED_BY]
        if diff:
            self.add("update", *scheduler, diff)
        if pausing:
            if new["is_enabled"]:
                self.add("resume", *scheduler, pausing)
            else:
                self.add("pause", *scheduler, pausing, new["pause_reason"])

    def write(self, conn: db.Connection, actor: str, source: str | None) -> None:
        if self.rows:
            db.execute(conn, "audit_insert_many", actor=actor, source=source, rows=Jsonb(self.rows))


def grid_moves(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    """The grid fields whose value differs."""
    return {name for name in _GRID if new[name] != old[name]}
