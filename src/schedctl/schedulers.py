"""Scheduler operations: create, read, change, delete, run now, history and audit trail.
They receive checked input (models.SchedulerChanges, models.Ref) and the actor's name."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from typing import Any

from psycopg import errors as pgerrors
from psycopg.types.json import Jsonb

from schedctl import db
from schedctl.errors import Conflict, InvalidInput, NotFound, SchedulerNotFound
from schedctl.models import (
    NO_WINDOW,
    START_NOW,
    AuditEntry,
    Job,
    Ref,
    Scheduler,
    SchedulerChanges,
    paths_to_db,
)

MANUAL_RUN = "manual run"

# The constraint of the seed's schedulers table that makes (domain, organisation) unique.
_UNIQUE_DOMAIN_ORG = "unique_domain_org"

# The fields of a scheduler an operator can change, in the order the audit shows them.
CHANGEABLE = (
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
    "at",
    "time_zone",
    "spread_seconds",
    "catchup_window_seconds",
    "paused_until",
)


# How many schedulers an ambiguous id prefix lists.
_CANDIDATES = 10


def _not_found(ref: Ref) -> NotFound:
    # Worded the same whether the scheduler is missing or belongs to another organisation.
    from schedctl.validation import short_id_hint

    return SchedulerNotFound(ref.text, short_id_hint(ref.text))


def _ambiguous(ref: Ref, rows: list[Any]) -> InvalidInput:
    shown = ", ".join(f"{row['id']} ({row['domain']})" for row in rows[:_CANDIDATES])
    more = "" if len(rows) <= _CANDIDATES else ", …"
    return InvalidInput(
        f"{ref.text!r} is the beginning of several schedulers' ids: {shown}{more}; "
        "give more of the id"
    )


def resolve(conn: db.Connection, org_id: uuid.UUID | None, ref: Ref) -> Ref:
    """`ref` as it names one scheduler: an id prefix becomes the id it begins, when exactly
    one scheduler of the organisation has it (none: not found; several: exit 2, listed)."""
    if ref.prefix is None:
        return ref
    rows = db.fetch_all(
        conn,
        "scheduler_find_prefix",
        organisation_id=org_id,
        prefix=ref.prefix,
        limit=_CANDIDATES + 1,
    )
    if not rows:
        raise _not_found(ref)
    if len(rows) > 1:
        raise _ambiguous(ref, rows)
    return replace(ref, id=rows[0]["id"], prefix=None)


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


def _store(conn: db.Connection, scheduler: Scheduler) -> None:
    """Write every changeable field: the seed's columns to the host's row, the rest to
    schedctl's settings."""
    db.execute(
        conn,
        "scheduler_write",
        id=scheduler.id,
        schedule_interval_hours=scheduler.schedule_interval_hours,
        next_run_at=scheduler.next_run_at,
        is_enabled=scheduler.is_enabled,
        concurrency=scheduler.concurrency,
        find_links=scheduler.find_links,
        max_pages=scheduler.max_pages,
        include_paths=paths_to_db(scheduler.include_paths),
        exclude_paths=paths_to_db(scheduler.exclude_paths),
        required_workers=scheduler.required_workers,
    )
    _store_settings(conn, scheduler)


def _store_settings(conn: db.Connection, scheduler: Scheduler) -> None:
    db.execute(
        conn,
        "settings_write",
        id=scheduler.id,
        overlap_policy=scheduler.overlap_policy,
        pause_reason=scheduler.pause_reason,
        at_time=time.fromisoformat(scheduler.at) if scheduler.at is not None else None,
        time_zone=scheduler.time_zone,
        grid_anchor=scheduler.grid_anchor,
        spread_seconds=scheduler.spread_seconds,
        catchup_window_seconds=scheduler.catchup_window_seconds,
        paused_until=scheduler.paused_until,
    )


