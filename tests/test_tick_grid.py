"""Drift-free catch-up: however late a pass comes, a due scheduler gets one job for
its slot, `next_run_at` moves to the first time of its own grid strictly after now, and
`missed` counts the grid times in between. The clock is passed in (`tick.run(now=...)`),
or read from the database."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from schedctl import db, tick
from schedctl.config import Settings
from tests.helpers import Conn, fetch_one

INTERVALS = (6, 12, 24, 48)
NOW = datetime(2031, 3, 30, 1, 0, 0, 250_000, tzinfo=timezone.utc)  # Europe's clocks change
SLOT = NOW - timedelta(seconds=1)
MICRO = timedelta(microseconds=1)


@pytest.fixture
def tick_conn(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[db.Connection]:
    """A connection as `schedctl tick` opens it, in a time zone with summer time: the
    grid is in hours and must not move when the clocks do."""
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)
    monkeypatch.setenv("PGTZ", "Europe/Berlin")
    with db.connect(Settings()) as connection:
        yield connection


def _add_scheduler(conn: Conn, hours: int, next_run_at: datetime) -> str:
    row = conn.execute(
        """
        WITH org AS (INSERT INTO organisations (name) VALUES ('Acme') RETURNING id),
        dom AS (INSERT INTO domains (name) VALUES ('grid-' || %(hours)s || '.com') RETURNING id)
        INSERT INTO schedulers (
            domain_id, organisation_id, schedule_interval_hours, next_run_at, created_at
        )
        SELECT dom.id, org.id, %(hours)s, %(next)s, LEAST(now(), %(next)s) FROM dom, org
        RETURNING id::text
        """,
        {"hours": hours, "next": next_run_at},
    ).fetchone()
    assert row is not None
    return str(row[0])


def _state(conn: Conn, scheduler_id: str) -> tuple[datetime, list[datetime]]:
    """The scheduler's next_run_at, and the slots of its jobs in order."""
    row = conn.execute(
        "SELECT next_run_at FROM schedulers WHERE id = %s", [scheduler_id]
    ).fetchone()
    assert row is not None
    slots = [
        slot
        for (slot,) in conn.execute(
            "SELECT ss.slot FROM jobs j JOIN schedctl.served_slots ss ON ss.job_id = j.id"
            " WHERE j.scheduler_id = %s ORDER BY ss.slot",
            [scheduler_id],
        )
    ]
    return row[0], slots


def _pass(tick_conn: db.Connection, now: datetime | None) -> tuple[tick.Summary, list[Any]]:
    jobs: list[dict[str, Any]] = []
    summary = tick.run(tick_conn, on_job=jobs.append, now=now)
    return summary, jobs


# Where the pass's clock falls against each scheduler's grid: (name, now - slot for an
# interval, the missed count for each of INTERVALS, or None when the slot is not due yet).
POSITIONS: list[tuple[str, Callable[[timedelta], timedelta], tuple[int, ...] | None]] = [
    ("slot 1 µs after now", lambda i: -MICRO, None),
    ("slot exactly now", lambda i: timedelta(0), (0, 0, 0, 0)),
    ("slot 1 µs before now", lambda i: MICRO, (0, 0, 0, 0)),
    ("1 interval ago exactly", lambda i: i, (1, 1, 1, 1)),
    ("1 interval + 1 µs ago", lambda i: i + MICRO, (1, 1, 1, 1)),
    ("2 intervals - 1 µs ago", lambda i: 2 * i - MICRO, (1, 1, 1, 1)),
    ("3 intervals ago exactly", lambda i: 3 * i, (3, 3, 3, 3)),
    ("3 intervals + 1 µs ago", lambda i: 3 * i + MICRO, (3, 3, 3, 3)),
    ("7 intervals - 1 µs ago", lambda i: 7 * i - MICRO, (6, 6, 6, 6)),
    ("3 days 17 minutes ago", lambda i: timedelta(days=3, minutes=17), (12, 6, 3, 1)),
    ("9 days 1 second ago", lambda i: timedelta(days=9, seconds=1), (36, 18, 9, 4)),
]


