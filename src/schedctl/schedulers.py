"""Scheduler operations: create, read, change, delete, run now, history and audit trail.
They receive checked input (models.SchedulerChanges, models.Ref) and the actor's name."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from typing import Any

import psycopg

from schedctl import audit, db, store
from schedctl.errors import Conflict, InvalidInput, NotFound, OperationFailed, SchedulerNotFound
from schedctl.fields import DEFAULTS
from schedctl.models import (
    NO_WINDOW,
    START_NOW,
    Job,
    PathEdit,
    Ref,
    Scheduler,
    SchedulerChanges,
    rfc3339,
)

MANUAL_RUN = "manual run"


# How many schedulers an ambiguous id prefix lists.
_CANDIDATES = 10


def _not_found(ref: Ref) -> NotFound:
    # Worded the same whether the scheduler is missing or belongs to another organisation.
    from schedctl.domains import short_id_hint

    return SchedulerNotFound(ref.text, short_id_hint(ref.text))


def _ambiguous(ref: Ref, rows: list[Any]) -> InvalidInput:
    shown = ", ".join(f"{row['id']} ({row['domain']})" for row in rows[:_CANDIDATES])
    more = "" if len(rows) <= _CANDIDATES else ", …"
    return InvalidInput(
        f"{ref.text!r} is the beginning of several schedulers' ids: {shown}{more}; "
        "give more of the id"
    )


def _id_of_prefix(
    conn: db.Connection, query: str, org_id: uuid.UUID | None, ref: Ref
) -> uuid.UUID | None:
    """The id `ref.prefix` begins, by the named query: None when no scheduler's does;
    several are exit 2, listed."""
    rows = db.fetch_all(
        conn, query, organisation_id=org_id, prefix=ref.prefix, limit=_CANDIDATES + 1
    )
    if len(rows) > 1:
        raise _ambiguous(ref, rows)
    found: uuid.UUID | None = rows[0]["id"] if rows else None
    return found


def resolve(conn: db.Connection, org_id: uuid.UUID | None, ref: Ref) -> Ref:
    """`ref` as it names one scheduler: an id prefix becomes the id it begins, when exactly
    one scheduler of the organisation has it (none: not found; several: exit 2, listed)."""
    if ref.prefix is None:
        return ref
    found = _id_of_prefix(conn, "scheduler_find_prefix", org_id, ref)
    if found is None:
        raise _not_found(ref)
    return replace(ref, id=found, prefix=None)


def get(conn: db.Connection, org_id: uuid.UUID, ref: Ref) -> Scheduler:
    """One scheduler of the organisation, by id (or a unique prefix of one) or domain."""
    ref = resolve(conn, org_id, ref)
    found = db.optional_record(
        conn, "scheduler_get", Scheduler.from_row, organisation_id=org_id, **ref.params()
    )
    if found is None:
        raise _not_found(ref)
    return found


def _lock(conn: db.Connection, org_id: uuid.UUID, ref: Ref) -> Scheduler:
    """Lock one scheduler of the organisation for a change, and return it."""
    ref = resolve(conn, org_id, ref)
    row = db.fetch_optional(conn, "scheduler_lock", organisation_id=org_id, **ref.params())
    if row is None:
        raise _not_found(ref)
    return get(conn, org_id, Ref.of_id(row["id"]))


def _audit(
    conn: db.Connection,
    actor: str,
    action: str,
    scheduler: Scheduler,
    changes: dict[str, Any],
    reason: str | None = None,
) -> None:
    trail = store.AuditTrail()
    trail.add(action, scheduler.id, scheduler.organisation_id, scheduler.domain, changes, reason)
    trail.write(conn, actor, None)


def create(
    conn: db.Connection,
    org_id: uuid.UUID,
    domain: str,
    changes: SchedulerChanges,
    actor: str,
) -> Scheduler:
    """Create a scheduler for `domain` (normalised), as `apply` creates one from a file: the
    domain is added to the host's table unless the host already has it, in any spelling."""
    from schedctl.domains import domain_spellings

    if changes.schedule_interval_hours is None:
        raise InvalidInput("--every is required (6h, 12h, 24h or 48h)")
    with conn.work():
        _check_zone(conn, changes)
        db_now = db.fetch_one(conn, "db_clock")["db_now"]
        values = _with_changes(DEFAULTS, changes, db_now)
        (domain_id,) = store.domain_ids(conn, [(domain, domain_spellings(domain))])
        start = changes.start
        row = {
            "idx": 0,
            "domain_id": domain_id,
            "organisation_id": str(org_id),
            "start_at": rfc3339(start) if isinstance(start, datetime) else None,
            "start_now": start == START_NOW,
        } | store.seed_columns(values)
        ((scheduler_id, _, _, next_run_at),) = store.insert(
            conn, [row], conflict=f"a scheduler for {domain} already exists in this organisation"
        )
        anchor = _place(
            conn,
            scheduler_id,
            next_run_at,
            DEFAULTS,
            values,
            changes,
            db_now,
            keep_next=False,
        )
        store.write_settings(conn, [store.settings_row(scheduler_id, values, anchor)])
        scheduler = get(conn, org_id, Ref.of_id(scheduler_id))
        _audit(conn, actor, "create", scheduler, audit.created(vars(scheduler)))
    return scheduler


