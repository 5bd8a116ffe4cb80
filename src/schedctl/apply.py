"""Schedules as code: bring the database to a file (`apply`) and write the database as a file
(`export`). A plan is worked out in memory from one read of the organisations' schedulers;
its writes are one set-based statement per kind of change, all in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from psycopg import errors as pgerrors

from schedctl import audit, db, organisations, store
from schedctl.errors import Conflict, InvalidInput
from schedctl.fields import DEFAULTS, FIELDS, from_row
from schedctl.manifest import Entry, ExportedScheduler, Manifest, dump, unknown_zones
from schedctl.models import Organisation

MANAGED_BY = store.MANAGED_BY


@dataclass(frozen=True)
class Item:
    """One scheduler in a plan: what is done to it, and how its fields change (file keys
    and file forms: {key: [old, new]}; for a new one, {key: value})."""

    organisation_id: uuid.UUID
    domain: str
    id: uuid.UUID | None = None
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """What an apply does (or, dry, would do)."""

    source: str
    organisations: list[Organisation]
    prune: bool
    written: bool = False
    created: list[Item] = field(default_factory=list)
    changed: list[Item] = field(default_factory=list)
    adopted: list[Item] = field(default_factory=list)
    deleted: list[Item] = field(default_factory=list)
    kept: list[Item] = field(default_factory=list)  # managed, not listed, no --prune
    unmanaged: list[Item] = field(default_factory=list)  # not managed, not listed: left alone
    unchanged: int = 0

    @property
    def in_sync(self) -> bool:
        """Whether the database already is as the file says (nothing to do)."""
        return not (self.created or self.changed or self.adopted or self.deleted)

    @property
    def drift(self) -> bool:
        """Whether the schedules differ from the file (what `--check` exits 1 for): adopting
        a scheduler that already is as the file says only marks it managed, so it is no
        drift."""
        adopted_changes = any(item.changes for item in self.adopted)
        return bool(self.created or self.changed or self.deleted or adopted_changes)


# ---------------------------------------------------------------- organisations


@dataclass(frozen=True)
class _Scope:
    """The organisation of each entry, and every organisation the file covers."""

    entry_orgs: list[uuid.UUID]
    organisations: list[Organisation]


def _resolve_scope(
    conn: db.Connection, manifest: Manifest, org_option: str | None, default_org: str | None
) -> _Scope:
    cache: dict[str | None, Organisation] = {}

    def resolve(ref: str | None) -> Organisation:
        if ref not in cache:
            cache[ref] = organisations.resolve(conn, ref)
        return cache[ref]

    pinned = resolve(org_option) if org_option else None
    file_org = resolve(manifest.organisation) if manifest.organisation else None
    if pinned and file_org and pinned.id != file_org.id:
        raise InvalidInput(
            f"{manifest.source} is for organisation {manifest.organisation!r}, "
            f"but --org names {org_option!r}"
        )
    top = file_org or pinned
    scope: dict[uuid.UUID, Organisation] = {}
    if top is not None:
        scope[top.id] = top
    entry_orgs: list[uuid.UUID] = []
    for entry in manifest.entries:
        if entry.organisation is not None:
            org = resolve(entry.organisation)
            if pinned and org.id != pinned.id:
                raise InvalidInput(
                    f"{entry.where(manifest.source)} is for organisation "
                    f"{entry.organisation!r}, outside --org {org_option!r}"
                )
        else:
            org = top or resolve(default_org)
        scope[org.id] = org
        entry_orgs.append(org.id)
    if not scope:  # no entry, no organisation named: the default one
        org = resolve(default_org)
        scope[org.id] = org
    _refuse_duplicates(manifest, entry_orgs)
    return _Scope(entry_orgs, sorted(scope.values(), key=lambda o: (o.name, str(o.id))))


def _refuse_duplicates(manifest: Manifest, entry_orgs: Sequence[uuid.UUID]) -> None:
    first: dict[tuple[uuid.UUID, str], Entry] = {}
    problems = []
    for entry, org_id in zip(manifest.entries, entry_orgs, strict=True):
        key = (org_id, entry.domain)
        if key in first:
            problems.append(
                f"{manifest.source}:{entry.line}: {entry.domain} is listed twice for one "
                f"organisation (also at line {first[key].line})"
            )
        else:
            first[key] = entry
    if problems:
        raise InvalidInput("; ".join(problems))


# ---------------------------------------------------------------- reading the database


def _current_values(row: dict[str, Any]) -> dict[str, Any]:
    return from_row(row)


def _in_force(entry: Entry, clock: datetime) -> Entry:
    """An entry as it holds at `clock`: a pause whose `paused-until` has passed is over (the
    scheduler is enabled, as a tick resumes it), so a file stays in step with the ticks."""
    until = entry.values["paused_until"]
    if until is None or until > clock:
        return entry
    return replace(
        entry,
        values={**entry.values, "is_enabled": True, "pause_reason": None, "paused_until": None},
    )


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """{file key: [old, new]} in file forms, for the fields that differ."""
    return {
        f.key: [f.export(old[f.attr]), f.export(new[f.attr])]
        for f in FIELDS
        if old[f.attr] != new[f.attr]
    }


@dataclass
class _Work:
    """The plan's rows, as the statements that carry it out need them."""

    creates: list[tuple[Entry, uuid.UUID]] = field(default_factory=list)
    # (entry, its organisation, the current row) of each changed or adopted scheduler
    updates: list[tuple[Entry, dict[str, Any]]] = field(default_factory=list)
    adoptions: list[tuple[Entry, dict[str, Any]]] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)


