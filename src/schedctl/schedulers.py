"""Scheduler operations: create, read, change, delete, run now, history and audit trail."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import errors as pgerrors
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from schedctl import db, validation
from schedctl.errors import Conflict, InvalidInput, NotFound
from schedctl.organisations import as_uuid

MANUAL_RUN = "manual run"

# The fields of a scheduler an operator can change, in the order the audit shows them.
_CHANGEABLE = (
    "schedule_interval_hours",
    "next_run_at",
    "is_enabled",
    "pause_reason",
    "overlap_policy",
    "concurrency",
    "find_links",
    "max_pages",
    "include_paths",
    "exclude_paths",
    "required_workers",
)


@dataclass(frozen=True)
class Template:
    """What a command asks to set; None leaves a field as it is (or at its default)."""

    every: str | None = None
    concurrency: int | None = None
    find_links: bool | None = None
    max_pages: int | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    clear_include: bool = False
    clear_exclude: bool = False
    required_workers: int | None = None
    overlap: str | None = None
    start_at: str | None = None
    enabled: bool | None = None

    def is_empty(self) -> bool:
        return self == Template()


def actor() -> str:
    """Who is making a change: SCHEDCTL_ACTOR (environment or .env), else the
    operating-system user."""
    from schedctl.config import load_settings

    # Printed in tables and tab-separated lines: no control characters, one line.
    name = "".join(ch for ch in (load_settings().actor or "") if ch.isprintable()).strip()
    if name:
        return name[:200]
    try:
        return getpass.getuser()
    except Exception:  # no user name in a bare container
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _validated(template: Template) -> dict[str, Any]:
    """The template's values, each checked against its rule; only the fields given."""
    values: dict[str, Any] = {}
    if template.every is not None:
        values["schedule_interval_hours"] = validation.parse_interval(template.every)
    if template.concurrency is not None:
        values["concurrency"] = validation.check_range(
            "--concurrency", template.concurrency, *validation.CONCURRENCY
        )
    if template.find_links is not None:
        values["find_links"] = template.find_links
    if template.max_pages is not None:
        values["max_pages"] = validation.check_range(
            "--max-pages", template.max_pages, *validation.MAX_PAGES
        )
    if template.required_workers is not None:
        values["required_workers"] = validation.check_range(
            "--required-workers", template.required_workers, *validation.REQUIRED_WORKERS
        )
    if template.include and template.clear_include:
        raise InvalidInput("--include and --clear-include cannot be used together")
    if template.exclude and template.clear_exclude:
        raise InvalidInput("--exclude and --clear-exclude cannot be used together")
    if template.include or template.clear_include:
        values["include_paths"] = validation.paths_to_db(
            validation.normalize_paths("--include", template.include or [])
        )
    if template.exclude or template.clear_exclude:
        values["exclude_paths"] = validation.paths_to_db(
            validation.normalize_paths("--exclude", template.exclude or [])
        )
    if template.overlap is not None:
        values["overlap_policy"] = validation.parse_overlap(template.overlap)
    if template.enabled is not None:
        values["is_enabled"] = template.enabled
    return values


def _ref_params(ref: str) -> dict[str, Any]:
    """Query parameters that find a scheduler by id or by domain."""
    ident = as_uuid(ref)
    if ident is not None:
        return {"id": ident, "domain": None}
    try:
        return {"id": None, "domain": validation.normalize_domain(ref)}
    except InvalidInput:
        return {"id": None, "domain": None}  # not a domain: it matches nothing


def _not_found(ref: str) -> NotFound:
    # Worded the same whether the scheduler is missing or belongs to another organisation.
    return NotFound(f"no scheduler {ref.strip()!r} in this organisation")


def get(conn: db.Connection, org_id: Any, ref: str) -> DictRow:
    """One scheduler of the organisation, by id or domain."""
    row = db.fetch_one(conn, "scheduler_get", organisation_id=org_id, **_ref_params(ref))
    if row is None:
        raise _not_found(ref)
    return row


def _lock(conn: db.Connection, org_id: Any, ref: str) -> DictRow:
    """Lock one scheduler of the organisation for a change, and return it."""
    row = db.fetch_one(conn, "scheduler_lock", organisation_id=org_id, **_ref_params(ref))
    if row is None:
        raise _not_found(ref)
    return get(conn, org_id, str(row["id"]))