def _values(scheduler: Scheduler) -> dict[str, Any]:
    """A scheduler's fields (fields.FIELDS) by attribute."""
    return {name: getattr(scheduler, name) for name in DEFAULTS}


def _with_changes(
    values: dict[str, Any], changes: SchedulerChanges, db_now: datetime
) -> dict[str, Any]:
    """A scheduler's fields with the changes of `create` or `update` made (the next run is
    placed by the statements of store.py)."""
    from schedctl.validation import check_spread

    new = dict(values)
    given = {
        "schedule_interval_hours": changes.schedule_interval_hours,
        "concurrency": changes.concurrency,
        "find_links": changes.find_links,
        "max_pages": changes.max_pages,
        "include_paths": changes.include_paths,
        "exclude_paths": changes.exclude_paths,
        "required_workers": changes.required_workers,
        "overlap_policy": changes.overlap_policy and changes.overlap_policy.value,
        "is_enabled": changes.is_enabled,
        "at": _time_text(changes.at) if changes.at is not None else None,
        "time_zone": changes.time_zone,
        "spread_seconds": changes.spread_seconds,
    }
    new.update({name: value for name, value in given.items() if value is not None})
    new["include_paths"] = _edited(new["include_paths"], changes.include_edit)
    new["exclude_paths"] = _edited(new["exclude_paths"], changes.exclude_edit)
    if changes.catchup_window_seconds is not None:
        window = changes.catchup_window_seconds
        new["catchup_window_seconds"] = None if window == NO_WINDOW else window
    if changes.is_enabled is not None:
        new["paused_until"] = None
    if changes.is_enabled is True:
        new["pause_reason"] = None
    check_spread(new["spread_seconds"], new["schedule_interval_hours"])
    return _paused_until(new, changes.until, db_now)


def _place(
    conn: db.Connection,
    scheduler_id: uuid.UUID,
    next_run_at: datetime,
    old: dict[str, Any],
    new: dict[str, Any],
    changes: SchedulerChanges,
    db_now: datetime,
    *,
    keep_next: bool,
    old_anchor: datetime | None = None,
) -> datetime | None:
    """Place the next run of a scheduler whose schedule a command set (store.placement), as
    `apply` places it; its grid's anchor. --time-zone alone keeps the local time of day of
    the next run (`new` gets that time as its `at`)."""
    keep_local_time = changes.time_zone is not None and changes.at is None and old["at"] is None
    if keep_local_time:
        offset = db.fetch_one(
            conn, "spread_offset_seconds", id=scheduler_id, spread_seconds=old["spread_seconds"]
        )["seconds"]
        row = db.fetch_one(
            conn,
            "local_time_of_day",
            moment=next_run_at - timedelta(seconds=offset),
            time_zone=new["time_zone"],
        )
        new["at"] = _time_text(row["at_time"].replace(microsecond=0))
    given = {
        "at": changes.at,
        "time_zone": changes.time_zone,
        "schedule_interval_hours": changes.schedule_interval_hours,
        "spread_seconds": changes.spread_seconds,
    }
    how = store.placement(
        {name for name, value in given.items() if value is not None},
        new["at"],
        old_anchor,
        start=changes.start is not None,
        keep_local_time=keep_local_time,
        keep_next=keep_next,
    )
    if how is None:
        return old_anchor
    start = db_now if changes.start == START_NOW else changes.start
    placed = store.place(
        conn,
        [
            {
                "id": str(scheduler_id),
                "placement": how,
                "at_time": new["at"],
                "time_zone": new["time_zone"],
                "old_spread": old["spread_seconds"],
                "spread_seconds": new["spread_seconds"],
                "start": rfc3339(start) if isinstance(start, datetime) else None,
            }
        ],
    )
    return placed[scheduler_id][1]


def _schedule_changes(changes: SchedulerChanges) -> bool:
    """Whether the changes touch the wall-clock grid, the spread or the catch-up window."""
    return any(
        value is not None
        for value in (
            changes.at,
            changes.time_zone,
            changes.spread_seconds,
            changes.catchup_window_seconds,
        )
    )