def _plan(
    manifest: Manifest, scope: _Scope, current: list[dict[str, Any]], prune: bool
) -> tuple[Plan, _Work]:
    plan = Plan(source=manifest.source, organisations=scope.organisations, prune=prune)
    work = _Work()
    # Each entry under every spelling the host may have stored its domain in.
    wanted: dict[tuple[uuid.UUID, str], int] = {}
    for index, (entry, org_id) in enumerate(zip(manifest.entries, scope.entry_orgs, strict=True)):
        for spelling in entry.spellings:
            wanted.setdefault((org_id, spelling), index)
    matched: dict[int, dict[str, Any]] = {}
    for row in current:
        index_ = wanted.get((row["organisation_id"], row["domain_key"]))
        if index_ is not None and index_ not in matched:
            matched[index_] = row
            continue
        item = Item(row["organisation_id"], row["domain"], row["id"])
        if row["managed_by"] is None:
            plan.unmanaged.append(item)
        elif prune:
            plan.deleted.append(item)
            work.deletes.append(row)
        else:
            plan.kept.append(item)
    for index, (entry, org_id) in enumerate(zip(manifest.entries, scope.entry_orgs, strict=True)):
        found = matched.get(index)
        if found is None:
            plan.created.append(
                Item(
                    org_id,
                    entry.domain,
                    None,
                    {f.key: f.export(entry.values[f.attr]) for f in FIELDS},
                )
            )
            work.creates.append((entry, org_id))
            continue
        row = found
        changes = _field_changes(_current_values(row), entry.values)
        item = Item(org_id, row["domain"], row["id"], changes)
        if row["managed_by"] is None:
            plan.adopted.append(item)
            work.adoptions.append((entry, row))
        elif changes:
            plan.changed.append(item)
        else:
            plan.unchanged += 1
            continue
        if changes:
            work.updates.append((entry, row))
    return plan, work


# ---------------------------------------------------------------- writing


def _new(interval_hours: int) -> dict[str, Any]:
    """What a scheduler is before a file creates it: create's defaults, no grid yet."""
    return {**DEFAULTS, "schedule_interval_hours": interval_hours}


def _audit_change(
    trail: store.AuditTrail,
    row: dict[str, Any],
    new: dict[str, Any],
    next_run_at: datetime,
    adopted: bool,
) -> None:
    old = {**_current_values(row), "next_run_at": row["next_run_at"]}
    scheduler = (row["id"], row["organisation_id"], row["domain"])
    trail.changed(scheduler, old, {**new, "next_run_at": next_run_at}, adopted=adopted)


def _write(conn: db.Connection, work: _Work, actor: str) -> list[uuid.UUID]:
    """Carry out the plan; the ids of the schedulers created, in the plan's order."""
    trail = store.AuditTrail()
    created: list[uuid.UUID] = []
    new_runs: list[tuple[uuid.UUID, uuid.UUID, Entry, datetime]] = []
    if work.creates:
        entries = [entry for entry, _ in work.creates]
        domain_ids = store.domain_ids(conn, [(e.domain, e.spellings) for e in entries])
        rows = [
            {"idx": i, "domain_id": domain_id, "organisation_id": str(org_id)}
            | store.seed_columns(entry.values)
            for i, ((entry, org_id), domain_id) in enumerate(
                zip(work.creates, domain_ids, strict=True)
            )
        ]
        inserted = store.insert(
            conn,
            rows,
            conflict="a scheduler the file creates was created meanwhile by another command; "
            "nothing was applied: run apply again",
        )
        made = {(domain_id, org_id): (sid, at) for sid, domain_id, org_id, at in inserted}
        for (entry, org_id), domain_id in zip(work.creates, domain_ids, strict=True):
            sid, at = made[(domain_id, org_id)]
            created.append(sid)
            new_runs.append((sid, org_id, entry, at))
    moved = store.update(
        conn,
        [{"id": str(row["id"])} | store.seed_columns(entry.values) for entry, row in work.updates],
    )
    adopted = {row["id"] for _, row in work.adoptions}
    changed = [*work.updates, *[a for a in work.adoptions if a[1]["id"] not in moved]]
    placed = _place(
        conn,
        [
            (
                sid,
                entry.values,
                _new(entry.values["schedule_interval_hours"]),
                None,
            )
            for sid, _, entry, _ in new_runs
        ]
        + [
            (row["id"], entry.values, _current_values(row), row["grid_anchor"])
            for entry, row in changed
        ],
    )
    settings = []
    for sid, org_id, entry, at in new_runs:
        next_run_at, anchor = placed.get(sid, (at, None))
        settings.append(store.settings_row(sid, entry.values, anchor, MANAGED_BY))
        trail.created(sid, org_id, entry.domain, {**entry.values, "next_run_at": next_run_at})
    for entry, row in changed:
        next_run_at = moved.get(row["id"], row["next_run_at"])
        next_run_at, anchor = placed.get(row["id"], (next_run_at, row["grid_anchor"]))
        settings.append(store.settings_row(row["id"], entry.values, anchor, MANAGED_BY))
        _audit_change(trail, row, entry.values, next_run_at, row["id"] in adopted)
    store.write_settings(conn, settings)
    if work.deletes:
        store.delete(conn, [row["id"] for row in work.deletes])
        for row in work.deletes:
            changes = audit.deleted({**_current_values(row), "next_run_at": row["next_run_at"]})
            trail.add("delete", row["id"], row["organisation_id"], row["domain"], changes)
    trail.write(conn, actor, MANAGED_BY)
    return created