def _audit(
    conn: db.Connection,
    actor: str,
    action: str,
    scheduler: Scheduler,
    changes: dict[str, Any],
    reason: str | None = None,
) -> None:
    db.execute(
        conn,
        "audit_insert",
        actor=actor,
        action=action,
        scheduler_id=scheduler.id,
        organisation_id=scheduler.organisation_id,
        domain=scheduler.domain,
        changes=Jsonb(changes),
        reason=reason,
    )


def _audit_values(scheduler: Scheduler) -> dict[str, Any]:
    """The changeable fields as the audit trail keeps them (times in RFC 3339 UTC)."""
    from schedctl.render import plain

    return {name: plain(getattr(scheduler, name)) for name in CHANGEABLE}


def _diff(old: Scheduler, new: Scheduler) -> dict[str, Any]:
    """The changed fields as {field: [old, new]}."""
    before, after = _audit_values(old), _audit_values(new)
    return {name: [before[name], after[name]] for name in CHANGEABLE if before[name] != after[name]}


def _meaningful(value: Any) -> bool:
    return value is not None and value != []


# Settings whose default says nothing on creation (an elapsed-time grid in UTC, no spread).
_UNREMARKABLE = {"time_zone": "UTC", "spread_seconds": 0}


def _created(scheduler: Scheduler) -> dict[str, Any]:
    """A new scheduler's settings as {field: [null, value]}, leaving out the empty ones."""
    values = _audit_values(scheduler)
    return {
        name: [None, value]
        for name, value in values.items()
        if _meaningful(value) and _UNREMARKABLE.get(name, object()) != value
    }


def _deleted(scheduler: Scheduler) -> dict[str, Any]:
    """A deleted scheduler's last settings as {field: [value, null]}, leaving out the empty ones."""
    values = _audit_values(scheduler)
    return {name: [value, None] for name, value in values.items() if _meaningful(value)}


def _domain_id(conn: db.Connection, name: str, spellings: tuple[str, ...]) -> int:
    """The host's row for the domain, in whatever spelling it was stored, or a new one."""
    for _ in range(2):  # a concurrent insert of the same name is seen by the second try
        row = db.fetch_optional(conn, "domain_ensure", name=name, spellings=list(spellings))
        if row is not None:
            return int(row["id"])
    raise db.NoResult("domain_ensure")


def create(
    conn: db.Connection,
    org_id: uuid.UUID,
    domain: str,
    changes: SchedulerChanges,
    actor: str,
) -> Scheduler:
    """Create a scheduler for `domain` (normalised); the domain is added to the host's
    table unless the host already has it, in any spelling."""
    from schedctl.validation import domain_spellings

    if changes.interval_hours is None:
        raise InvalidInput("--every is required (6h, 12h, 24h or 48h)")
    with conn.work():
        _check_zone(conn, changes)
        domain_id = _domain_id(conn, domain, domain_spellings(domain))
        try:
            with conn.work():
                created = db.fetch_one(
                    conn,
                    "scheduler_insert",
                    domain_id=domain_id,
                    organisation_id=org_id,
                    schedule_interval_hours=changes.interval_hours,
                    start_at=changes.start if isinstance(changes.start, datetime) else None,
                    start_now=changes.start == START_NOW,
                    is_enabled=changes.enabled if changes.enabled is not None else True,
                    concurrency=changes.concurrency if changes.concurrency is not None else 20,
                    find_links=changes.find_links if changes.find_links is not None else True,
                    max_pages=changes.max_pages if changes.max_pages is not None else 0,
                    include_paths=paths_to_db(changes.include_paths or []),
                    exclude_paths=paths_to_db(changes.exclude_paths or []),
                    required_workers=(
                        changes.required_workers if changes.required_workers is not None else 1
                    ),
                )
        except pgerrors.UniqueViolation as exc:
            if exc.diag.constraint_name != _UNIQUE_DOMAIN_ORG:
                raise
            raise Conflict(
                f"a scheduler for {domain} already exists in this organisation"
            ) from None
        scheduler = get(conn, org_id, Ref.of_id(created["id"]))
        if changes.overlap is not None:
            scheduler = replace(scheduler, overlap_policy=changes.overlap.value)
            _store_settings(conn, scheduler)
        if _schedule_changes(changes) or changes.until is not None:
            timed = _scheduled(conn, scheduler, changes, keep_next=False)
            timed = _paused_until(timed, changes.until)
            _store(conn, timed)
            scheduler = get(conn, org_id, Ref.of_id(scheduler.id))
        _audit(conn, actor, "create", scheduler, _created(scheduler))
    return scheduler


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

    if changes.time_zone is not None:
        known = db.fetch_one(conn, "time_zone_known", time_zone=changes.time_zone)
        if not known["known"]:
            raise zone_unknown(changes.time_zone)