def _check_zone(conn: db.Connection, changes: SchedulerChanges) -> None:
    """Refuse a zone that the database's zone database (the one tick reads) does not know."""
    from schedctl.validation import zone_unknown

    zone = changes.time_zone
    if zone is None or zone in conn.known_zones:
        return
    # The server reads its zone files to answer (tens of ms): a zone once known is not
    # asked again on this connection.
    if not db.fetch_one(conn, "time_zone_known", time_zone=zone)["known"]:
        raise zone_unknown(zone)
    conn.known_zones = conn.known_zones | {zone}


def _time_text(at: time) -> str:
    return at.strftime("%H:%M:%S" if at.second or at.microsecond else "%H:%M")


def _paused_until(
    values: dict[str, Any], until: datetime | timedelta | None, db_now: datetime
) -> dict[str, Any]:
    """A scheduler's fields paused until `until` (a time, or a duration from the database's
    clock)."""
    if until is None:
        return values
    when = db_now + until if isinstance(until, timedelta) else until
    if when <= db_now:
        raise InvalidInput(
            f"--until must be in the future (the database's clock reads {db_now.isoformat()})"
        )
    return {**values, "is_enabled": False, "paused_until": when}


def list_for(
    conn: db.Connection,
    org_id: uuid.UUID | None,
    *,
    enabled: bool | None = None,
    due_only: bool = False,
) -> list[Scheduler]:
    """Schedulers of one organisation (None: of every organisation), soonest first."""
    return db.records(
        conn,
        "scheduler_list",
        Scheduler.from_row,
        organisation_id=org_id,
        is_enabled=enabled,
        due_only=due_only,
    )


def _edited(paths: list[str], edit: PathEdit) -> list[str]:
    """A path list with paths added (at the end, once) and removed."""
    kept = [path for path in paths if path not in edit.removed]
    return kept + [path for path in edit.added if path not in kept]


def update(
    conn: db.Connection, org_id: uuid.UUID, ref: Ref, changes: SchedulerChanges, actor: str
) -> tuple[Scheduler, bool]:
    """Change a scheduler, through the statements `apply` changes them with; returns it and
    whether anything changed (a change to what it already is writes nothing, not even an
    audit entry)."""
    if changes.is_empty():
        raise InvalidInput("nothing to change: give at least one option (see --help)")
    with conn.work():
        old = _lock(conn, org_id, ref)
        values = _with_changes(_values(old), changes, old.db_now)
        # `now` anchors the grid at a whole second of the database clock
        start = old.db_now.replace(microsecond=0) if changes.start == START_NOW else changes.start
        with conn.work():  # a savepoint: rolled back when nothing changed
            row = {
                "id": str(old.id),
                "next_run_at": rfc3339(start) if isinstance(start, datetime) else None,
            }
            moved = store.update(conn, [row | store.seed_columns(values)])
            anchor = old.grid_anchor
            if _schedule_changes(changes) or (
                old.at is not None
                and (changes.schedule_interval_hours is not None or changes.start)
            ):
                _check_zone(conn, changes)
                anchor = _place(
                    conn,
                    old.id,
                    moved[old.id],
                    _values(old),
                    values,
                    changes,
                    old.db_now,
                    keep_next=True,
                    old_anchor=old.grid_anchor,
                )
            store.write_settings(conn, [store.settings_row(old.id, values, anchor)])
            scheduler = get(conn, org_id, Ref.of_id(old.id))
            diff = audit.changed(vars(old), vars(scheduler))
            if not diff:
                raise psycopg.Rollback()
        if not diff:
            return old, False
        trail = store.AuditTrail()
        identity = (scheduler.id, scheduler.organisation_id, scheduler.domain)
        trail.changed(identity, vars(old), vars(scheduler))
        trail.write(conn, actor, None)
    return scheduler, True


def pause(
    conn: db.Connection,
    org_id: uuid.UUID,
    ref: Ref,
    reason: str | None,
    actor: str,
    until: datetime | timedelta | None = None,
) -> tuple[Scheduler, bool]:
    """Disable a scheduler, keeping why; with `until`, a tick resumes it then. Returns it and
    whether anything changed (pausing a paused scheduler the same way changes nothing)."""
    with conn.work():
        old = _lock(conn, org_id, ref)
        paused = {**_values(old), "is_enabled": False, "pause_reason": reason, "paused_until": None}
        values = _paused_until(paused, until, old.db_now)
        if not audit.changed(vars(old), {**vars(old), **values}):
            return old, False
        store.update(conn, [{"id": str(old.id)} | store.seed_columns(values)])
        store.write_settings(conn, [store.settings_row(old.id, values, old.grid_anchor)])
        scheduler = get(conn, org_id, Ref.of_id(old.id))
        _audit(conn, actor, "pause", scheduler, audit.changed(vars(old), vars(scheduler)), reason)
    return scheduler, True


