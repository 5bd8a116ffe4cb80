"""`schedctl timeline`: the runs to come counted per bucket in the database, by the slot
arithmetic of tick (wall-clock grids across a DST change, spread, catch-up windows, pauses
that run out), herds flagged, the JSON shape, and a chart that fits 80 columns."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from schedctl import db
from schedctl import timeline as timelines
from schedctl.config import load_settings
from schedctl.output import timeline as render_timeline
from tests.helpers import Cli, Conn, assert_error, make_org, make_scheduler, ok_json

# A fixed clock, the day before the United States change to summer time (10 March 2030).
NOW = datetime(2030, 3, 9, 10, 30, tzinfo=timezone.utc)
START = datetime(2030, 3, 9, 10, 0, tzinfo=timezone.utc)  # the bucket that holds NOW


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _bucket(moment: datetime) -> int:
    return int((moment - START) // timedelta(hours=1))


def _set(conn: Conn, scheduler_id: str, next_run_at: str, **columns: object) -> None:
    conn.execute(
        "UPDATE schedulers SET next_run_at = %s WHERE id = %s", (_at(next_run_at), scheduler_id)
    )
    for column, value in columns.items():
        assert column in ("is_enabled",)
        conn.execute(f"UPDATE schedulers SET {column} = %s WHERE id = %s", (value, scheduler_id))


@pytest.fixture
def known(cli: Cli, conn: Conn) -> dict[str, object]:
    """Schedulers whose runs in the 24 hours from NOW are known by hand; returns the
    expected runs per bucket of each organisation, and the organisations' ids."""
    acme, herds = make_org(cli, "acme"), make_org(cli, "herds")
    expected: dict[str, dict[int, int]] = {acme: {}, herds: {}}

    def runs(org: str, *moments: datetime) -> None:
        for moment in moments:
            index = _bucket(moment)
            expected[org][index] = expected[org].get(index, 0) + 1

    # Daily at 09:00 in Paris (UTC+1 in March): 08:00Z tomorrow.
    paris = make_scheduler(
        cli, "paris.fr", "--org", acme, "--every", "24h", "--at", "09:00",
        "--time-zone", "Europe/Paris",
    )  # fmt: skip
    _set(conn, paris["id"], "2030-03-10T08:00:00")
    runs(acme, _at("2030-03-10T08:00:00"))
    # Daily at 07:00 in Tokyo (UTC+9): 22:00Z today.
    tokyo = make_scheduler(
        cli, "tokyo.co.jp", "--org", acme, "--every", "24h", "--at", "07:00",
        "--time-zone", "Asia/Tokyo",
    )  # fmt: skip
    _set(conn, tokyo["id"], "2030-03-09T22:00:00")
    runs(acme, _at("2030-03-09T22:00:00"))
    # Every 6 hours from 02:30 New York time: 08:30 and 14:30 and 20:30 EST, then 02:30 on
    # the day the clocks spring forward over it: 03:00 EDT, the first instant after the gap.
    york = make_scheduler(
        cli, "york.com", "--org", acme, "--every", "6h", "--at", "02:30",
        "--time-zone", "America/New_York",
    )  # fmt: skip
    _set(conn, york["id"], "2030-03-09T13:30:00")
    runs(
        acme,
        _at("2030-03-09T13:30:00"),
        _at("2030-03-09T19:30:00"),
        _at("2030-03-10T01:30:00"),
        _at("2030-03-10T07:00:00"),
    )
    # Every 6 hours from 03:00 New York time: 09:00, 15:00 and 21:00 EST, then 03:00 EDT,
    # an hour earlier in UTC than 6 hours of elapsed time would put it.
    boston = make_scheduler(
        cli, "boston.com", "--org", acme, "--every", "6h", "--at", "03:00",
        "--time-zone", "America/New_York",
    )  # fmt: skip
    _set(conn, boston["id"], "2030-03-09T14:00:00")
    runs(
        acme,
        _at("2030-03-09T14:00:00"),
        _at("2030-03-09T20:00:00"),
        _at("2030-03-10T02:00:00"),
        _at("2030-03-10T07:00:00"),
    )
    # Every 6 hours, no spread.
    six = make_scheduler(cli, "six.com", "--org", acme, "--every", "6h")
    _set(conn, six["id"], "2030-03-09T11:00:00")
    runs(acme, *(_at("2030-03-09T11:00:00") + timedelta(hours=6 * k) for k in range(4)))
    # Every 6 hours spread over 1 hour: at a stable offset after the grid time.
    spread = make_scheduler(cli, "spread.com", "--org", acme, "--every", "6h", "--spread", "1h")
    offset = timedelta(
        seconds=conn.execute(
            "SELECT extract(epoch FROM schedctl.spread_offset(%s, 3600))::int", (spread["id"],)
        ).fetchone()[0]  # type: ignore[index]
    )
    first = _at("2030-03-09T11:30:00") + offset
    _set(conn, spread["id"], first.replace(tzinfo=None).isoformat())
    runs(acme, *(first + timedelta(hours=6 * k) for k in range(4)))
    # Paused until 14:10 with a slot due before: one run when the pause runs out, then its
    # grid (every 12 hours from 06:00).
    paused = make_scheduler(cli, "paused.com", "--org", acme, "--every", "12h")
    assert cli("pause", "paused.com", "--org", acme, "--until", "2030-03-09T14:10:00Z").code == 0
    _set(conn, paused["id"], "2030-03-09T06:00:00")
    runs(
        acme,
        _at("2030-03-09T14:10:00"),
        _at("2030-03-09T18:00:00"),
        _at("2030-03-10T06:00:00"),
    )
    # Paused until after the window, and paused for good: no runs.
    later = make_scheduler(cli, "later.com", "--org", acme, "--every", "6h")
    assert cli("pause", "later.com", "--org", acme, "--until", "2030-03-11T00:00:00Z").code == 0
    _set(conn, later["id"], "2030-03-09T12:00:00")
    stopped = make_scheduler(cli, "stopped.com", "--org", acme, "--every", "6h")
    assert cli("pause", "stopped.com", "--org", acme).code == 0
    _set(conn, stopped["id"], "2030-03-09T12:00:00")
    # Due now with a catch-up window of 1 hour, 2.5 hours late: that slot is dropped.
    late = make_scheduler(cli, "late.com", "--org", acme, "--every", "6h", "--catchup-window", "1h")
    _set(conn, late["id"], "2030-03-09T08:00:00")
    runs(acme, *(_at("2030-03-09T14:00:00") + timedelta(hours=6 * k) for k in range(4)))
    # Due now without a window: runs at once, then on its grid.
    due = make_scheduler(cli, "due.com", "--org", acme, "--every", "12h")
    _set(conn, due["id"], "2030-03-09T09:00:00")
    runs(acme, NOW, _at("2030-03-09T21:00:00"), _at("2030-03-10T09:00:00"))
    # A herd: ten daily schedulers at 15:00Z in another organisation.
    for n in range(10):
        herd = make_scheduler(cli, f"herd{n}.com", "--org", herds, "--every", "24h")
        _set(conn, herd["id"], "2030-03-09T15:00:00")
    runs(herds, *[_at("2030-03-09T15:00:00")] * 10)
    return {"acme": acme, "herds": herds, "expected": expected}