def _offset(conn: db.Connection, scheduler_id: uuid.UUID, spread_seconds: int) -> timedelta:
    row = db.fetch_one(
        conn, "spread_offset_seconds", id=scheduler_id, spread_seconds=spread_seconds
    )
    return timedelta(seconds=int(row["seconds"]))


def _scheduled(
    conn: db.Connection, scheduler: Scheduler, changes: SchedulerChanges, *, keep_next: bool
) -> Scheduler:
    """`scheduler` (already carrying the other changes) with its wall-clock grid, spread and
    catch-up window as `changes` set them, and its next run on the resulting grid.
    `keep_next`: the next run stays where it is unless the grid moves it; otherwise, without
    --start-at, it is the grid's first time from now on."""
    from schedctl.validation import check_spread

    hours = scheduler.schedule_interval_hours
    zone = changes.time_zone if changes.time_zone is not None else scheduler.time_zone
    spread = (
        changes.spread_seconds if changes.spread_seconds is not None else scheduler.spread_seconds
    )
    check_spread(spread, hours)
    window = scheduler.catchup_window_seconds
    if changes.catchup_window_seconds is not None:
        window = changes.catchup_window_seconds
        if window == NO_WINDOW:
            window = None
    old_offset = timedelta(seconds=scheduler.spread_offset_seconds)
    offset = _offset(conn, scheduler.id, spread)
    at: time | None
    keeps_time_of_day = False
    if changes.at is not None:
        at = changes.at
    elif scheduler.at is not None:
        at = time.fromisoformat(scheduler.at)
    elif changes.time_zone is not None:
        # --time-zone without --at: the schedule keeps its local time of day
        row = db.fetch_one(
            conn,
            "local_time_of_day",
            moment=scheduler.next_run_at - old_offset,
            time_zone=zone,
        )
        at = row["at_time"].replace(microsecond=0)  # to the second, as --at is shown
        keeps_time_of_day = True
    else:
        at = None
    updated = replace(
        scheduler,
        time_zone=zone,
        spread_seconds=spread,
        spread_offset_seconds=int(offset.total_seconds()),
        catchup_window_seconds=window,
    )
    if at is None:  # the elapsed-time grid: a new spread offset shifts it
        return replace(updated, next_run_at=scheduler.next_run_at - old_offset + offset)
    grid_moves = (
        changes.at is not None
        or changes.time_zone is not None
        or changes.interval_hours is not None
        or changes.spread_seconds is not None
        or changes.start is not None
        or scheduler.grid_anchor is None
    )
    if not grid_moves:
        return updated
    if changes.start is not None:
        start = scheduler.db_now if changes.start == START_NOW else changes.start
    elif keeps_time_of_day or (
        keep_next
        and changes.at is None
        and changes.time_zone is None
        and changes.interval_hours is None
    ):
        # the same wall-clock time as the next run (a new spread offset moves it)
        start = (scheduler.next_run_at - old_offset + offset).replace(microsecond=0)
    else:
        start = max(scheduler.db_now, scheduler.created_at, _after_last_served(conn, scheduler))
    row = db.fetch_one(
        conn,
        "grid_start",
        start=start,
        hours=hours,
        at_time=at,
        time_zone=zone,
        id=scheduler.id,
        spread_seconds=spread,
    )
    return replace(
        updated,
        at=_time_text(at),
        grid_anchor=row["anchor"],
        next_run_at=row["first_slot"],
    )