def resume(conn: db.Connection, org_id: uuid.UUID, ref: Ref, actor: str) -> tuple[Scheduler, bool]:
    """Enable a scheduler again; a slot missed while paused is due at the next tick.
    Returns it and whether anything changed (an enabled one is left as it is)."""
    with conn.work():
        old = _lock(conn, org_id, ref)
        if old.is_enabled and old.pause_reason is None:
            return old, False
        db.execute(conn, "scheduler_resume", id=old.id)
        scheduler = get(conn, org_id, Ref.of_id(old.id))
        _audit(conn, actor, "resume", scheduler, audit.changed(vars(old), vars(scheduler)))
    return scheduler, True


def delete(conn: db.Connection, org_id: uuid.UUID, ref: Ref, actor: str) -> Scheduler:
    """Delete a scheduler; its jobs (detached) and audit entries stay."""
    with conn.work():
        old = _lock(conn, org_id, ref)
        store.delete(conn, [old.id])
        _audit(conn, actor, "delete", old, audit.deleted(vars(old)))
    return old


def run_now(conn: db.Connection, org_id: uuid.UUID, ref: Ref, actor: str) -> Job:
    """Create a job now, outside the schedule, under the scheduler's overlap policy."""
    with conn.work():
        scheduler = _lock(conn, org_id, ref)
        # The step tick makes jobs with (schedctl.make_jobs), at the run's time: the overlap
        # policy, the hooks, the notification.
        outcome = db.fetch_one(conn, "run_job", scheduler_id=scheduler.id, actor=actor)
        if outcome["skip"]:
            raise Conflict(
                f"a job of {scheduler.domain} is still active and the overlap policy is skip"
            )
        job_id = outcome["job_id"]
        if job_id is None or db.fetch_optional(conn, "job_get", id=job_id) is None:
            from schedctl import hooks

            hook = hooks.read(conn).create_hook()
            if job_id is None:
                raise Conflict(f"the create-job hook {hook} declined to make a job")
            raise OperationFailed(
                f"the create-job hook {hook} returned {job_id!r}, which is not a job in jobs; "
                "nothing was changed"
            )
        _audit(conn, actor, "run", scheduler, {"job_id": [None, job_id]})
        return db.record(conn, "job_get", Job, id=job_id)


def last_job(conn: db.Connection, scheduler_id: uuid.UUID) -> Job | None:
    """The scheduler's newest job."""
    jobs = history(conn, scheduler_id, limit=1, offset=0)
    return jobs[0] if jobs else None


def history(conn: db.Connection, scheduler_id: uuid.UUID, *, limit: int, offset: int) -> list[Job]:
    """One page of the scheduler's jobs, newest first (limit and offset already checked)."""
    return db.records(
        conn, "scheduler_history", Job, scheduler_id=scheduler_id, limit=limit, offset=offset
    )


@dataclass(frozen=True)
class NextRun:
    """A next run time, with its wall-clock time in the scheduler's zone."""

    at: datetime
    local_time: datetime
    utc_offset_seconds: int
    dst_day: bool  # the zone's UTC offset changes on that local day


def next_runs_local(conn: db.Connection, scheduler: Scheduler, count: int) -> list[NextRun]:
    """The next `count` run times with their local times: on a wall-clock grid computed by the
    same SQL as tick's; on the elapsed-time grid as next_runs, in UTC."""
    if scheduler.grid_anchor is None:
        runs = next_runs(scheduler, count)
        return [NextRun(at, _utc_wall(at), 0, False) for at in runs]
    return db.records(
        conn,
        "scheduler_next_runs",
        NextRun,
        next_run_at=scheduler.next_run_at,
        hours=scheduler.schedule_interval_hours,
        grid_anchor=scheduler.grid_anchor,
        time_zone=scheduler.time_zone,
        spread=timedelta(seconds=scheduler.spread_offset_seconds),
        count=count,
    )


def _utc_wall(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def next_runs(scheduler: Scheduler, count: int) -> list[datetime]:
    """The next `count` times a job will be made, by the database clock it was read with."""
    step = timedelta(hours=scheduler.schedule_interval_hours)
    now = scheduler.db_now
    first = scheduler.next_run_at
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


def audit_scheduler_id(
    conn: db.Connection, org_id: uuid.UUID | None, ref: Ref | None
) -> uuid.UUID | None:
    """The id of the scheduler (deleted or not) the organisation's audit trail names by
    `ref` (None: no scheduler asked for); not found is exit 3."""
    if ref is None:
        return None
    if ref.prefix is not None:
        ref = replace(ref, id=_id_of_prefix(conn, "audit_find_prefix", org_id, ref), prefix=None)
    found = db.fetch_optional(conn, "audit_find_scheduler", organisation_id=org_id, **ref.params())
    if found is None:
        raise _not_found(ref)
    scheduler_id: uuid.UUID = found["scheduler_id"]
    return scheduler_id
