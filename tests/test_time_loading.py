"""Times read from the database are the same instants, as UTC datetimes, whatever the
session's time zone (tick reads tens of thousands per pass, through a fast path for the
server's ISO output); any other date style is still psycopg's to refuse, never misread."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from schedctl import db
from schedctl.config import Settings

UTC = timezone.utc


@pytest.fixture
def tick_conn(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[db.Connection]:
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)
    with db.connect(Settings()) as connection:
        yield connection


@pytest.mark.parametrize(
    ("zone", "date_style"),
    [
        ("UTC", "ISO, MDY"),
        ("Asia/Kathmandu", "ISO, DMY"),  # +05:45
        ("America/St_Johns", "ISO, MDY"),  # -03:30 / -02:30
        ("Australia/Lord_Howe", "ISO, YMD"),  # a half-hour summer time change
    ],
)
def test_times_load_as_the_same_instant_in_utc(
    tick_conn: db.Connection, zone: str, date_style: str
) -> None:
    expected = [
        datetime(2031, 3, 30, 0, 59, 59, 999999, tzinfo=UTC),
        datetime(2031, 3, 30, 1, 0, tzinfo=UTC),
        datetime(2031, 10, 5, 1, 30, 0, 500000, tzinfo=UTC),
        datetime(1901, 1, 1, 12, 0, tzinfo=UTC),  # before standard time: an LMT offset
    ]
    with tick_conn.transaction(force_rollback=True):
        tick_conn.execute("SELECT set_config('TimeZone', %s, true)", [zone])
        tick_conn.execute("SELECT set_config('DateStyle', %s, true)", [date_style])
        rows = tick_conn.execute(
            "SELECT t AS moment FROM unnest(%s::timestamptz[]) AS t", [expected]
        ).fetchall()
    loaded = [row["moment"] for row in rows]
    assert loaded == expected
    assert all(moment.utcoffset() == timedelta(0) for moment in loaded)


@pytest.mark.parametrize("date_style", ["SQL, DMY", "Postgres, MDY", "German"])
def test_another_date_style_is_refused_not_misread(
    tick_conn: db.Connection, date_style: str
) -> None:
    with tick_conn.transaction(force_rollback=True):
        tick_conn.execute("SELECT set_config('DateStyle', %s, true)", [date_style])
        with pytest.raises(NotImplementedError, match="DateStyle"):
            tick_conn.execute("SELECT timestamptz '2031-03-30 01:00:00+00' AS t").fetchone()