def _place(
    conn: db.Connection,
    schedulers: Sequence[tuple[uuid.UUID, dict[str, Any], dict[str, Any], datetime | None]],
) -> dict[uuid.UUID, tuple[datetime, datetime | None]]:
    """Move the next run of the schedulers whose schedule a file set (each: its id, its new
    and old fields, its grid's anchor) in one statement; {id: (next run, grid anchor)}."""
    rows = []
    for scheduler_id, new, old, old_anchor in schedulers:
        placement = store.placement(store.grid_moves(old, new), new["at"], old_anchor)
        if placement is not None:
            rows.append(
                {
                    "id": str(scheduler_id),
                    "placement": placement,
                    "at_time": new["at"],
                    "time_zone": new["time_zone"],
                    "old_spread": old["spread_seconds"],
                    "spread_seconds": new["spread_seconds"],
                }
            )
    return store.place(conn, rows)


# ---------------------------------------------------------------- apply and export


def apply(
    conn: db.Connection,
    manifest: Manifest,
    *,
    org_option: str | None,
    default_org: str | None,
    prune: bool,
    write: bool,
    actor: str,
) -> Plan:
    """Bring the organisations' schedulers to the file (write=False: only plan), in one
    transaction that holds each organisation's apply lock."""
    scope = _resolve_scope(conn, manifest, org_option, default_org)
    zones = sorted({entry.values["time_zone"] for entry in manifest.entries})
    if zones:
        unknown = [row[0] for row in db.fetch_tuples(conn, "apply_time_zones_unknown", zones=zones)]
        if unknown:
            raise unknown_zones(manifest, unknown)
    ids = [org.id for org in scope.organisations]
    try:
        with conn.work():
            if write:
                db.execute(conn, "apply_lock_organisations", ids=ids)
                db.execute(conn, "apply_lock_schedulers", ids=ids)
            current = db.fetch_all(conn, "apply_current", ids=ids)
            clock = db.fetch_one(conn, "db_clock")["db_now"]
            manifest = replace(
                manifest, entries=[_in_force(entry, clock) for entry in manifest.entries]
            )
            plan, work = _plan(manifest, scope, [dict(row) for row in current], prune)
            if write and not plan.in_sync:
                ids = _write(conn, work, actor)
                plan.created = [
                    replace(item, id=sid) for item, sid in zip(plan.created, ids, strict=True)
                ]
                plan.written = True
    except pgerrors.LockNotAvailable:
        names = ", ".join(org.name for org in scope.organisations)
        raise Conflict(
            f"another apply or command holds the schedulers of {names} and did not finish "
            f"within {conn.lock_timeout:g} s (SCHEDCTL_LOCK_TIMEOUT); nothing was applied"
        ) from None
    return plan


def export(conn: db.Connection, org_id: uuid.UUID | None, *, managed_only: bool) -> str:
    """The schedulers of one organisation (None: of all) as a file `apply` takes back."""
    rows = db.fetch_all(
        conn, "export_schedulers", organisation_id=org_id, managed_only=managed_only
    )
    names: dict[str, str] = {}
    found: list[tuple[tuple[str, str, str], ExportedScheduler]] = []
    for row in rows:
        org = str(row["organisation_id"])
        names[org] = row["organisation_name"]
        scheduler = ExportedScheduler(org, row["domain"], _current_values(dict(row)))
        found.append(((row["organisation_name"], org, row["domain"]), scheduler))
    if org_id is not None and not names:
        names[str(org_id)] = organisations.resolve(conn, str(org_id)).name
    ordered = [scheduler for _, scheduler in sorted(found, key=lambda pair: pair[0])]
    return dump(ordered, names, per_entry_organisation=org_id is None)
