"""The slot arithmetic of wall-clock grids (`--at` in a time zone, with a spread), as tick runs
it in SQL (schedctl.grid_next_index, grid_slot, plan_slot), against an oracle written apart in
Python with zoneinfo: over zones with and without daylight saving, the transition dates of
several years, every interval, times of day in the gaps and the repeated hours, and clocks
anywhere around them."""

from __future__ import annotations

import functools
import itertools
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Conn, fetch_one

UTC = timezone.utc
MINUTE = timedelta(minutes=1)
INTERVALS = (6, 12, 24, 48)
# Northern and southern summer time, a half-hour change (Lord Howe), changes at midnight
# (Havana, Santiago), a zone that dropped summer time (Sao Paulo, 2019), none (Kolkata, UTC).
ZONES = (
    "Europe/London",
    "America/New_York",
    "Australia/Sydney",
    "Europe/Berlin",
    "Pacific/Auckland",
    "Australia/Lord_Howe",
    "America/Havana",
    "America/Santiago",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "UTC",
)
YEARS = range(2018, 2032)


# ---------------------------------------------------------------- the oracle


def oracle_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """When a wall-clock time happens, by the documented policy: a repeated time at its first
    occurrence (zoneinfo's fold=0); a time in a gap at the first instant after the gap (the
    first instant whose wall-clock reading is not before it, found minute by minute)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    moment = min(first, wall.replace(tzinfo=zone, fold=1).astimezone(UTC))
    moment = moment.replace(second=0, microsecond=0)
    while moment.astimezone(zone).replace(tzinfo=None) < wall:
        moment += MINUTE
    return moment


def oracle_walls(day: date, hours: int, anchor: datetime) -> list[datetime]:
    """The grid's wall-clock times on one local day: every `hours` from the anchor's time of
    day (6, 12, 24), or the anchor's time every other day from the anchor's day (48)."""
    if hours == 48:
        if (day - anchor.date()).days % 2:
            return []
        return [datetime.combine(day, anchor.time())]
    minutes = (anchor.hour * 60 + anchor.minute) % (hours * 60)
    start = datetime.combine(day, time())
    return [start + timedelta(minutes=minutes + j * hours * 60) for j in range(24 // hours)]


def oracle_slots_after(
    after: datetime, hours: int, anchor: datetime, zone: ZoneInfo, offset: timedelta, count: int
) -> list[datetime]:
    """The first `count` slots strictly after `after`, by enumerating the local days."""
    day = (after - offset).astimezone(zone).date() - timedelta(days=3)
    slots: list[datetime] = []
    while len(slots) < count:
        for wall in oracle_walls(day, hours, anchor):
            slot = oracle_instant(wall, zone) + offset
            if slot > after and (not slots or slot > slots[-1]):
                slots.append(slot)
        day += timedelta(days=1)
    return slots[:count]


@functools.cache
def transitions(zone_name: str) -> tuple[datetime, ...]:
    """The instants the zone's UTC offset changes in YEARS (hour by hour, then to the minute)."""
    zone = ZoneInfo(zone_name)
    found = []
    moment = datetime(YEARS[0], 1, 1, tzinfo=UTC)
    end = datetime(YEARS[-1] + 1, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment < end:
        following = moment + timedelta(hours=1)
        if following.astimezone(zone).utcoffset() != offset:
            minute = moment
            while minute.astimezone(zone).utcoffset() == offset:
                minute += MINUTE
            found.append(minute)
            offset = following.astimezone(zone).utcoffset()
        moment = following
    return tuple(found)


# ---------------------------------------------------------------- strategies


@st.composite
def near_transitions(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone, and a moment within three days of one of its offset changes (or anywhere in
    YEARS for a zone without any)."""
    zone = draw(st.sampled_from(ZONES))
    changes = transitions(zone)
    if changes:
        base = draw(st.sampled_from(changes))
        moment = base + timedelta(minutes=draw(st.integers(-3 * 1440, 3 * 1440)))
    else:
        moment = datetime(YEARS[0], 1, 1, tzinfo=UTC) + timedelta(
            minutes=draw(st.integers(0, 365 * 1440 * len(YEARS)))
        )
    return zone, moment + timedelta(microseconds=draw(st.sampled_from([0, 1, 999_999])))


@st.composite
def times_of_day(draw: st.DrawFn, zone: str, near: datetime) -> time:
    """A time of day, often one that falls in the gap or the repeated hour nearby."""
    local = near.astimezone(ZoneInfo(zone))
    if draw(st.booleans()):
        wall = local + timedelta(minutes=draw(st.integers(-90, 90)))
        return time(wall.hour, wall.minute)
    return time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 1, 15, 30, 45, 59])))


SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _sql_slots(
    conn: Conn,
    after: datetime,
    hours: int,
    at: time,
    zone: str,
    offset: timedelta,
    count: int,
    start: datetime,
) -> tuple[datetime, list[datetime]]:
    """The grid's anchor as create makes it (first slot at or after `start`), and the first
    `count` slots after `after` as tick computes them."""
    row = fetch_one(
        conn,
        """
        SELECT g.anchor, ARRAY(
            SELECT schedctl.grid_slot(i.first + k, %(hours)s, g.anchor, %(zone)s, %(offset)s)
            FROM generate_series(0, %(count)s - 1) AS k
            ORDER BY k
        )
        FROM schedctl.grid_start(%(start)s, %(hours)s, %(at)s, %(zone)s, %(offset)s) AS g
        CROSS JOIN LATERAL (
            SELECT schedctl.grid_next_index(%(after)s, %(hours)s, g.anchor, %(zone)s, %(offset)s)
                AS first
        ) AS i
        """,
        {
            "after": after,
            "hours": hours,
            "at": at,
            "zone": zone,
            "offset": offset,
            "count": count,
            "start": start,
        },
    )
    return row[0], list(row[1])


# ---------------------------------------------------------------- properties


def test_postgresql_reads_gaps_and_repeated_times_as_the_policy_corrects(conn: Conn) -> None:
    """What the policy corrects, and the corrected instants (New York, 2026)."""
    raw_gap, raw_repeat, gap, repeat = fetch_one(
        conn,
        """
        SELECT timestamp '2026-03-08 02:30' AT TIME ZONE 'America/New_York',
               timestamp '2026-11-01 01:30' AT TIME ZONE 'America/New_York',
               schedctl.wall_instant('2026-03-08 02:30', 'America/New_York'),
               schedctl.wall_instant('2026-11-01 01:30', 'America/New_York')
        """,
    )
    assert raw_gap == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT: too late
    assert raw_repeat == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST: the second
    assert gap == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, the end of the gap
    assert repeat == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, the first


@SETTINGS
@given(data=st.data(), place=near_transitions())
def test_wall_instant_follows_the_policy(
    conn: Conn, data: st.DataObject, place: tuple[str, datetime]
) -> None:
    zone_name, near = place
    at = data.draw(times_of_day(zone_name, near))
    wall = datetime.combine(near.astimezone(ZoneInfo(zone_name)).date(), at)
    (instant,) = fetch_one(conn, "SELECT schedctl.wall_instant(%s, %s)", [wall, zone_name])
    assert instant == oracle_instant(wall, ZoneInfo(zone_name)), (zone_name, wall)


@SETTINGS
@given(
    data=st.data(),
    place=near_transitions(),
    hours=st.sampled_from(INTERVALS),
    spread_minutes=st.sampled_from([0, 0, 1, 37, 59, 360]),
    started_days_before=st.integers(0, 5),
)
def test_the_next_slots_are_the_oracles(
    conn: Conn,
    data: st.DataObject,
    place: tuple[str, datetime],
    hours: int,
    spread_minutes: int,
    started_days_before: int,
) -> None:
    """From any clock: every slot on its wall-clock grid, strictly after the one before, no
    valid day skipped, never twice in a repeated hour."""
    zone_name, now = place
    zone = ZoneInfo(zone_name)
    at = data.draw(times_of_day(zone_name, now))
    offset = timedelta(minutes=min(spread_minutes, hours * 60 - 1))
    start = now - timedelta(days=started_days_before, minutes=7)
    anchor, slots = _sql_slots(conn, now, hours, at, zone_name, offset, 8, start)

    # the anchor is the wall time of the first slot at or after the start
    assert anchor.time() == at or hours < 24
    (first,) = oracle_slots_after(start - timedelta(microseconds=1), hours, anchor, zone, offset, 1)
    assert first >= start
    # the slots after now are the oracle's
    assert slots == oracle_slots_after(now, hours, anchor, zone, offset, 8), (zone_name, at)
    assert slots[0] > now
    assert all(a < b for a, b in itertools.pairwise(slots))
    walls = [(slot - offset).astimezone(zone).replace(tzinfo=None) for slot in slots]
    for slot, wall in zip(slots, walls, strict=True):
        # on the grid: the wall-clock time itself, or the end of the gap it fell in
        nominal = [w for w in oracle_walls(wall.date(), hours, anchor) if w <= wall]
        assert nominal, (zone_name, wall)
        assert oracle_instant(nominal[-1], zone) + offset == slot
    days = sorted({w.date() for w in walls})
    step = 2 if hours == 48 else 1
    # no valid day skipped: consecutive local days (every other day for 48 h)
    assert all((b - a).days == step for a, b in itertools.pairwise(days)), walls
    # never twice in a repeated hour: slots at least the interval less the largest change apart
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= timedelta(hours=hours) - timedelta(hours=1, minutes=1)


@SETTINGS
@given(
    data=st.data(),
    place=near_transitions(),
    hours=st.sampled_from(INTERVALS),
    late_slots=st.integers(0, 6),
    late_minutes=st.integers(0, 300),
    window_minutes=st.sampled_from([None, 1, 30, 120, 600]),
)
def test_tick_plans_the_oracles_slot_missed_count_and_next_run(
    conn: Conn,
    data: st.DataObject,
    place: tuple[str, datetime],
    hours: int,
    late_slots: int,
    late_minutes: int,
    window_minutes: int | None,
) -> None:
    """plan_slot (what tick_apply runs for these schedulers): the slot it serves, the due slots
    it does not, and the first grid time after the clock."""
    zone_name, base = place
    zone = ZoneInfo(zone_name)
    at = data.draw(times_of_day(zone_name, base))
    anchor, (slot,) = _sql_slots(
        conn, base, hours, at, zone_name, timedelta(0), 1, base - timedelta(days=3)
    )
    following = oracle_slots_after(slot, hours, anchor, zone, timedelta(0), late_slots + 3)
    now = ([slot, *following])[late_slots] + timedelta(minutes=late_minutes)
    due = [slot, *(s for s in following if s <= now)]
    (expected_next,) = oracle_slots_after(now, hours, anchor, zone, timedelta(0), 1)
    serve, missed, next_run_at = fetch_one(
        conn,
        "SELECT * FROM schedctl.plan_slot(%s, %s, %s, %s, %s, %s, interval '0', %s)",
        [
            slot,
            now,
            slot - timedelta(days=30),
            hours,
            anchor,
            zone_name,
            window_minutes * 60 if window_minutes else None,
        ],
    )
    assert next_run_at == expected_next
    if window_minutes is None:
        assert (serve, missed) == (slot, len(due) - 1)
    elif now - due[-1] <= timedelta(minutes=window_minutes):
        assert (serve, missed) == (due[-1], len(due) - 1)
    else:
        assert (serve, missed) == (None, len(due))


def test_slots_before_the_scheduler_existed_are_not_counted_missed(conn: Conn) -> None:
    """A slot (set by hand, or by --start-at) before the scheduler's creation: the grid times
    between it and the creation are not missed ones."""
    slot = datetime(2031, 1, 1, 3, tzinfo=UTC)
    created = slot + timedelta(days=2, hours=1)
    now = created + timedelta(hours=13)
    for anchor in (None, datetime(2031, 1, 1, 3)):
        serve, missed, next_run_at = fetch_one(
            conn,
            "SELECT * FROM schedctl.plan_slot(%s, %s, %s, 6, %s, 'UTC', interval '0', NULL)",
            [slot, now, created, anchor],
        )
        # grid times after the creation (Jan 3, 04:00) up to now (17:00): 09:00 and 15:00
        assert (serve, missed) == (slot, 2), anchor
        assert next_run_at == datetime(2031, 1, 3, 21, tzinfo=UTC)