@pytest.fixture
def connection(cli: Cli) -> Iterator[db.Connection]:
    with db.connect(load_settings()) as conn:
        yield conn


def test_counts_per_bucket_are_the_known_runs(
    known: dict[str, object], connection: db.Connection
) -> None:
    found = timelines.count(connection, None, hours=24, bucket=timedelta(hours=1), now=NOW)
    expected: dict[str, dict[int, int]] = known["expected"]  # type: ignore[assignment]
    assert found.buckets[0].start == START
    assert len(found.buckets) == 25  # 10:00 today to 10:00 tomorrow, which holds the end
    for index, bucket in enumerate(found.buckets):
        assert bucket.start == START + timedelta(hours=index)
        wanted = {
            org: per_bucket[index] for org, per_bucket in expected.items() if per_bucket.get(index)
        }
        assert {str(org): n for org, n in bucket.organisations.items()} == wanted, index
        assert bucket.runs == sum(wanted.values()), index
    total = sum(sum(per.values()) for per in expected.values())
    assert found.total == total
    assert [b.start for b in found.herds] == [_at("2030-03-09T15:00:00")]


def test_one_organisation_counts_its_own_runs_only(
    known: dict[str, object], connection: db.Connection
) -> None:
    acme = str(known["acme"])
    found = timelines.count(
        connection, uuid.UUID(acme), hours=24, bucket=timedelta(hours=1), now=NOW
    )
    expected: dict[str, dict[int, int]] = known["expected"]  # type: ignore[assignment]
    assert [b.runs for b in found.buckets] == [expected[acme].get(i, 0) for i in range(25)]
    assert found.herds == []  # the herd is the other organisation's


