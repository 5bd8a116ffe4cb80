"""Schedules people ask for, through the commands and real tick passes: a time of day in a time
zone across daylight-saving changes (Europe/London, America/New_York, Australia/Sydney), a
stable spread, a catch-up window, a pause that ends by itself, what is refused, and an
interval change that never reaches back before the scheduler existed. Tick's clock is passed
in (`tick.run(now=...)`); the slots lie in 2031, after any clock the tests run by."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from schedctl import db, tick
from schedctl import schedulers as operations
from schedctl.cli.changes import CreateOptions, Timing, scheduler_changes
from schedctl.config import Settings
from tests.helpers import (
    Cli,
    Conn,
    SharedWorld,
    SharedWorlds,
    assert_error,
    db_now,
    fetch_one,
    fingerprint,
    make_org,
    make_scheduler,
    ok_json,
    parse_time,
)

UTC = timezone.utc


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def tick_conn(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[db.Connection]:
    """A connection as `schedctl tick` opens it, its session in a zone of its own: the
    schedules' zones are theirs, not the session's."""
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)
    monkeypatch.setenv("PGTZ", "Asia/Tokyo")
    with db.connect(Settings()) as connection:
        yield connection


def _pass(tick_conn: db.Connection, now: datetime) -> tuple[tick.Summary, list[dict[str, Any]]]:
    jobs: list[dict[str, Any]] = []
    summary = tick.run(tick_conn, on_job=jobs.append, now=now)
    return summary, jobs


def _next_run(conn: Conn, scheduler_id: str) -> datetime:
    (value,) = fetch_one(conn, "SELECT next_run_at FROM schedulers WHERE id = %s", [scheduler_id])
    moment: datetime = value
    return moment


def _served(conn: Conn, scheduler_id: str) -> list[datetime]:
    return [
        slot
        for (slot,) in conn.execute(
            "SELECT slot FROM schedctl.served_slots WHERE scheduler_id = %s ORDER BY slot",
            [scheduler_id],
        )
    ]


# ---------------------------------------------------------------- the grid through tick

# (zone, --at, --start-at, the slots in UTC as the DST policy places them, one a day)
DST_CASES = [
    pytest.param(
        "Europe/London",
        "01:30",
        "2031-03-28T00:00:00Z",
        # 01:30 GMT; on the 30th 01:30 does not exist: 02:00 BST, the end of the gap; then BST
        ["2031-03-28T01:30", "2031-03-29T01:30", "2031-03-30T01:00", "2031-03-31T00:30"],
        id="london-spring-forward",
    ),
    pytest.param(
        "Europe/London",
        "01:30",
        "2031-10-24T12:00:00Z",
        # 01:30 BST; on the 26th 01:30 happens twice: the first, BST; then GMT
        ["2031-10-25T00:30", "2031-10-26T00:30", "2031-10-27T01:30"],
        id="london-fall-back",
    ),
    pytest.param(
        "America/New_York",
        "02:30",
        "2031-03-07T12:00:00Z",
        # 02:30 EST; on the 9th the gap: 03:00 EDT; then EDT
        ["2031-03-08T07:30", "2031-03-09T07:00", "2031-03-10T06:30"],
        id="new-york-spring-forward",
    ),
    pytest.param(
        "America/New_York",
        "01:30",
        "2031-10-31T12:00:00Z",
        # 01:30 EDT; on Nov 2 the first 01:30 (EDT); then EST
        ["2031-11-01T05:30", "2031-11-02T05:30", "2031-11-03T06:30"],
        id="new-york-fall-back",
    ),
    pytest.param(
        "Australia/Sydney",
        "02:30",
        "2031-04-04T12:00:00Z",
        # 02:30 AEDT; on April 6 the first 02:30 (AEDT); then AEST
        ["2031-04-04T15:30", "2031-04-05T15:30", "2031-04-06T16:30"],
        id="sydney-fall-back",
    ),
    pytest.param(
        "Australia/Sydney",
        "02:30",
        "2031-10-03T12:00:00Z",
        # 02:30 AEST; on October 5 the gap: 03:00 AEDT; then AEDT
        ["2031-10-03T16:30", "2031-10-04T16:00", "2031-10-05T15:30"],
        id="sydney-spring-forward",
    ),
]


@pytest.mark.parametrize(("zone", "at", "start", "expected"), DST_CASES)
def test_a_daily_wall_clock_time_through_a_daylight_saving_change(
    cli: Cli,
    conn: Conn,
    tick_conn: db.Connection,
    zone: str,
    at: str,
    start: str,
    expected: list[str],
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli, "example.com", "--every", "24h", "--at", at, "--time-zone", zone, "--start-at", start
    )
    slots = [_utc(text) for text in expected]
    assert (doc["at"], doc["time_zone"]) == (at, zone)
    assert parse_time(doc["next_run_at"]) == slots[0]
    served = []
    for i, slot in enumerate(slots):
        # a microsecond early: nothing is due
        early, jobs = _pass(tick_conn, slot - timedelta(microseconds=1))
        assert (early.due, jobs) == (0, []), slot
        # a minute late: one job, for this slot, and the next on the grid
        summary, jobs = _pass(tick_conn, slot + timedelta(minutes=1))
        assert (summary.due, summary.created, summary.missed) == (1, 1, 0), slot
        served.append(slot)
        assert jobs[0]["slot"] == slot
        if i + 1 < len(slots):
            assert jobs[0]["next_run_at"] == slots[i + 1]
        # the rest of that hour (the repeated one too): nothing more
        again, _ = _pass(tick_conn, slot + timedelta(minutes=61))
        assert again.due == 0, slot
    assert _served(conn, doc["id"]) == served


def test_every_six_hours_of_wall_clock_time_from_the_time_of_day(
    cli: Cli, conn: Conn, tick_conn: db.Connection
) -> None:
    """03:00 with 6 h in New York: 03, 09, 15 and 21 local, across the spring change (the
    21:00 -> 03:00 step is 5 h of elapsed time)."""
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--every",
        "6h",
        "--at",
        "03:00",
        "--time-zone",
        "America/New_York",
        "--start-at",
        "2031-03-08T12:00:00Z",
    )
    expected = [
        "2031-03-08T14:00",  # 09:00 EST
        "2031-03-08T20:00",  # 15:00 EST
        "2031-03-09T02:00",  # 21:00 EST
        "2031-03-09T07:00",  # 03:00 EDT
        "2031-03-09T13:00",  # 09:00 EDT
    ]
    for slot in map(_utc, expected):
        summary, jobs = _pass(tick_conn, slot + timedelta(seconds=30))
        assert (summary.created, jobs[0]["slot"]) == (1, slot)
    assert _served(conn, doc["id"]) == [_utc(text) for text in expected]
    assert _next_run(conn, doc["id"]) == _utc("2031-03-09T19:00")


def test_forty_eight_hours_is_every_other_day_from_the_first(
    cli: Cli, conn: Conn, tick_conn: db.Connection
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--every",
        "48h",
        "--at",
        "06:00",
        "--time-zone",
        "Europe/London",
        "--start-at",
        "2031-03-27T12:00:00Z",
    )
    # the first 06:00 after the start is on the 28th; then every other day, in BST from the 30th
    expected = ["2031-03-28T06:00", "2031-03-30T05:00", "2031-04-01T05:00"]
    assert parse_time(doc["next_run_at"]) == _utc(expected[0])
    # a pass three days late: one job, the day in between missed, back on the same days
    summary, jobs = _pass(tick_conn, _utc(expected[1]) + timedelta(days=1))
    assert (summary.created, summary.missed) == (1, 1)
    assert jobs[0]["next_run_at"] == _utc(expected[2])


def test_show_next_gives_local_times_and_marks_the_days_of_a_change(cli: Cli) -> None:
    make_org(cli, "Acme")
    make_scheduler(
        cli,
        "example.com",
        "--every",
        "24h",
        "--at",
        "01:30",
        "--time-zone",
        "Europe/London",
        "--start-at",
        "2031-03-28T00:00:00Z",
    )
    shown = ok_json(cli("show", "example.com", "--next", "4", "--json"))
    assert shown["next_runs"] == [
        "2031-03-28T01:30:00Z",
        "2031-03-29T01:30:00Z",
        "2031-03-30T01:00:00Z",
        "2031-03-31T00:30:00Z",
    ]
    assert [run["local_time"] for run in shown["next_runs_local"]] == [
        "2031-03-28T01:30:00",
        "2031-03-29T01:30:00",
        "2031-03-30T02:00:00",
        "2031-03-31T01:30:00",
    ]
    assert [run["utc_offset_seconds"] for run in shown["next_runs_local"]] == [0, 0, 3600, 3600]
    assert [run["dst_day"] for run in shown["next_runs_local"]] == [False, False, True, False]
    plain = cli("show", "example.com", "--next", "4")
    assert plain.code == 0, plain.stderr
    lines = [line for line in plain.stdout.splitlines() if "Europe/London" in line]
    assert "2031-03-30T01:00:00Z  2031-03-30 02:00 +01:00 Europe/London" in plain.stdout
    assert sum("DST change that day" in line for line in lines) == 1


def test_time_zone_without_at_keeps_the_local_time_of_day(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", "24h", "--start-at", "2031-01-10T07:45Z")
    after = ok_json(cli("update", doc["id"], "--time-zone", "Europe/London", "--json"))
    # London is on GMT in January: 07:45 local, the same instant
    assert (after["at"], after["time_zone"]) == ("07:45", "Europe/London")
    assert after["next_run_at"] == "2031-01-10T07:45:00Z"
    listed = cli("list")
    assert "24h at 07:45 Europe/London" in listed.stdout


# ---------------------------------------------------------------- spread


def test_a_thousand_schedulers_at_the_same_time_spread_evenly_and_keep_their_grids(
    conn: Conn, database_url: str, tick_conn: db.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)
    count = 1000
    changes = scheduler_changes(
        CreateOptions(every="24h", start_at="2031-01-10T00:00:00Z"),
        Timing(at="03:00", time_zone="Europe/London", spread="1h"),
    )
    (org_id,) = fetch_one(conn, "INSERT INTO organisations (name) VALUES ('Acme') RETURNING id")
    with db.connect(Settings()) as op_conn:
        made = [
            operations.create(op_conn, org_id, f"site-{i}.com", changes, "test")
            for i in range(count)
        ]
    first_day = _utc("2031-01-10T03:00")
    offsets = [s.next_run_at - first_day for s in made]
    assert all(timedelta(0) <= o < timedelta(hours=1) for o in offsets)
    assert [o.total_seconds() for o in offsets] == [s.spread_offset_seconds for s in made]
    per_minute = collections.Counter(int(o.total_seconds() // 60) for o in offsets)
    assert max(per_minute.values()) <= 3 * count / 60, per_minute.most_common(3)
    assert len(per_minute) >= 55  # nearly every minute of the hour is used

    # three days of passes: every scheduler served each day at its own offset, 24 h apart
    for day in range(3):
        summary, _ = _pass(tick_conn, first_day + timedelta(days=day, hours=1))
        assert (summary.due, summary.created, summary.missed) == (count, count, 0)
    rows = conn.execute(
        "SELECT scheduler_id::text, array_agg(slot ORDER BY slot) FROM schedctl.served_slots"
        " GROUP BY scheduler_id"
    ).fetchall()
    by_id = {str(s.id): s for s in made}
    assert len(rows) == count
    for scheduler_id, slots in rows:
        assert slots == [by_id[scheduler_id].next_run_at + timedelta(days=d) for d in range(3)]


def test_changing_other_fields_keeps_the_spread_offset(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--every",
        "24h",
        "--at",
        "03:00",
        "--time-zone",
        "UTC",
        "--spread",
        "1h",
        "--start-at",
        "2031-01-10T00:00:00Z",
    )
    offset = doc["spread_offset_seconds"]
    assert 0 <= offset < 3600
    assert parse_time(doc["next_run_at"]) == _utc("2031-01-10T03:00") + timedelta(seconds=offset)
    for change in (
        ["--concurrency", "5"],
        ["--every", "12h"],
        ["--at", "05:00"],
        ["--time-zone", "America/New_York"],
        ["--catchup-window", "2h"],
    ):
        after = ok_json(cli("update", doc["id"], *change, "--json"))
        assert after["spread_offset_seconds"] == offset, change
    # on the new grid: 05:00 and 17:00 New York, plus the same offset
    wall = (parse_time(after["next_run_at"]) - timedelta(seconds=offset)).astimezone(
        ZoneInfo("America/New_York")
    )
    assert (wall.hour % 12, wall.minute, wall.second) == (5, 0, 0)


def test_a_spread_on_the_elapsed_grid_shifts_it_once(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", "6h", "--start-at", "2031-01-10T00:00Z")
    after = ok_json(cli("update", doc["id"], "--spread", "30m", "--json"))
    offset = timedelta(seconds=after["spread_offset_seconds"])
    assert parse_time(after["next_run_at"]) == _utc("2031-01-10T00:00") + offset
    assert after["at"] is None
    again = ok_json(cli("update", doc["id"], "--spread", "0", "--json"))
    assert again["next_run_at"] == "2031-01-10T00:00:00Z"


def test_a_new_spread_on_an_at_grid_moves_the_next_run_to_the_new_offset_and_skips_no_day(
    cli: Cli, tick_conn: db.Connection
) -> None:
    """Narrowing or widening the spread keeps the next run on the same grid day, at the new
    offset (the old offset is taken out first): no day is skipped, none served twice."""
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--every",
        "24h",
        "--at",
        "03:00",
        "--time-zone",
        "UTC",
        "--spread",
        "1h",
        "--start-at",
        "2031-01-10T00:00:00Z",
    )
    day = _utc("2031-01-10T03:00")
    assert parse_time(doc["next_run_at"]) == day + timedelta(seconds=doc["spread_offset_seconds"])
    narrower = ok_json(cli("update", doc["id"], "--spread", "0", "--json"))
    assert (narrower["spread_offset_seconds"], narrower["next_run_at"]) == (
        0,
        "2031-01-10T03:00:00Z",
    )
    wider = ok_json(cli("update", doc["id"], "--spread", "2h", "--json"))
    offset = timedelta(seconds=wider["spread_offset_seconds"])
    assert parse_time(wider["next_run_at"]) == day + offset
    for days in range(2):
        summary, jobs = _pass(tick_conn, day + timedelta(days=days, hours=2))
        assert (summary.due, summary.created, summary.missed) == (1, 1, 0)
        assert jobs[0]["slot"] == day + timedelta(days=days) + offset
    # after a served day: the next grid day, at the new offset
    again = ok_json(cli("update", doc["id"], "--spread", "0", "--json"))
    assert again["next_run_at"] == "2031-01-12T03:00:00Z"
    summary, jobs = _pass(tick_conn, _utc("2031-01-12T03:00"))
    assert (summary.created, jobs[0]["slot"]) == (1, _utc("2031-01-12T03:00"))


# ---------------------------------------------------------------- catch-up window


def test_a_slot_later_than_the_catch_up_window_is_not_served(
    cli: Cli, conn: Conn, tick_conn: db.Connection
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--every",
        "6h",
        "--at",
        "03:00",
        "--catchup-window",
        "1h",
        "--start-at",
        "2031-01-10T00:00:00Z",
    )
    assert doc["catchup_window_seconds"] == 3600
    # 30 minutes late: served
    summary, jobs = _pass(tick_conn, _utc("2031-01-10T03:30"))
    assert (summary.created, summary.missed, jobs[0]["slot"]) == (1, 0, _utc("2031-01-10T03:00"))
    # the 09:00 slot reached two hours late: not served, missed, on to 15:00
    summary, jobs = _pass(tick_conn, _utc("2031-01-10T11:00"))
    assert (summary.due, summary.created, summary.skipped, summary.missed) == (1, 0, 1, 1)
    assert jobs == []
    assert _next_run(conn, doc["id"]) == _utc("2031-01-10T15:00")
    (changes, reason) = fetch_one(
        conn,
        "SELECT changes, reason FROM schedctl.audit WHERE action = 'missed' AND actor = 'tick'",
    )
    assert changes["slot"] == "2031-01-10T09:00:00Z"
    assert changes["missed"] == 1
    assert "catch-up window" in reason
    # 15:00, 21:00 and 03:00 due, the last 40 minutes late: it is served, the two before missed
    summary, jobs = _pass(tick_conn, _utc("2031-01-11T03:40"))
    assert (summary.created, summary.missed) == (1, 2)
    assert jobs[0]["slot"] == _utc("2031-01-11T03:00")
    assert _served(conn, doc["id"]) == [_utc("2031-01-10T03:00"), _utc("2031-01-11T03:00")]
    assert _next_run(conn, doc["id"]) == _utc("2031-01-11T09:00")
    # without a window again: late slots coalesce into one job, as before
    ok_json(cli("update", doc["id"], "--catchup-window", "none", "--json"))
    summary, jobs = _pass(tick_conn, _utc("2031-01-11T20:00"))
    assert (summary.created, summary.missed, jobs[0]["slot"]) == (1, 1, _utc("2031-01-11T09:00"))


@pytest.mark.parametrize(
    ("grid", "late"),
    [
        (["--at", "03:00"], timedelta(seconds=1)),
        ([], timedelta(microseconds=1)),
    ],
    ids=["at-grid", "elapsed-grid"],
)
def test_a_slot_exactly_the_catch_up_window_late_is_served_and_one_later_is_not(
    cli: Cli, conn: Conn, tick_conn: db.Connection, grid: list[str], late: timedelta
) -> None:
    """README: a slot reached *later* than the window is not served; at the window, it is."""
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--every",
        "6h",
        *grid,
        "--catchup-window",
        "1h",
        "--start-at",
        "2031-01-10T02:00:00Z" if grid else "2031-01-10T03:00:00Z",
    )
    first = _utc("2031-01-10T03:00")
    assert parse_time(doc["next_run_at"]) == first
    summary, jobs = _pass(tick_conn, first + timedelta(hours=1))
    assert (summary.created, summary.missed) == (1, 0)
    assert jobs[0]["slot"] == first
    second = first + timedelta(hours=6)
    summary, jobs = _pass(tick_conn, second + timedelta(hours=1) + late)
    assert (summary.due, summary.created, summary.skipped, summary.missed) == (1, 0, 1, 1)
    assert _next_run(conn, doc["id"]) == second + timedelta(hours=6)
    assert _served(conn, doc["id"]) == [first]


def test_a_window_on_the_elapsed_grid(cli: Cli, conn: Conn, tick_conn: db.Connection) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--every",
        "6h",
        "--catchup-window",
        "10m",
        "--start-at",
        "2031-01-10T00:00:00Z",
    )
    summary, _ = _pass(tick_conn, _utc("2031-01-10T00:11"))
    assert (summary.created, summary.missed) == (0, 1)
    assert _next_run(conn, doc["id"]) == _utc("2031-01-10T06:00")


# ---------------------------------------------------------------- pause --until


def test_pause_until_is_lifted_by_a_tick(cli: Cli, conn: Conn, tick_conn: db.Connection) -> None:
    make_org(cli, "Acme")
    now = db_now(conn)
    slot = (now + timedelta(hours=1)).isoformat()
    doc = make_scheduler(cli, "example.com", "--start-at", slot)
    paused = ok_json(cli("pause", doc["id"], "--until", "3h", "--reason", "deploy", "--json"))
    until = parse_time(paused["paused_until"])
    assert paused["is_enabled"] is False
    assert timedelta(hours=3) <= until - now < timedelta(hours=3, minutes=5)
    listed = cli("list")
    assert f"paused until {paused['paused_until']}: deploy" in listed.stdout

    # before the time: still paused, and its slot (passed meanwhile) waits
    summary, _ = _pass(tick_conn, until - timedelta(seconds=1))
    assert summary.due == 0
    assert fetch_one(conn, "SELECT is_enabled FROM schedulers WHERE id = %s", [doc["id"]]) == (
        False,
    )
    # at the time: resumed by tick, and the slot that passed is due at once, as after `resume`
    summary, jobs = _pass(tick_conn, until)
    assert (summary.due, summary.created) == (1, 1)
    assert jobs[0]["slot"] == parse_time(doc["next_run_at"])
    shown = ok_json(cli("show", doc["id"], "--json"))
    assert (shown["is_enabled"], shown["paused_until"], shown["pause_reason"]) == (True, None, None)
    actor, reason, changes = fetch_one(
        conn, "SELECT actor, reason, changes FROM schedctl.audit WHERE action = 'resume'"
    )
    assert (actor, reason) == ("tick", f"paused until {paused['paused_until']}")
    assert changes["is_enabled"] == [False, True]
    # once only
    _pass(tick_conn, until + timedelta(minutes=1))
    assert fetch_one(conn, "SELECT count(*) FROM schedctl.audit WHERE action = 'resume'") == (1,)


def test_tick_resumes_paused_until_schedulers_without_waiting_for_one_an_operator_holds(
    cli: Cli, conn: Conn, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's change in progress (its scheduler row locked, its settings written, not
    yet committed) is left to the next pass: tick never waits on it, and resumes the rest."""
    import psycopg

    make_org(cli, "Acme")
    ids = [
        make_scheduler(cli, f"site{i}.com", "--start-at", "2031-01-10T06:00:00Z")["id"]
        for i in range(3)
    ]
    until = "2031-01-10T00:00:00Z"
    for scheduler_id in ids:
        ok_json(cli("pause", scheduler_id, "--until", until, "--json"))
    held = ids[1]
    monkeypatch.setenv("SCHEDCTL_LOCK_TIMEOUT", "3")  # waiting would fail the pass, not hang it
    with psycopg.connect(database_url) as operator, db.connect(Settings()) as tick_conn:
        operator.execute(
            "SELECT id FROM schedulers WHERE id = %s FOR NO KEY UPDATE", [held]
        ).fetchone()
        operator.execute(
            "UPDATE schedctl.scheduler_settings SET pause_reason = 'changing'"
            " WHERE scheduler_id = %s",
            [held],
        )
        summary, _ = _pass(tick_conn, _utc("2031-01-10T00:00"))
        assert summary.ok
        enabled: dict[str, bool] = dict(
            conn.execute("SELECT id::text, is_enabled FROM schedulers").fetchall()
        )
        assert enabled == {ids[0]: True, held: False, ids[2]: True}
        operator.rollback()
        _pass(tick_conn, _utc("2031-01-10T00:01"))
    assert fetch_one(conn, "SELECT is_enabled FROM schedulers WHERE id = %s", [held]) == (True,)
    assert fetch_one(conn, "SELECT count(*) FROM schedctl.audit WHERE action = 'resume'") == (3,)