@pytest.mark.parametrize(
    ("late", "missed"),
    [position[1:] for position in POSITIONS],
    ids=[position[0] for position in POSITIONS],
)
def test_one_job_per_slot_and_the_next_grid_time_strictly_after_now(
    conn: Conn,
    tick_conn: db.Connection,
    late: Callable[[timedelta], timedelta],
    missed: tuple[int, ...] | None,
) -> None:
    """One scheduler of each interval, its slot `late` before the pass's clock."""
    slots = {hours: NOW - late(timedelta(hours=hours)) for hours in INTERVALS}
    ids = {hours: _add_scheduler(conn, hours, slot) for hours, slot in slots.items()}

    summary, jobs = _pass(tick_conn, NOW)

    if missed is None:
        assert (summary.due, summary.created, summary.missed, jobs) == (0, 0, 0, [])
        for hours in INTERVALS:
            assert _state(conn, ids[hours]) == (slots[hours], [])
        return
    assert (summary.due, summary.created, summary.skipped, summary.failed) == (4, 4, 0, 0)
    assert summary.missed == sum(missed)
    by_scheduler = {entry["scheduler_id"]: entry for entry in jobs}
    for hours, hours_missed in zip(INTERVALS, missed, strict=True):
        interval = timedelta(hours=hours)
        expected_next = slots[hours] + (hours_missed + 1) * interval
        assert expected_next - interval <= NOW < expected_next  # the first grid time after now
        entry = by_scheduler[uuid.UUID(ids[hours])]
        assert (entry["slot"], entry["next_run_at"]) == (slots[hours], expected_next), hours
        assert _state(conn, ids[hours]) == (expected_next, [slots[hours]]), hours
    # A second pass at the same moment finds nothing due.
    again, _ = _pass(tick_conn, NOW)
    assert (again.due, again.created) == (0, 0)


@pytest.mark.parametrize("hours", INTERVALS)
def test_successive_late_passes_never_drift(
    conn: Conn, tick_conn: db.Connection, hours: int
) -> None:
    """Passes at irregular moments: each job's slot is a time of the original grid."""
    interval = timedelta(hours=hours)
    scheduler_id = _add_scheduler(conn, hours, SLOT)
    # (now as a number of intervals after SLOT + microseconds,
    #  slot served, missed, next_run_at) in grid indexes
    passes = [
        (0.5, 0, 0, 0, 1),
        (3.7, 0, 1, 2, 4),
        (3.7, 1, None, 0, 4),  # nothing due: next_run_at stays
        (4.0, 0, 4, 0, 5),
        (10.0, 0, 5, 5, 11),
        (10.999, 0, None, 0, 11),
        (11.0, -1, None, 0, 11),  # 1 µs before the slot: not due yet
        (11.0, 0, 11, 0, 12),
    ]
    served = []
    for at, micros, slot_index, missed, next_index in passes:
        now = SLOT + at * interval + micros * MICRO
        summary, jobs = _pass(tick_conn, now)
        assert summary.missed == missed, (at, micros)
        if slot_index is None:
            assert (summary.due, jobs) == (0, []), (at, micros)
        else:
            served.append(SLOT + slot_index * interval)
            assert summary.created == 1, (at, micros)
            assert jobs[0]["slot"] == served[-1]
        assert _state(conn, scheduler_id) == (SLOT + next_index * interval, served)


def test_the_database_clock_when_none_is_passed(conn: Conn, tick_conn: db.Connection) -> None:
    """One pass by the database's clock over schedulers of every interval, each several
    grid times behind: every one lands on its own grid, just after now."""
    ids = {}
    for hours in INTERVALS:
        row = conn.execute(
            "SELECT now() - make_interval(hours => %s * 3) - interval '5 minutes'", [hours]
        ).fetchone()
        assert row is not None
        ids[hours] = (_add_scheduler(conn, hours, row[0]), row[0])

    summary, jobs = _pass(tick_conn, None)

    (after,) = fetch_one(conn, "SELECT now()")
    assert (summary.due, summary.created, summary.missed) == (4, 4, 4 * 3)
    assert len(jobs) == 4
    for hours, (scheduler_id, slot) in ids.items():
        next_run_at, slots = _state(conn, scheduler_id)
        assert slots == [slot]
        assert next_run_at == slot + timedelta(hours=hours * 4)
        assert next_run_at > after