def test_wider_buckets_start_at_whole_multiples_in_utc(
    known: dict[str, object], connection: db.Connection
) -> None:
    found = timelines.count(connection, None, hours=24, bucket=timedelta(hours=6), now=NOW)
    assert [b.start for b in found.buckets] == [
        _at("2030-03-09T06:00:00") + timedelta(hours=6 * k) for k in range(5)
    ]
    expected: dict[str, dict[int, int]] = known["expected"]  # type: ignore[assignment]
    per_hour = [sum(per.get(i, 0) for per in expected.values()) for i in range(25)]
    # hour i (from 10:00) falls in the 6-hour bucket of (i + 4) // 6 (from 06:00)
    wanted = [0] * 5
    for i, n in enumerate(per_hour):
        wanted[(i + 4) // 6] += n
    assert [b.runs for b in found.buckets] == wanted


def test_json_has_the_documented_shape_and_flags_the_herd(cli: Cli, conn: Conn) -> None:
    org = make_org(cli, "acme")
    for n in range(8):
        make_scheduler(cli, f"herd{n}.com", "--org", org, "--every", "24h")
    make_scheduler(cli, "alone.com", "--org", org, "--every", "24h")
    conn.execute(
        "UPDATE schedulers SET next_run_at = now() + interval '5 hours' "
        "WHERE domain_id IN (SELECT id FROM domains WHERE name LIKE 'herd%%')"
    )
    conn.execute(
        "UPDATE schedulers SET next_run_at = now() + interval '15 hours' "
        "WHERE domain_id IN (SELECT id FROM domains WHERE name = 'alone.com')"
    )
    doc = ok_json(cli("timeline", "--org", org, "--json"))
    assert set(doc) == {"from", "bucket_seconds", "buckets", "mean", "herds"}
    assert doc["bucket_seconds"] == 3600
    start = datetime.fromisoformat(doc["buckets"][0]["start"].replace("Z", "+00:00"))
    now = datetime.fromisoformat(doc["from"].replace("Z", "+00:00"))
    assert start <= now < start + timedelta(hours=1)
    assert start.timestamp() % 3600 == 0
    assert all(set(b) == {"start", "runs", "organisations"} for b in doc["buckets"])
    assert sum(b["runs"] for b in doc["buckets"]) == 9
    herd = [b for b in doc["buckets"] if b["runs"] == 8]
    assert len(herd) == 1 and herd[0]["organisations"] == {org: 8}
    assert doc["herds"] == [herd[0]["start"]]
    assert doc["mean"] == pytest.approx(9 / len(doc["buckets"]), abs=0.001)


def test_the_chart_fits_80_columns_and_names_the_herd(
    known: dict[str, object], connection: db.Connection
) -> None:
    found = timelines.count(connection, None, hours=24, bucket=timedelta(hours=1), now=NOW)
    out = io.StringIO()
    render_timeline.chart(found, width=80, out=out)
    lines = out.getvalue().splitlines()
    assert len(lines) > 25
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    herd_line = next(line for line in lines if line.startswith("Sat 15:00"))
    assert "!" in herd_line and "herds 10" in herd_line
    assert any("--spread" in line for line in lines)


def test_plain_output_is_one_line_per_bucket(cli: Cli, conn: Conn) -> None:
    org = make_org(cli, "acme")
    make_scheduler(cli, "a.com", "--org", org, "--every", "6h")
    result = cli("timeline", "--org", org, "--hours", "12", "--bucket", "3h")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "start\truns\therd\torganisations"
    assert len(lines) - 1 in (4, 5)
    assert sum(int(line.split("\t")[1]) for line in lines[1:]) == 2


@pytest.mark.parametrize(
    "args",
    [
        ("--hours", "0"),
        ("--bucket", "30s"),
        ("--bucket", "2d"),
        ("--hours", "1000", "--bucket", "1m"),
        ("--org", "x", "--all-orgs"),
        ("--json", "--watch", "5"),
    ],
)
def test_bad_windows_are_exit_2(cli: Cli, args: tuple[str, ...]) -> None:
    make_org(cli, "acme")
    assert_error(cli("timeline", *args), 2)


def test_json_output_is_one_document(cli: Cli) -> None:
    make_org(cli, "acme")
    doc = json.loads(cli("timeline", "--json").stdout)
    assert doc["herds"] == [] and doc["mean"] == 0
