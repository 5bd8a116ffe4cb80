"""Organisations: creating, renaming, deleting, listing, and resolving the one a command
acts for. Names are unique, ignoring letter case, among those schedctl creates or renames
(the host's own duplicates stay, and are named by id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from psycopg import errors as pgerrors

from schedctl import db, store
from schedctl.errors import Conflict, InvalidInput, NotFound
from schedctl.models import Organisation

# How many names a "did you mean" may offer, and how alike they must be (difflib's ratio).
_SUGGESTIONS = 3
_SIMILAR = 0.6


@dataclass(frozen=True)
class Deleted:
    """What `org delete` removed: the organisation, and how many of its schedulers and jobs
    went with it (the jobs through the host's own foreign keys)."""

    organisation: Organisation
    schedulers: int
    jobs: int


def _claim_name(conn: db.Connection, name: str, keep: uuid.UUID | None = None) -> None:
    """Within the caller's transaction, make `name` schedctl's to give: wait for any other
    schedctl transaction giving the same name (in any letter case), then refuse it when an
    organisation other than `keep` holds it. The lock is a transaction-level advisory lock on
    the lowercased name, so two concurrent creates cannot both pass the check; the host's
    table is not changed (no unique index is added to it)."""
    db.execute(conn, "org_name_lock", name=name)
    taken = db.fetch_optional(conn, "org_name_taken", name=name, keep=keep)
    if taken is not None:
        raise Conflict(
            f"an organisation named {taken['name']!r} already exists ({taken['id']}); "
            "names are unique, ignoring letter case"
        )


def _audit(
    conn: db.Connection, actor: str, action: str, org_id: uuid.UUID, changes: dict[str, Any]
) -> None:
    trail = store.AuditTrail()
    trail.add(action, None, org_id, None, changes)
    trail.write(conn, actor, None)


def create(conn: db.Connection, name: str, actor: str = "unknown") -> Organisation:
    """Create an organisation (`name` already checked); exit 4 when the name is taken."""
    with conn.work():
        _claim_name(conn, name)
        org = db.record(conn, "org_insert", Organisation, name=name)
        _audit(conn, actor, "org_create", org.id, {"name": [None, org.name]})
        return org


def rename(
    conn: db.Connection, ref: str, name: str, actor: str
) -> tuple[Organisation, Organisation]:
    """Rename an organisation (`name` already checked); returns it before and after (the
    same when the name was already this one: nothing is written)."""
    with conn.work():
        old = resolve(conn, ref)
        db.execute(conn, "org_lock", id=old.id)
        if old.name == name:
            return old, old
        _claim_name(conn, name, keep=old.id)
        new = db.record(conn, "org_rename", Organisation, id=old.id, name=name)
        _audit(conn, actor, "org_rename", old.id, {"name": [old.name, new.name]})
        return old, new


def usage(conn: db.Connection, ref: str) -> tuple[Organisation, int, int]:
    """The organisation, and how many schedulers and jobs it has (for a confirmation)."""
    org = resolve(conn, ref)
    counts = db.fetch_one(conn, "org_usage", id=org.id)
    return org, int(counts["schedulers"]), int(counts["jobs"])


def delete(conn: db.Connection, org_id: uuid.UUID, *, cascade: bool, actor: str) -> Deleted:
    """Delete an organisation. Without `cascade` it must have no schedulers and no jobs
    (exit 4); with it, its schedulers are deleted first (each with its audit entry) and the
    host's foreign keys delete its jobs and whatever else of it they cascade to. A table of
    the host that still references it without a delete rule makes it exit 4."""
    with conn.work():
        locked = db.fetch_optional(conn, "org_lock", id=org_id)
        if locked is None:
            raise NotFound(f"organisation {str(org_id)!r} not found")
        org = Organisation(id=locked["id"], name=locked["name"], created_at=locked["created_at"])
        counts = db.fetch_one(conn, "org_usage", id=org_id)
        schedulers, jobs = int(counts["schedulers"]), int(counts["jobs"])
        if (schedulers or jobs) and not cascade:
            raise Conflict(
                f"organisation {org.name!r} has {schedulers} scheduler(s) and {jobs} job(s): "
                "--cascade deletes them with it"
            )
        try:
            with conn.work():
                db.execute(conn, "org_audit_schedulers_deleted", id=org_id, actor=actor)
                db.execute(conn, "scheduler_delete", ids=[], organisation_id=org_id)
                db.execute(conn, "org_delete", id=org_id)
        except pgerrors.ForeignKeyViolation as exc:
            table = exc.diag.table_name or "another table"
            raise Conflict(
                f"organisation {org.name!r} is still referenced by the host's table {table}, "
                "which does not let it go; nothing was deleted"
            ) from None
        _audit(
            conn,
            actor,
            "org_delete",
            org_id,
            {"name": [org.name, None], "schedulers": [schedulers, None], "jobs": [jobs, None]},
        )
    return Deleted(replace(org, schedulers=0), schedulers, jobs)


def list_all(conn: db.Connection) -> list[Organisation]:
    """Every organisation, by name."""
    return db.records(conn, "org_list", Organisation)


def as_uuid(text: str) -> uuid.UUID | None:
    """`text` as a UUID, or None when it is not one."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def _did_you_mean(conn: db.Connection, ref: str) -> str:
    """A hint naming the organisations whose names are close to `ref`, or ""."""
    import difflib

    names = [row["name"] for row in db.fetch_all(conn, "org_names")]
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.lower(), name)
    close = difflib.get_close_matches(ref.lower(), list(by_lower), _SUGGESTIONS, _SIMILAR)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(by_lower[name]) for name in close) + "?"


def resolve(conn: db.Connection, ref: str | None) -> Organisation:
    """The organisation named by id or name (letter case ignored; an exact match wins over
    others that differ only in case), or the only one when none is named."""
    if ref is not None and ref.strip():
        text = ref.strip()
        exact_id = as_uuid(text)
        found = db.records(conn, "org_find", Organisation, id=exact_id, name=text)
        if not found:
            raise NotFound(f"organisation {text!r} not found{_did_you_mean(conn, text)}")
        if found[0].id == exact_id or len(found) == 1:
            return found[0]
        exact = [org for org in found if org.name == text]
        if len(exact) == 1:
            return exact[0]
        raise InvalidInput(
            f"several organisations are named {text!r}: choose one with --org ID "
            "(see `schedctl org list`)"
        )
    found = db.records(conn, "org_any_two", Organisation)
    if not found:
        raise NotFound("no organisation exists yet: create one with `schedctl org create NAME`")
    if len(found) > 1:
        raise InvalidInput(
            "several organisations exist: choose one with --org ID|NAME or SCHEDCTL_ORG "
            "(see `schedctl org list`)"
        )
    return found[0]
