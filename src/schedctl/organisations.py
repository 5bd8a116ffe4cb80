"""Organisations: creating, listing, and resolving the one a command acts for."""

from __future__ import annotations

import uuid

from schedctl import db
from schedctl.errors import InvalidInput, NotFound
from schedctl.models import Organisation


def create(conn: db.Connection, name: str) -> Organisation:
    """Create an organisation (`name` already checked); names need not be unique."""
    with conn.work():
        return db.record(conn, "org_insert", Organisation, name=name)


def list_all(conn: db.Connection) -> list[Organisation]:
    """Every organisation, by name."""
    return db.records(conn, "org_list", Organisation)


def as_uuid(text: str) -> uuid.UUID | None:
    """`text` as a UUID, or None when it is not one."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def resolve(conn: db.Connection, ref: str | None) -> Organisation:
    """The organisation named by id or name, or the only one when none is named."""
    if ref is not None and ref.strip():
        exact_id = as_uuid(ref)
        found = db.records(conn, "org_find", Organisation, id=exact_id, name=ref.strip())
        if not found:
            raise NotFound(f"organisation {ref.strip()!r} not found")
        if len(found) > 1 and found[0].id != exact_id:
            raise InvalidInput(
                f"several organisations are named {ref.strip()!r}: choose one with --org ID "
                "(see `schedctl org list`)"
            )
        return found[0]
    found = db.records(conn, "org_any_two", Organisation)
    if not found:
        raise NotFound("no organisation exists yet: create one with `schedctl org create NAME`")
    if len(found) > 1:
        raise InvalidInput(
            "several organisations exist: choose one with --org ID|NAME or SCHEDCTL_ORG "
            "(see `schedctl org list`)"
        )
    return found[0]
