"""The timeline: the runs that will start in the next hours, counted per bucket in the
database by the slot arithmetic tick uses, with the herds (buckets far above the mean)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schedctl import db
from schedctl.errors import InvalidInput

# A bucket above this many times the mean is a herd.
HERD_FACTOR = 3
HOURS = (1, 24 * 31)
MIN_BUCKET = timedelta(minutes=1)
MAX_BUCKETS = 2000


@dataclass
class Bucket:
    """The runs that start inside one bucket, per organisation."""

    start: datetime
    runs: int = 0
    organisations: dict[uuid.UUID, int] = field(default_factory=dict)
    herd: bool = False


@dataclass
class Timeline:
    """Every bucket of the window (empty ones too), from the one that holds `now`."""

    now: datetime
    until: datetime
    bucket: timedelta
    buckets: list[Bucket]
    organisation_names: dict[uuid.UUID, str]

    @property
    def total(self) -> int:
        return sum(bucket.runs for bucket in self.buckets)

    @property
    def mean(self) -> float:
        return self.total / len(self.buckets) if self.buckets else 0.0

    @property
    def herds(self) -> list[Bucket]:
        return [bucket for bucket in self.buckets if bucket.herd]


def check_window(hours: int, bucket: timedelta) -> None:
    """Refuse a window or bucket size the chart cannot show (exit 2)."""
    from schedctl.validation import check_range

    check_range("--hours", hours, *HOURS)
    if bucket < MIN_BUCKET:
        raise InvalidInput("--bucket must be at least 1m")
    if bucket > timedelta(hours=hours):
        raise InvalidInput("--bucket must not be longer than the window (--hours)")
    if timedelta(hours=hours) / bucket > MAX_BUCKETS:
        raise InvalidInput(f"--hours / --bucket gives more than {MAX_BUCKETS} buckets")


def count(
    conn: db.Connection,
    org_id: uuid.UUID | None,
    *,
    hours: int,
    bucket: timedelta,
    now: datetime | None = None,
) -> Timeline:
    """The runs of one organisation's schedulers (None: every organisation's) that start in
    the next `hours` from `now` (None: the database's clock), per bucket; one transaction,
    so both statements read the same clock."""
    check_window(hours, bucket)
    seconds = int(bucket.total_seconds())
    params = {"hours": hours, "bucket_seconds": seconds, "organisation_id": org_id, "now": now}
    with conn.work():
        clock = db.fetch_one(conn, "timeline_clock", **params)
        rows = db.fetch_all(conn, "timeline_counts", **params)
    start: datetime = clock["start"]
    until: datetime = clock["until"]
    buckets: list[Bucket] = []
    moment = start
    while moment < until:
        buckets.append(Bucket(moment))
        moment += bucket
    names: dict[uuid.UUID, str] = {}
    for row in rows:
        index = row["bucket"]
        if not 0 <= index < len(buckets):  # cannot happen: runs start in [now, until)
            continue
        target = buckets[index]
        target.runs += row["runs"]
        target.organisations[row["organisation_id"]] = row["runs"]
        names[row["organisation_id"]] = row["organisation_name"] or str(row["organisation_id"])
    found = Timeline(clock["now"], until, bucket, buckets, names)
    mean = found.mean
    for item in buckets:
        item.herd = mean > 0 and item.runs > HERD_FACTOR * mean
    return found