def test_create_disabled_until_and_resume_clears_it(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--disabled", "--until", "2031-01-01T00:00:00Z")
    assert (doc["is_enabled"], doc["paused_until"]) == (False, "2031-01-01T00:00:00Z")
    resumed = ok_json(cli("resume", doc["id"], "--json"))
    assert (resumed["is_enabled"], resumed["paused_until"]) == (True, None)


# ---------------------------------------------------------------- the interval change


def test_update_every_never_reaches_back_before_the_scheduler_existed(
    cli: Cli, conn: Conn, tick_conn: db.Connection
) -> None:
    """The operator's report: created with 2d and a first run in the future, changed to 6h;
    status reported a lag of 1 d 12 h, tick 6 missed slots and a job for a slot two days
    before the scheduler existed."""
    make_org(cli, "Acme")
    first_run = db_now(conn) + timedelta(hours=6)
    doc = make_scheduler(cli, "example.com", "--every", "2d", "--start-at", first_run.isoformat())
    after = ok_json(cli("update", doc["id"], "--every", "6h", "--json"))
    assert parse_time(after["next_run_at"]) == first_run
    assert parse_time(after["next_run_at"]) >= parse_time(after["created_at"])

    status = ok_json(cli("status", "--json"))
    assert (status["worst_lag_seconds"], status["problems"]) == (0, [])
    summary = ok_json(cli("tick", "--json"))
    assert (summary["due"], summary["missed"]) == (0, 0)
    # at the first run: one job, for that slot, nothing missed, then every 6 hours
    summary_at, jobs = _pass(tick_conn, first_run + timedelta(seconds=1))
    assert (summary_at.created, summary_at.missed) == (1, 0)
    assert jobs[0]["slot"] == first_run
    assert jobs[0]["next_run_at"] == first_run + timedelta(hours=6)


def test_update_every_never_reaches_back_before_the_last_served_slot(
    cli: Cli, conn: Conn, tick_conn: db.Connection
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", "24h", "--start-at", "2031-01-10T00:00Z")
    _pass(tick_conn, _utc("2031-01-10T00:01"))  # served; next 2031-01-11
    # the next run set back by hand, just after the served slot: the grid time before it
    # (2031-01-09) is older than the slot already served
    conn.execute(
        "UPDATE schedulers SET next_run_at = '2031-01-10T01:00Z' WHERE id = %s", [doc["id"]]
    )
    after = ok_json(cli("update", doc["id"], "--every", "6h", "--json"))
    assert after["next_run_at"] == "2031-01-10T01:00:00Z"


def test_status_lag_counts_from_the_creation(cli: Cli, conn: Conn) -> None:
    """A first run set before the scheduler existed (--start-at in the past) is due at once;
    the lag counts from the creation, not from that time."""
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--start-at", "2020-01-01T00:00:00Z")
    status = ok_json(cli("status", "--json", "--max-lag", "1d"))
    age = (db_now(conn) - parse_time(doc["created_at"])).total_seconds()
    assert status["worst_lag_seconds"] <= age + 1
    summary = ok_json(cli("tick", "--json"))
    assert (summary["created"], summary["missed"]) == (1, 0)


# ---------------------------------------------------------------- refused input


def _spread_scheduler(cli: Cli, conn: Conn, folder: Path) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com", "--every", "12h", "--spread", "10h")


@pytest.fixture(scope="module")
def spread_world(
    shared_worlds: SharedWorlds, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedWorld]:
    """One scheduler with a spread, shared by the refused inputs (none may change anything)."""
    with shared_worlds(tmp_path_factory.mktemp("spread"), _spread_scheduler) as world:
        yield world


@pytest.mark.parametrize(
    "args",
    [
        ["create", "new.com", "--every", "24h", "--at", "03:00", "--time-zone", "Mars/Olympus"],
        ["create", "new.com", "--every", "24h", "--time-zone", "Europe/Lndon"],
        ["create", "new.com", "--every", "24h", "--time-zone", "../../etc/passwd"],
        ["create", "new.com", "--every", "24h", "--time-zone", ""],
        ["create", "new.com", "--every", "24h", "--at", "24:00"],
        ["create", "new.com", "--every", "24h", "--at", "12:60"],
        ["create", "new.com", "--every", "24h", "--at", "3pm"],
        ["create", "new.com", "--every", "24h", "--at", "03:00:00"],
        ["create", "new.com", "--every", "6h", "--spread", "7h"],
        ["create", "new.com", "--every", "6h", "--spread", "-1h"],
        ["create", "new.com", "--every", "6h", "--spread", "soon"],
        ["create", "new.com", "--every", "6h", "--catchup-window", "59s"],
        ["create", "new.com", "--every", "6h", "--catchup-window", "0"],
        ["create", "new.com", "--every", "6h", "--until", "2031-01-01T00:00:00Z"],
        ["create", "new.com", "--every", "6h", "--disabled", "--until", "2020-01-01T00:00:00Z"],
        ["update", "example.com", "--spread", "13h"],
        ["update", "example.com", "--every", "6h"],  # its 10 h spread would exceed 6 h
        ["update", "example.com", "--time-zone", "Nowhere/Special"],
        ["update", "example.com", "--at", "7"],
        ["update", "example.com", "--catchup-window", "30s"],
        ["pause", "example.com", "--until", "now"],
        ["pause", "example.com", "--until", "2020-01-01T00:00:00Z"],
        ["pause", "example.com", "--until", "tomorrow"],
        ["pause", "example.com", "--until", "0s"],
    ],
)
def test_refused_input_is_exit_2_and_writes_nothing(
    spread_world: SharedWorld, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    cli = spread_world.cli_for(monkeypatch)
    with psycopg.connect(spread_world.url, autocommit=True) as conn:
        before = fingerprint(conn)
        message = assert_error(cli(*args), 2)
        assert message
        assert fingerprint(conn) == before


def test_the_settings_are_in_the_json_document_and_the_audit_trail(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--every",
        "24h",
        "--at",
        "03:00",
        "--time-zone",
        "Australia/Sydney",
        "--spread",
        "45m",
        "--catchup-window",
        "2h",
    )
    assert (doc["at"], doc["time_zone"], doc["spread_seconds"], doc["catchup_window_seconds"]) == (
        "03:00",
        "Australia/Sydney",
        2700,
        7200,
    )
    listed = ok_json(cli("list", "--json"))
    assert {k: listed[0][k] for k in doc if k != "updated_at"} == {
        k: doc[k] for k in doc if k != "updated_at"
    }
    (changes,) = fetch_one(conn, "SELECT changes FROM schedctl.audit WHERE action = 'create'")
    assert changes["at"] == [None, "03:00"]
    assert changes["time_zone"] == [None, "Australia/Sydney"]
    # a scheduler the host inserted itself has the defaults: today's elapsed grid in UTC
    conn.execute(
        "WITH d AS (INSERT INTO domains (name) VALUES ('host.com') RETURNING id)"
        " INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours,"
        " next_run_at) SELECT d.id, %s, 6, now() + interval '1 hour' FROM d",
        [doc["organisation_id"]],
    )
    host = ok_json(cli("show", "host.com", "--json"))
    assert {k: host[k] for k in ("at", "time_zone", "spread_seconds", "spread_offset_seconds")} == {
        "at": None,
        "time_zone": "UTC",
        "spread_seconds": 0,
        "spread_offset_seconds": 0,
    }
    assert (host["catchup_window_seconds"], host["paused_until"]) == (None, None)