def _time_text(at: time) -> str:
    return at.strftime("%H:%M:%S" if at.second or at.microsecond else "%H:%M")


def _after_last_served(conn: db.Connection, scheduler: Scheduler) -> datetime:
    """Just after the latest slot a job was made for (the creation time when none was)."""
    row = db.fetch_one(conn, "last_served_slot", id=scheduler.id)
    if row["slot"] is None:
        return scheduler.created_at
    last: datetime = row["slot"]
    return last + timedelta(microseconds=1)


def _paused_until(scheduler: Scheduler, until: datetime | timedelta | None) -> Scheduler:
    """`scheduler` paused until `until` (a time, or a duration from the database's clock)."""
    if until is None:
        return scheduler
    when = scheduler.db_now + until if isinstance(until, timedelta) else until
    if when <= scheduler.db_now:
        raise InvalidInput(
            f"--until must be in the future (the database's clock reads "
            f"{scheduler.db_now.isoformat()})"
        )
    return replace(scheduler, is_enabled=False, paused_until=when)


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


def _changed(old: Scheduler, changes: SchedulerChanges, not_before: datetime) -> Scheduler:
    """`old` with the changes applied; a new interval keeps the anchor of its grid, unless
    that grid time is before `not_before` (the scheduler's creation, or just after the last
    slot it served)."""
    new = old
    values: dict[str, Any] = {
        "concurrency": changes.concurrency,
        "find_links": changes.find_links,
        "max_pages": changes.max_pages,
        "include_paths": changes.include_paths,
        "exclude_paths": changes.exclude_paths,
        "required_workers": changes.required_workers,
        "overlap_policy": changes.overlap.value if changes.overlap is not None else None,
        "is_enabled": changes.enabled,
    }
    new = replace(new, **{name: value for name, value in values.items() if value is not None})
    new = replace(
        new,
        include_paths=_edited(new.include_paths, changes.include_add, changes.include_remove),
        exclude_paths=_edited(new.exclude_paths, changes.exclude_add, changes.exclude_remove),
    )
    if changes.enabled is not None:
        new = replace(new, paused_until=None)
    if changes.enabled is True:
        new = replace(new, pause_reason=None)
    if changes.interval_hours is not None:
        anchor = old.next_run_at - timedelta(hours=old.schedule_interval_hours)
        if anchor < not_before:
            # The grid time before the next run is not one the scheduler had (it did not
            # exist yet, or a later slot was served): the next run stays, the new interval
            # follows it.
            next_run_at = old.next_run_at
        else:
            try:
                next_run_at = anchor + timedelta(hours=changes.interval_hours)
            except OverflowError:
                raise InvalidInput("--every: the next run would fall after the year 9999") from None
        new = replace(new, schedule_interval_hours=changes.interval_hours, next_run_at=next_run_at)
    if changes.start is not None:
        # `now` anchors the grid at a whole second of the database clock.
        start = old.db_now.replace(microsecond=0) if changes.start == START_NOW else changes.start
        assert isinstance(start, datetime)
        new = replace(new, next_run_at=start)
    return new


def _edited(paths: list[str], added: list[str] | None, removed: list[str] | None) -> list[str]:
    """A path list with paths added (at the end, once) and removed."""
    kept = [path for path in paths if path not in (removed or [])]
    return kept + [path for path in added or [] if path not in kept]