def _audit(
    conn: db.Connection,
    action: str,
    row: DictRow,
    changes: dict[str, Any],
    reason: str | None = None,
) -> None:
    db.execute(
        conn,
        "audit_insert",
        actor=actor(),
        action=action,
        scheduler_id=row["id"],
        organisation_id=row["organisation_id"],
        domain=row["domain"],
        changes=Jsonb(changes),
        reason=reason,
    )


def _audit_value(name: str, value: Any) -> Any:
    """A field's value as the audit trail keeps it: times in RFC 3339 UTC, path lists
    as lists, everything else as JSON holds it."""
    from schedctl.render import plain

    if name in ("include_paths", "exclude_paths"):
        return validation.paths_from_db(value)
    return plain(value)


def _meaningful(value: Any) -> bool:
    return value is not None and value != []


def _diff(old: DictRow, new: DictRow) -> dict[str, Any]:
    """The changed fields as {field: [old, new]}."""
    return {
        name: [_audit_value(name, old[name]), _audit_value(name, new[name])]
        for name in _CHANGEABLE
        if old[name] != new[name]
    }


def _created(row: DictRow) -> dict[str, Any]:
    """A new scheduler's settings as {field: [null, value]}, leaving out the empty ones."""
    values = {name: _audit_value(name, row[name]) for name in _CHANGEABLE}
    return {name: [None, value] for name, value in values.items() if _meaningful(value)}


def _deleted(row: DictRow) -> dict[str, Any]:
    """A deleted scheduler's last settings as {field: [value, null]}, leaving out the empty ones."""
    values = {name: _audit_value(name, row[name]) for name in _CHANGEABLE}
    return {name: [value, None] for name, value in values.items() if _meaningful(value)}


def create(conn: db.Connection, org_id: Any, domain: str, template: Template) -> DictRow:
    """Create a scheduler for `domain`; the domain is added to the host's table if new."""
    name = validation.normalize_domain(domain)
    if template.every is None:
        raise InvalidInput("--every is required (6h, 12h, 24h or 48h)")
    values = _validated(template)
    start_at = validation.parse_when(template.start_at) if template.start_at is not None else None
    with conn.transaction():
        domain_row = db.fetch_one(conn, "domain_ensure", name=name)
        assert domain_row is not None
        try:
            with conn.transaction():
                created = db.fetch_one(
                    conn,
                    "scheduler_insert",
                    domain_id=domain_row["id"],
                    organisation_id=org_id,
                    schedule_interval_hours=values["schedule_interval_hours"],
                    start_at=start_at,
                    start_now=template.start_at is not None and start_at is None,
                    is_enabled=values.get("is_enabled", True),
                    pause_reason=None,
                    overlap_policy=values.get("overlap_policy", "replace"),
                    concurrency=values.get("concurrency", 20),
                    find_links=values.get("find_links", True),
                    max_pages=values.get("max_pages", 0),
                    include_paths=values.get("include_paths"),
                    exclude_paths=values.get("exclude_paths"),
                    required_workers=values.get("required_workers", 1),
                )
        except pgerrors.UniqueViolation:
            raise Conflict(f"a scheduler for {name} already exists in this organisation") from None
        assert created is not None
        row = get(conn, org_id, str(created["id"]))
        _audit(conn, "create", row, _created(row))
    return row


def list_for(
    conn: db.Connection, org_id: Any, *, enabled: bool | None = None, due_only: bool = False
) -> list[DictRow]:
    """Schedulers of one organisation (None: of every organisation), soonest first."""
    return db.fetch_all(
        conn, "scheduler_list", organisation_id=org_id, is_enabled=enabled, due_only=due_only
    )


def update(conn: db.Connection, org_id: Any, ref: str, template: Template) -> DictRow:
    """Change a scheduler; a new interval keeps the anchor of its grid."""
    if template.is_empty():
        raise InvalidInput("nothing to change: give at least one option (see --help)")
    values = _validated(template)
    start_at = validation.parse_when(template.start_at) if template.start_at is not None else None
    with conn.transaction():
        old = _lock(conn, org_id, ref)
        new = dict(old)
        new.update(values)
        if "schedule_interval_hours" in values:
            anchor = old["next_run_at"] - timedelta(hours=old["schedule_interval_hours"])
            try:
                new["next_run_at"] = anchor + timedelta(hours=values["schedule_interval_hours"])
            except OverflowError:
                raise InvalidInput("--every: the next run would fall after the year 9999") from None
        if template.start_at is not None:
            new["next_run_at"] = start_at if start_at is not None else old["db_now"]
        if values.get("is_enabled") is True:
            new["pause_reason"] = None
        db.execute(conn, "scheduler_write", id=old["id"], **{k: new[k] for k in _CHANGEABLE})
        row = get(conn, org_id, str(old["id"]))
        _audit(conn, "update", row, _diff(old, row))
    return row


