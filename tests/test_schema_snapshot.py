"""The migrations make exactly the objects src/schedctl/schema.sql describes: a migration
that adds, drops or changes a table, column, constraint, index, trigger, function or
privilege without the snapshot being regenerated fails here, and the diff says what."""

from __future__ import annotations

from tests.helpers import Conn
from tests.schema_snapshot import SNAPSHOT, describe, diff


def test_migrations_make_exactly_the_schema_snapshot(conn: Conn) -> None:
    expected = SNAPSHOT.read_text(encoding="utf-8")
    actual = describe(conn)
    assert actual == expected, (
        "the migrations no longer make what src/schedctl/schema.sql describes; if the change "
        "is meant, regenerate it with `python -m tests.schema_snapshot --write`:\n"
        + diff(expected, actual)
    )