def update(
    conn: db.Connection, org_id: uuid.UUID, ref: Ref, changes: SchedulerChanges, actor: str
) -> tuple[Scheduler, bool]:
    """Change a scheduler; returns it and whether anything changed (a change to what it
    already is writes nothing, not even an audit entry)."""
    from schedctl.validation import check_spread

    if changes.is_empty():
        raise InvalidInput("nothing to change: give at least one option (see --help)")
    with conn.work():
        old = _lock(conn, org_id, ref)
        not_before = max(old.created_at, _after_last_served(conn, old))
        new = _changed(old, changes, not_before)
        check_spread(
            changes.spread_seconds if changes.spread_seconds is not None else old.spread_seconds,
            new.schedule_interval_hours,
        )
        if _schedule_changes(changes) or (
            old.at is not None and (changes.interval_hours is not None or changes.start)
        ):
            _check_zone(conn, changes)
            new = _scheduled(conn, new, changes, keep_next=True)
        new = _paused_until(new, changes.until)
        if not _diff(old, new):
            return old, False
        _store(conn, new)
        scheduler = get(conn, org_id, Ref.of_id(old.id))
        _audit(conn, actor, "update", scheduler, _diff(old, scheduler))
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
        paused = replace(old, is_enabled=False, pause_reason=reason, paused_until=None)
        new = _paused_until(paused, until)
        if not _diff(old, new):
            return old, False
        _store(conn, new)
        scheduler = get(conn, org_id, Ref.of_id(old.id))
        _audit(conn, actor, "pause", scheduler, _diff(old, scheduler), reason)
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
        _audit(conn, actor, "resume", scheduler, _diff(old, scheduler))
    return scheduler, True


def delete(conn: db.Connection, org_id: uuid.UUID, ref: Ref, actor: str) -> Scheduler:
    """Delete a scheduler; its jobs (detached) and audit entries stay."""
    with conn.work():
        old = _lock(conn, org_id, ref)
        db.execute(conn, "scheduler_delete", id=old.id)
        _audit(conn, actor, "delete", old, _deleted(old))
    return old


def run_now(conn: db.Connection, org_id: uuid.UUID, ref: Ref, actor: str) -> Job:
    """Create a job now, outside the schedule, under the scheduler's overlap policy."""
    with conn.work():
        scheduler = _lock(conn, org_id, ref)
        if scheduler.overlap_policy == "skip":
            active = db.fetch_one(
                conn,
                "job_active_exists",
                domain_id=scheduler.domain_id,
                organisation_id=scheduler.organisation_id,
            )
            if active["exists"]:
                raise Conflict(
                    f"a job of {scheduler.domain} is still active and the overlap policy is skip"
                )
        from schedctl import hooks

        set_hooks = hooks.read(conn)
        if set_hooks.create_job is None and set_hooks.cancel_job is None:
            inserted = db.fetch_one(
                conn,
                "job_insert_manual",
                scheduler_id=scheduler.id,
                source_info=MANUAL_RUN,
                cancel_active=True,
            )
            job_id = str(inserted["id"])
        else:
            job_id = hooks.make_job_now(
                conn,
                set_hooks,
                scheduler_id=scheduler.id,
                domain_id=scheduler.domain_id,
                organisation_id=scheduler.organisation_id,
                overlap_policy=scheduler.overlap_policy,
                source_info=MANUAL_RUN,
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


def audit_log(
    conn: db.Connection, org_id: uuid.UUID | None, ref: Ref | None, *, limit: int
) -> list[AuditEntry]:
    """The organisation's audit entries (None: every entry), or one scheduler's (deleted or
    not), newest first."""
    scheduler_id = None
    if ref is not None:
        if ref.prefix is not None:
            rows = db.fetch_all(
                conn,
                "audit_find_prefix",
                organisation_id=org_id,
                prefix=ref.prefix,
                limit=_CANDIDATES + 1,
            )
            if len(rows) > 1:
                raise _ambiguous(ref, rows)
            ref = replace(ref, id=rows[0]["id"] if rows else None, prefix=None)
        found = db.fetch_optional(
            conn, "audit_find_scheduler", organisation_id=org_id, **ref.params()
        )
        if found is None:
            raise _not_found(ref)
        scheduler_id = found["scheduler_id"]
    return db.records(
        conn,
        "audit_list",
        AuditEntry,
        organisation_id=org_id,
        scheduler_id=scheduler_id,
        limit=limit,
    )