def pause(conn: db.Connection, org_id: Any, ref: str, reason: str | None) -> DictRow:
    """Disable a scheduler, keeping why."""
    why = validation.parse_reason(reason)
    with conn.transaction():
        old = _lock(conn, org_id, ref)
        fields = {k: old[k] for k in _CHANGEABLE} | {"is_enabled": False, "pause_reason": why}
        db.execute(conn, "scheduler_write", id=old["id"], **fields)
        row = get(conn, org_id, str(old["id"]))
        _audit(conn, "pause", row, _diff(old, row), why)
    return row


def resume(conn: db.Connection, org_id: Any, ref: str) -> DictRow:
    """Enable a scheduler again; a slot missed while paused is due at the next tick."""
    with conn.transaction():
        old = _lock(conn, org_id, ref)
        db.execute(conn, "scheduler_resume", id=old["id"])
        row = get(conn, org_id, str(old["id"]))
        _audit(conn, "resume", row, _diff(old, row))
    return row


def delete(conn: db.Connection, org_id: Any, ref: str) -> DictRow:
    """Delete a scheduler; its jobs and audit entries stay."""
    with conn.transaction():
        old = _lock(conn, org_id, ref)
        db.execute(conn, "scheduler_delete", id=old["id"])
        _audit(conn, "delete", old, _deleted(old))
    return old


def run_now(conn: db.Connection, org_id: Any, ref: str) -> DictRow:
    """Create a job now, outside the schedule, under the scheduler's overlap policy."""
    with conn.transaction():
        row = _lock(conn, org_id, ref)
        if row["overlap_policy"] == "skip":
            active = db.fetch_one(
                conn,
                "job_active_exists",
                domain_id=row["domain_id"],
                organisation_id=row["organisation_id"],
            )
            if active is not None and active["exists"]:
                raise Conflict(
                    f"a job of {row['domain']} is still active and the overlap policy is skip"
                )
        inserted = db.fetch_one(
            conn, "job_insert_manual", scheduler_id=row["id"], source_info=MANUAL_RUN
        )
        assert inserted is not None
        _audit(conn, "run", row, {"job_id": [None, str(inserted["id"])]})
        job = db.fetch_one(conn, "job_get", id=inserted["id"])
    assert job is not None
    return job


def last_job(conn: db.Connection, scheduler_id: Any) -> DictRow | None:
    """The scheduler's newest job."""
    rows = history(conn, scheduler_id, limit=1, offset=0)
    return rows[0] if rows else None


def history(conn: db.Connection, scheduler_id: Any, *, limit: int, offset: int) -> list[DictRow]:
    """One page of the scheduler's jobs, newest first (limit and offset already checked)."""
    return db.fetch_all(
        conn, "scheduler_history", scheduler_id=scheduler_id, limit=limit, offset=offset
    )


def next_runs(row: DictRow, count: int) -> list[datetime]:
    """The next `count` times a job will be made, by the database clock in `row`."""
    step = timedelta(hours=row["schedule_interval_hours"])
    now: datetime = row["db_now"]
    first: datetime = row["next_run_at"]
    runs = [first]
    try:
        following = first + step
        if first <= now:  # due: one job at the next tick, then the grid after now
            following += step * ((now - first) // step)
        while len(runs) < count:
            runs.append(following)
            following += step
    except OverflowError:
        pass  # the grid goes on past the year 9999, where no datetime reaches
    return runs


def audit_log(conn: db.Connection, org_id: Any, ref: str | None, *, limit: int) -> list[DictRow]:
    """The organisation's audit entries (one scheduler's, deleted or not), newest first."""
    scheduler_id = None
    if ref is not None:
        found = db.fetch_one(
            conn, "audit_find_scheduler", organisation_id=org_id, **_ref_params(ref)
        )
        if found is None:
            raise _not_found(ref)
        scheduler_id = found["scheduler_id"]
    return db.fetch_all(
        conn, "audit_list", organisation_id=org_id, scheduler_id=scheduler_id, limit=limit
    )
