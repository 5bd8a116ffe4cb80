"""Organisations: creating, listing, and resolving the one a command acts for."""

from __future__ import annotations

import uuid

from psycopg.rows import DictRow

from schedctl import db
from schedctl.errors import InvalidInput, NotFound
from schedctl.validation import parse_org_name


def create(conn: db.Connection, name: str) -> DictRow:
    """Create an organisation; names need not be unique."""
    row = db.fetch_one(conn, "org_insert", name=parse_org_name(name))
    assert row is not None
    return row


def list_all(conn: db.Connection) -> list[DictRow]:
    """Every organisation, by name."""
    return db.fetch_all(conn, "org_list")


def as_uuid(text: str) -> uuid.UUID | None:
    """`text` as a UUID, or None when it is not one."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def resolve(conn: db.Connection, ref: str | None) -> DictRow:
    """The organisation named by id or name, or the only one when none is named."""
    if ref is not None and ref.strip():
        rows = db.fetch_all(conn, "org_find", id=as_uuid(ref), name=ref.strip())
        if not rows:
            raise NotFound(f"organisation {ref.strip()!r} not found")
        exact_id = as_uuid(ref)
        if len(rows) > 1 and rows[0]["id"] != exact_id:
            raise InvalidInput(
                f"several organisations are named {ref.strip()!r}: choose one with --org ID "
                "(see `schedctl org list`)"
            )
        return rows[0]
    rows = db.fetch_all(conn, "org_any_two")
    if not rows:
        raise NotFound("no organisation exists yet: create one with `schedctl org create NAME`")
    if len(rows) > 1:
        raise InvalidInput(
            "several organisations exist: choose one with --org ID|NAME or SCHEDCTL_ORG "
            "(see `schedctl org list`)"
        )
    return rows[0]
