"""Schedules as code: `apply -f FILE` brings the database to the file in one transaction and
`export` writes a file apply takes back unchanged; ownership marks keep --prune to what a
file made; invalid files write nothing; concurrent applies take turns."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schedctl import manifest
from schedctl.errors import InvalidInput
from schedctl.fields import DEFAULTS
from tests.helpers import (
    Cli,
    Conn,
    Result,
    SharedWorld,
    SharedWorlds,
    assert_error,
    fetch_one,
    fingerprint,
    finish_cli_process,
    make_org,
    make_scheduler,
    ok_json,
    run_cli,
    run_cli_subprocess,
    start_cli_process,
)

BASE = """\
schedulers:
  - domain: alpha.com
    every: 6h
  - domain: beta.org
    every: 12h
    include: [/blog]
"""

# The key the organisation lock of apply uses (sql/apply.sql, apply_lock_organisations).
APPLY_LOCK_KEY = 1399022672


def write(tmp_path: Path, text: str, name: str = "schedules.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def apply(cli: Cli, tmp_path: Path, text: str, *options: str) -> dict[str, Any]:
    """Apply `text` as a file with --json; the plan it printed."""
    plan: dict[str, Any] = ok_json(cli("apply", "-f", write(tmp_path, text), "--json", *options))
    return plan


def audit_count(conn: Conn) -> int:
    return int(
        fetch_one(conn, "SELECT count(*) FROM schedctl.audit WHERE scheduler_id IS NOT NULL")[0]
    )


def managed(conn: Conn) -> dict[str, str | None]:
    """Each scheduler's domain and its managed-by mark."""
    rows = conn.execute(
        "SELECT d.name, st.managed_by FROM schedulers s JOIN domains d ON d.id = s.domain_id"
        " LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id"
    ).fetchall()
    return dict(rows)


def counts(plan: dict[str, Any]) -> dict[str, int]:
    return {
        key: len(plan[key]) if isinstance(plan[key], list) else plan[key]
        for key in ("created", "changed", "adopted", "deleted", "kept", "unmanaged", "unchanged")
    }


def host_scheduler(conn: Conn, org_id: str, domain: str) -> str:
    """A scheduler the host's own code inserted (seed columns only, no settings row)."""
    row = fetch_one(
        conn,
        """
        WITH d AS (INSERT INTO domains (name) VALUES (%s)
                   ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id)
        INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours, next_run_at)
        SELECT d.id, %s, 24, now() + interval '1 hour' FROM d RETURNING id::text
        """,
        [domain, org_id],
    )
    return str(row[0])


# ---------------------------------------------------------------- apply, plan, audit


def test_apply_creates_and_a_second_apply_changes_nothing(
    cli: Cli, conn: Conn, tmp_path: Path
) -> None:
    org = make_org(cli, "Acme")
    plan = apply(cli, tmp_path, BASE)
    assert counts(plan) == dict(
        created=2, changed=0, adopted=0, deleted=0, kept=0, unmanaged=0, unchanged=0
    )
    assert plan["written"] and not plan["in_sync"]
    assert plan["organisations"] == [{"id": org, "name": "Acme"}]
    assert plan["created"][1]["domain"] == "beta.org"
    assert plan["created"][1]["fields"]["include"] == ["/blog"]
    assert managed(conn) == {"alpha.com": "apply", "beta.org": "apply"}
    assert {c["id"] for c in plan["created"]} == {
        str(row[0]) for row in conn.execute("SELECT id FROM schedulers")
    }
    audit = conn.execute(
        "SELECT action, source, actor, domain, changes FROM schedctl.audit"
        " WHERE scheduler_id IS NOT NULL ORDER BY id"
    ).fetchall()
    assert [(a, s, d) for a, s, _, d, _ in audit] == [
        ("create", "apply", "alpha.com"),
        ("create", "apply", "beta.org"),
    ]
    assert audit[1][4]["include_paths"] == [None, ["/blog"]]
    assert audit[0][2]  # the actor
    listed = ok_json(cli("list", "--json"))
    assert {s["domain"]: s["schedule_interval_hours"] for s in listed} == {
        "alpha.com": 6,
        "beta.org": 12,
    }

    before, entries = fingerprint(conn), audit_count(conn)
    again = apply(cli, tmp_path, BASE)
    assert again["in_sync"] and not again["written"]
    assert counts(again)["unchanged"] == 2
    assert fingerprint(conn) == before
    assert audit_count(conn) == entries


def test_text_plan_shows_each_change(cli: Cli, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    apply(cli, tmp_path, BASE + "  - domain: gone.com\n    every: 6h\n")
    changed = BASE.replace("every: 6h", "every: 12h\n    concurrency: 5")
    result = cli("apply", "-f", write(tmp_path, changed), "--prune")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "~ change alpha.com" in lines
    assert "    every: 6h → 12h" in lines
    assert "    concurrency: 20 → 5" in lines
    assert "- delete gone.com (no longer in the file)" in lines
    assert lines[-1].startswith("0 created, 1 changed, 0 adopted, 1 deleted, 1 unchanged")


def test_dry_run_plans_and_writes_nothing(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    before = fingerprint(conn)
    plan = apply(cli, tmp_path, BASE, "--dry-run")
    assert counts(plan)["created"] == 2
    assert plan["dry_run"] and not plan["written"]
    assert fingerprint(conn) == before


def test_check_exits_1_on_drift_and_0_in_sync(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    path = write(tmp_path, BASE)
    before = fingerprint(conn)
    drift = cli("apply", "-f", path, "--check", "--json")
    assert drift.code == 1
    assert json.loads(drift.stdout)["in_sync"] is False
    assert drift.stderr.startswith("error: the database differs from")
    assert fingerprint(conn) == before
    assert cli("apply", "-f", path).code == 0
    assert cli("apply", "-f", path, "--check").code == 0
    cli("update", "alpha.com", "--concurrency", "7")  # a change outside the file
    drifted = cli("apply", "-f", path, "--check", "--json")
    assert drifted.code == 1
    assert json.loads(drifted.stdout)["changed"][0]["changes"] == {"concurrency": [7, 20]}


# One change of each field of the file: (key, first value, second value, the column and
# the value it holds after the change, the audit action).
FIELD_CHANGES = [
    ("every", "6h", "24h", "schedule_interval_hours", 24, "update"),
    ("overlap", "replace", "skip", "overlap_policy", "skip", "update"),
    ("concurrency", "20", "55", "concurrency", 55, "update"),
    ("find-links", "true", "false", "find_links", False, "update"),
    ("max-pages", "0", "1000", "max_pages", 1000, "update"),
    ("include", "[/a]", "[/a, /b]", "include_paths", '["/a", "/b"]', "update"),
    ("exclude", "[]", "[/private]", "exclude_paths", '["/private"]', "update"),
    ("required-workers", "1", "4", "required_workers", 4, "update"),
    ("enabled", "true", "false", "is_enabled", False, "pause"),
    # 12:30 unquoted is a base-60 number to YAML 1.1: read as written
    ("at", "03:00", "12:30", "at_time", dt.time(12, 30), "update"),
    ("time-zone", "UTC", "Europe/London", "time_zone", "Europe/London", "update"),
    ("spread", "0s", "1h30m", "spread_seconds", 5400, "update"),
    ("catchup-window", "1h", "30m", "catchup_window_seconds", 1800, "update"),
]


@pytest.mark.parametrize(("key", "old", "new", "column", "stored", "action"), FIELD_CHANGES)
def test_a_change_of_each_field(
    cli: Cli,
    conn: Conn,
    tmp_path: Path,
    key: str,
    old: str,
    new: str,
    column: str,
    stored: Any,
    action: str,
) -> None:
    make_org(cli, "Acme")
    template = "schedulers:\n  - domain: alpha.com\n    every: 6h\n    {key}: {value}\n"
    if key == "every":
        template = "schedulers:\n  - domain: alpha.com\n    {key}: {value}\n"
    apply(cli, tmp_path, template.format(key=key, value=old))
    row_before = fetch_one(conn, "SELECT next_run_at, schedule_interval_hours FROM schedulers")
    entries = audit_count(conn)
    plan = apply(cli, tmp_path, template.format(key=key, value=new))
    assert counts(plan)["changed"] == 1
    change = plan["changed"][0]["changes"]
    assert list(change) == [key]
    assert change[key][1] == (new if key in ("every", "at") else yaml.safe_load(new))
    value = fetch_one(
        conn,
        f"SELECT {column} FROM schedulers s LEFT JOIN schedctl.scheduler_settings st"
        " ON st.scheduler_id = s.id",
    )[0]
    assert value == stored
    audit = conn.execute(
        "SELECT action, source FROM schedctl.audit WHERE scheduler_id IS NOT NULL"
        " ORDER BY id OFFSET %s",
        [entries],
    ).fetchall()
    assert audit == [(action, "apply")]
    if key == "every":  # the grid keeps its anchor, as update --every does
        next_run_at = fetch_one(conn, "SELECT next_run_at FROM schedulers")[0]
        assert (next_run_at - row_before[0]).total_seconds() == (24 - 6) * 3600


def test_pause_reason_and_resume(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    paused = "schedulers:\n  - domain: alpha.com\n    every: 6h\n    enabled: false\n"
    apply(cli, tmp_path, BASE)
    plan = apply(cli, tmp_path, paused + "    pause-reason: site migration\n")
    assert plan["changed"][0]["changes"] == {
        "enabled": [True, False],
        "pause-reason": [None, "site migration"],
    }
    shown = ok_json(cli("show", "alpha.com", "--json"))
    assert (shown["is_enabled"], shown["pause_reason"]) == (False, "site migration")
    plan = apply(cli, tmp_path, paused + "    pause-reason: still migrating\n")
    assert plan["changed"][0]["changes"] == {"pause-reason": ["site migration", "still migrating"]}
    apply(cli, tmp_path, BASE)
    shown = ok_json(cli("show", "alpha.com", "--json"))
    assert (shown["is_enabled"], shown["pause_reason"]) == (True, None)
    actions = conn.execute(
        "SELECT action, reason FROM schedctl.audit WHERE domain = 'alpha.com' ORDER BY id"
    ).fetchall()
    assert actions == [
        ("create", None),
        ("pause", "site migration"),
        ("pause", "still migrating"),
        ("resume", None),
    ]


# ---------------------------------------------------------------- ownership


def test_prune_deletes_only_managed_schedulers(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    org = make_org(cli, "Acme")
    apply(cli, tmp_path, BASE + "  - domain: gone.com\n    every: 6h\n")
    by_hand = make_scheduler(cli, "manual.com")["id"]
    by_host = host_scheduler(conn, org, "host.net")
    gone = fetch_one(
        conn,
        "SELECT s.id::text FROM schedulers s JOIN domains d ON d.id = s.domain_id"
        " WHERE d.name = 'gone.com'",
    )[0]
    ok_json(cli("run", "gone.com", "--json"))  # a job, which must outlive its scheduler

    kept = apply(cli, tmp_path, BASE)  # without --prune: listed as kept, not deleted
    assert counts(kept) == dict(
        created=0, changed=0, adopted=0, deleted=0, kept=1, unmanaged=2, unchanged=2
    )
    assert kept["in_sync"]
    assert "gone.com" in managed(conn)

    plan = apply(cli, tmp_path, BASE, "--prune")
    assert [d["domain"] for d in plan["deleted"]] == ["gone.com"]
    assert {u["id"] for u in plan["unmanaged"]} == {by_hand, by_host}
    assert managed(conn) == {
        "alpha.com": "apply",
        "beta.org": "apply",
        "manual.com": None,
        "host.net": None,
    }
    job = fetch_one(conn, "SELECT scheduler_id, source_detail FROM jobs")
    assert job == (None, gone)
    audit = fetch_one(
        conn,
        "SELECT action, source FROM schedctl.audit WHERE scheduler_id = %s"
        " ORDER BY id DESC LIMIT 1",
        [gone],
    )
    assert audit == ("delete", "apply")
    text = cli("apply", "-f", write(tmp_path, BASE), "--prune")
    assert "  leave manual.com: not in the file, not managed by apply" in text.stdout


def test_an_entry_adopts_an_unmanaged_scheduler(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    org = make_org(cli, "Acme")
    by_hand = make_scheduler(cli, "alpha.com", "--concurrency", "9")["id"]
    by_host = host_scheduler(conn, org, "Beta.ORG")  # as the host stored it
    plan = apply(cli, tmp_path, BASE.replace("alpha.com", "https://www.Alpha.com/"))
    assert counts(plan) == dict(
        created=0, changed=0, adopted=2, deleted=0, kept=0, unmanaged=0, unchanged=0
    )
    adopted = {a["id"]: a["changes"] for a in plan["adopted"]}
    assert adopted == {
        by_hand: {"concurrency": [9, 20]},
        by_host: {"every": ["24h", "12h"], "include": [[], ["/blog"]]},
    }
    assert managed(conn) == {"alpha.com": "apply", "Beta.ORG": "apply"}
    assert fetch_one(conn, "SELECT count(*) FROM domains")[0] == 2  # no new spelling added
    changes = fetch_one(
        conn,
        "SELECT changes FROM schedctl.audit WHERE scheduler_id = %s AND source = 'apply'",
        [by_hand],
    )[0]
    assert changes == {"concurrency": [9, 20], "managed_by": [None, "apply"]}
    text = cli("apply", "-f", write(tmp_path, BASE.replace("12h", "24h")))
    assert "~ change beta.org" not in text.stdout  # now managed: an ordinary change
    assert "~ change Beta.ORG" in text.stdout


# ---------------------------------------------------------------- export


def test_export_round_trip_changes_nothing(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    org = make_org(cli, "Acme")
    make_scheduler(
        cli,
        "alpha.com",
        "--every",
        "12h",
        "--concurrency",
        "3",
        "--no-find-links",
        "--max-pages",
        "2147483647",
        "--include",
        "/a,b",
        "--include",
        "/[x]",
        "--exclude",
        "/p#q",
        "--required-workers",
        "100",
        "--overlap",
        "allow",
    )
    make_scheduler(cli, "bücher.de", "--disabled")
    cli("pause", "bücher.de", "--reason", "yes: it's 'quoted' # not a comment")
    host_scheduler(conn, org, "Mixed-Case.com")
    exported = cli("export")
    assert exported.code == 0, exported.stderr
    assert exported.stdout == cli("export").stdout  # stable
    first = apply(cli, tmp_path, exported.stdout)
    assert counts(first)["adopted"] == 3
    assert all(a["changes"] == {} for a in first["adopted"])  # nothing but the mark

    before, entries = fingerprint(conn), audit_count(conn)
    managed_export = cli("export", "--managed").stdout
    assert managed_export == exported.stdout
    again = apply(cli, tmp_path, managed_export, "--prune")
    assert again["in_sync"] and counts(again)["unchanged"] == 3
    assert fingerprint(conn) == before and audit_count(conn) == entries
    assert "  - domain: xn--bcher-kva.de  # bücher.de" in exported.stdout.splitlines()


def test_round_trip_of_zoned_spread_and_windowed_schedulers(
    cli: Cli, conn: Conn, tmp_path: Path
) -> None:
    make_org(cli, "Acme")
    make_scheduler(
        cli,
        "zoned.com",
        *("--every", "24h", "--at", "03:00", "--time-zone", "Europe/London"),
        *("--spread", "1h", "--catchup-window", "2h"),
    )
    make_scheduler(cli, "kept-time.com", "--every", "48h", "--time-zone", "America/New_York")
    make_scheduler(cli, "spread.com", "--every", "6h", "--spread", "90m")
    make_scheduler(cli, "windowed.com", "--catchup-window", "90s")
    make_scheduler(cli, "paused.com", "--disabled", "--until", "2099-01-01T06:00:00Z")
    exported = cli("export").stdout
    for line in (
        "    at: 03:00",
        "    time-zone: Europe/London",
        "    spread: 1h",
        "    catchup-window: 2h",
        "    time-zone: America/New_York",
        "    spread: 1h30m",
        "    catchup-window: 1m30s",
        "    paused-until: '2099-01-01T06:00:00Z'",
    ):
        assert line in exported.splitlines(), (line, exported)
    rows_before = conn.execute(
        "SELECT s.id, s.next_run_at, st.at_time, st.grid_anchor FROM schedulers s"
        " JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id ORDER BY s.id"
    ).fetchall()
    first = apply(cli, tmp_path, exported)
    assert counts(first)["adopted"] == 5
    assert all(a["changes"] == {} for a in first["adopted"])
    rows_after = conn.execute(
        "SELECT s.id, s.next_run_at, st.at_time, st.grid_anchor FROM schedulers s"
        " JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id ORDER BY s.id"
    ).fetchall()
    assert rows_after == rows_before  # adopting moves no run and no grid
    before, entries = fingerprint(conn), audit_count(conn)
    again = apply(cli, tmp_path, cli("export").stdout, "--prune")
    assert again["in_sync"] and counts(again)["unchanged"] == 5
    assert fingerprint(conn) == before and audit_count(conn) == entries


# Options of `create` and the same schedule as file keys.
SAME_SCHEDULE = [
    (
        ("--every", "24h", "--at", "03:00", "--time-zone", "America/New_York"),
        "every: 24h\n    at: 03:00\n    time-zone: America/New_York\n",
    ),
    (
        ("--every", "48h", "--at", "23:30", "--time-zone", "Australia/Sydney"),
        "every: 48h\n    at: '23:30'\n    time-zone: Australia/Sydney\n",
    ),
    (
        ("--every", "12h", "--at", "02:30", "--time-zone", "Europe/London", "--spread", "2h"),
        "every: 12h\n    at: 02:30\n    time-zone: Europe/London\n    spread: 2h\n",
    ),
    (
        ("--every", "6h", "--spread", "3h", "--catchup-window", "10m"),
        "every: 6h\n    spread: 3h\n    catchup-window: 10m\n",
    ),
]


@pytest.mark.parametrize(("options", "keys"), SAME_SCHEDULE)
def test_a_created_schedule_runs_when_create_would_run_it(
    cli: Cli, conn: Conn, tmp_path: Path, options: tuple[str, ...], keys: str
) -> None:
    make_org(cli, "Acme")
    by_command = make_scheduler(cli, "command.com", *options)
    apply(cli, tmp_path, f"schedulers:\n  - domain: file.com\n    {keys}")
    by_file = ok_json(cli("show", "file.com", "--json"))
    for doc in (by_command, by_file):
        doc["grid"] = fetch_one(
            conn,
            "SELECT grid_anchor FROM schedctl.scheduler_settings WHERE scheduler_id = %s",
            [doc["id"]],
        )[0]
        # the run without the scheduler's own offset in its spread window
        doc["slot"] = dt.datetime.fromisoformat(doc["next_run_at"]) - dt.timedelta(
            seconds=doc["spread_offset_seconds"]
        )
    same = ("at", "time_zone", "spread_seconds", "catchup_window_seconds")
    assert {k: by_file[k] for k in same} == {k: by_command[k] for k in same}
    assert (by_file["grid"] is None) == (by_command["grid"] is None)
    if by_command["at"] is not None:
        # A wall-clock grid: the same wall-clock time, to the microsecond. Which grid time
        # comes first depends on each scheduler's offset (a hash of its id) when the test runs
        # inside the spread window after one: the two may be one interval apart.
        zone = ZoneInfo(by_command["time_zone"])
        hours = by_command["schedule_interval_hours"]
        walls = {
            (t.hour % hours, t.minute, t.second, t.microsecond)
            for t in (by_file["slot"].astimezone(zone), by_command["slot"].astimezone(zone))
        }
        assert len(walls) == 1, walls
        # the grids' anchors (local wall-clock times) likewise
        anchors = {
            (t.hour % hours, t.minute, t.second) for t in (by_file["grid"], by_command["grid"])
        }
        assert len(anchors) == 1, anchors
        assert abs(by_file["slot"] - by_command["slot"]) <= dt.timedelta(hours=hours + 1)
    else:  # the elapsed-time grid: one interval after each was made
        assert abs(by_file["slot"] - by_command["slot"]) < dt.timedelta(minutes=1)
    audit = fetch_one(
        conn, "SELECT changes FROM schedctl.audit WHERE domain = 'file.com' AND action = 'create'"
    )[0]
    assert audit["next_run_at"] == [None, by_file["next_run_at"]]
    assert "time_zone" not in audit or audit["time_zone"][1] != "UTC"


def test_a_changed_schedule_moves_as_update_moves_it(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    entry = "schedulers:\n  - domain: {domain}\n    every: 24h\n    at: 03:00\n{extra}"
    zone = "    time-zone: Asia/Kolkata\n"
    apply(cli, tmp_path, entry.format(domain="file.com", extra=""))
    make_scheduler(cli, "command.com", "--every", "24h", "--at", "03:00")
    plan = apply(cli, tmp_path, entry.format(domain="file.com", extra=zone))
    assert plan["changed"][0]["changes"] == {"time-zone": ["UTC", "Asia/Kolkata"]}
    cli("update", "command.com", "--time-zone", "Asia/Kolkata")
    by_file = ok_json(cli("show", "file.com", "--json"))
    by_command = ok_json(cli("show", "command.com", "--json"))
    assert by_file["next_run_at"] == by_command["next_run_at"]
    assert by_file["at"] == by_command["at"] == "03:00"
    text = cli(
        "apply", "-f", write(tmp_path, entry.format(domain="file.com", extra="")), "--dry-run"
    )
    assert "    time-zone: Asia/Kolkata → UTC" in text.stdout
    changes = fetch_one(
        conn,
        "SELECT changes FROM schedctl.audit WHERE domain = 'file.com' AND action = 'update'",
    )[0]
    assert changes["time_zone"] == ["UTC", "Asia/Kolkata"]
    assert changes["next_run_at"][1] == by_file["next_run_at"]


def test_a_changed_interval_never_moves_the_next_run_before_creation(
    cli: Cli, conn: Conn, tmp_path: Path
) -> None:
    make_org(cli, "Acme")
    start = fetch_one(
        conn, "SELECT to_char(now() + interval '1 day', 'YYYY-MM-DD\"T\"HH24:MI:SSOF')"
    )
    for domain in ("file.com", "command.com"):
        make_scheduler(cli, domain, "--every", "48h", "--start-at", f"{start[0]}:00")
    first = ok_json(cli("show", "file.com", "--json"))["next_run_at"]
    plan = apply(cli, tmp_path, "schedulers:\n  - domain: file.com\n    every: 6h\n")
    assert plan["adopted"][0]["changes"] == {"every": ["48h", "6h"]}
    cli("update", "command.com", "--every", "6h")
    # 48 h before the next run is before the scheduler existed: the next run stays
    assert ok_json(cli("show", "file.com", "--json"))["next_run_at"] == first
    assert ok_json(cli("show", "command.com", "--json"))["next_run_at"] == first


def test_a_pause_whose_end_has_passed_is_over(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    paused = "schedulers:\n  - domain: a.com\n    every: 6h\n    enabled: false\n"
    plan = apply(cli, tmp_path, paused + "    paused-until: 2099-01-01T06:00:00+02:00\n")
    assert plan["created"][0]["fields"]["paused-until"] == "2099-01-01T04:00:00Z"
    shown = ok_json(cli("show", "a.com", "--json"))
    assert (shown["is_enabled"], shown["paused_until"]) == (False, "2099-01-01T04:00:00Z")
    # a time already past: the pause is over, as a tick would have ended it
    plan = apply(cli, tmp_path, paused + "    paused-until: 2001-01-01T00:00:00Z\n")
    assert plan["changed"][0]["changes"] == {
        "enabled": [False, True],
        "paused-until": ["2099-01-01T04:00:00Z", None],
    }
    action = fetch_one(
        conn, "SELECT action FROM schedctl.audit WHERE domain = 'a.com' ORDER BY id DESC LIMIT 1"
    )[0]
    assert action == "resume"
    assert apply(cli, tmp_path, paused + "    paused-until: 2001-01-01T00:00:00Z\n")["in_sync"]


def test_export_is_sorted_and_managed_filters(cli: Cli, tmp_path: Path) -> None:
    acme = make_org(cli, "Acme")
    other = make_org(cli, "Other")
    for domain in ("zeta.com", "alpha.com"):
        cli("create", domain, "--every", "6h", "--org", "Acme")
    apply(cli, tmp_path, "organisation: Other\nschedulers:\n  - domain: mid.com\n    every: 6h\n")
    text = cli("export", "--all-orgs").stdout
    assert text.index("alpha.com") < text.index("zeta.com") < text.index("mid.com")
    plan = yaml.safe_load(text)
    assert [(e["organisation"], e["domain"]) for e in plan["schedulers"]] == [
        (acme, "alpha.com"),
        (acme, "zeta.com"),
        (other, "mid.com"),
    ]
    assert yaml.safe_load(cli("export", "--all-orgs", "--managed").stdout)["schedulers"] == [
        {"domain": "mid.com", "organisation": other, "every": "6h"}
    ]
    empty = cli("export", "--org", "Other", "--managed").stdout
    assert yaml.safe_load(empty)["organisation"] == other
    nothing = cli("export", "--org", "Acme", "--managed").stdout
    assert yaml.safe_load(nothing) == {"organisation": acme, "schedulers": []}
    assert assert_error(cli("export", "--org", "Acme", "--all-orgs"), 2)


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    reason=st.text(
        st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=40,
    ).filter(lambda text: text.strip() == text and text.strip() != ""),
    paths=st.lists(
        st.text(
            st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Zs")),
            max_size=12,
        )
        .map(lambda text: "/" + text)
        .filter(lambda text: not any(c.isspace() for c in text)),
        max_size=3,
        unique=True,
    ),
)
def test_export_writes_any_value_so_it_reads_back(reason: str, paths: list[str]) -> None:
    scheduler = manifest.ExportedScheduler(
        "00000000-0000-4000-8000-000000000001",
        "alpha.com",
        dict(DEFAULTS)
        | {
            "schedule_interval_hours": 6,
            "is_enabled": False,
            "pause_reason": reason,
            "include_paths": paths,
        },
    )
    text = manifest.dump(
        [scheduler], {scheduler.organisation_id: "A # name"}, per_entry_organisation=False
    )
    (entry,) = manifest.parse(text, "x").entries
    assert entry.values == scheduler.values


# ---------------------------------------------------------------- invalid files


INVALID_FILES = {
    "not yaml": ("schedulers: [\n", 2),
    "tab indent": ("schedulers:\n\t- domain: a.com\n", 2),
    "two documents": ("schedulers: []\n---\nschedulers: []\n", 2),
    "a list at the top": ("- domain: alpha.com\n  every: 6h\n", None),
    "no schedulers key": ("organisation: Acme\n", 1),
    "schedulers not a list": ("schedulers: alpha.com\n", 1),
    "unknown top key": ("schedulers: []\nschedule: []\n", 2),
    "entry not a mapping": ("schedulers:\n  - alpha.com\n", 2),
    "no domain": ("schedulers:\n  - every: 6h\n", 2),
    "no every": ("schedulers:\n  - domain: alpha.com\n", 2),
    "bad domain": ("schedulers:\n  - domain: localhost\n    every: 6h\n", 2),
    "bad every": ("schedulers:\n  - domain: alpha.com\n    every: 5h\n", 3),
    "every a boolean": ("schedulers:\n  - domain: alpha.com\n    every: yes\n", 3),
    "concurrency out of range": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    concurrency: 101\n",
        4,
    ),
    "concurrency as text": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    concurrency: '5'\n",
        4,
    ),
    "max-pages overflow": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    max-pages: 2147483648\n",
        4,
    ),
    "workers zero": ("schedulers:\n  - domain: a.com\n    every: 6h\n    required-workers: 0\n", 4),
    "find-links text": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    find-links: maybe\n",
        4,
    ),
    "path without slash": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    include: [blog]\n",
        4,
    ),
    "path with space": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    exclude: ['/a b']\n",
        4,
    ),
    "paths not a list": ("schedulers:\n  - domain: a.com\n    every: 6h\n    include: /blog\n", 4),
    "bad overlap": ("schedulers:\n  - domain: a.com\n    every: 6h\n    overlap: queue\n", 4),
    "reason while enabled": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    pause-reason: why\n",
        4,
    ),
    "reason too long": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    enabled: false\n"
        f"    pause-reason: {'x' * 501}\n",
        5,
    ),
    "unknown field": ("schedulers:\n  - domain: a.com\n    every: 6h\n    colour: red\n", 4),
    "duplicate key": ("schedulers:\n  - domain: a.com\n    every: 6h\n    every: 12h\n", 4),
    "duplicate domain": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n  - domain: WWW.A.com\n    every: 6h\n",
        4,
    ),
    "a python tag": ("schedulers:\n  - domain: !!python/name:os.system a.com\n    every: 6h\n", 2),
    "a timestamp": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    pause-reason: 2024-01-01\n",
        4,
    ),
    "nested mapping": ("schedulers:\n  - domain: {name: a.com}\n    every: 6h\n", 2),
    "empty organisation": ("organisation: ''\nschedulers: []\n", 1),
    "zone the server does not know": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    time-zone: Mars/Olympus_Mons\n",
        4,
    ),
    "zone not a zone name": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    time-zone: ../etc/passwd\n",
        4,
    ),
    "at not HH:MM": ("schedulers:\n  - domain: a.com\n    every: 6h\n    at: 24:00\n", 4),
    "at a number": ("schedulers:\n  - domain: a.com\n    every: 6h\n    at: 3\n", 4),
    "spread longer than the interval": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    spread: 6h1s\n",
        4,
    ),
    "window under a minute": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    catchup-window: 59s\n",
        4,
    ),
    "paused-until a duration": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    enabled: false\n    paused-until: 2h\n",
        5,
    ),
    "paused-until while enabled": (
        "schedulers:\n  - domain: a.com\n    every: 6h\n    paused-until: 2099-01-01T00:00:00Z\n",
        4,
    ),
    "empty file": ("", None),
}


def _applied_and_manual(cli: Cli, conn: Conn, folder: Path) -> None:
    make_org(cli, "Acme")
    apply(cli, folder, BASE)
    make_scheduler(cli, "manual.com")


@pytest.fixture(scope="module")
def applied_world(
    shared_worlds: SharedWorlds, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedWorld]:
    """BASE applied and one scheduler made by a command, shared by the invalid files (none
    of which may change anything)."""
    with shared_worlds(tmp_path_factory.mktemp("applied"), _applied_and_manual) as world:
        yield world


@pytest.mark.parametrize("name", sorted(INVALID_FILES))
def test_invalid_files_write_nothing(
    applied_world: SharedWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    cli = applied_world.cli_for(monkeypatch)
    text, line = INVALID_FILES[name]
    with psycopg.connect(applied_world.url, autocommit=True) as conn:
        before = fingerprint(conn)
        for extra in ([], ["--prune"], ["--dry-run"], ["--check"]):
            message = assert_error(cli("apply", "-f", write(tmp_path, text, "bad.yaml"), *extra), 2)
            assert "bad.yaml" in message
            if line is not None:
                assert f"bad.yaml:{line}:" in message, message
        assert fingerprint(conn) == before


def test_every_problem_is_named_with_its_line(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    text = (
        "schedulers:\n"  # 1
        "  - domain: alpha.com\n"  # 2
        "    every: 6h\n"  # 3
        "  - domain: localhost\n"  # 4
        "    every: 7h\n"  # 5
        "  - domain: beta.org\n"  # 6
        "    every: 6h\n"  # 7
        "    concurrency: 0\n"  # 8
        "    bogus: 1\n"  # 9
    )
    before = fingerprint(conn)
    message = assert_error(cli("apply", "-f", write(tmp_path, text)), 2)
    assert message.startswith(f"{tmp_path / 'schedules.yaml'}: 4 problems, nothing applied")
    for line, words in [
        (4, "localhost"),
        (5, "every must be one of"),
        (8, "concurrency"),
        (9, "bogus"),
    ]:
        assert f"schedules.yaml:{line}: " in message and words in message, (line, message)
    assert "schedules.yaml:2" not in message
    assert fingerprint(conn) == before


def test_files_that_cannot_be_read(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    before = fingerprint(conn)
    assert "cannot read" in assert_error(cli("apply", "-f", str(tmp_path / "nope.yaml")), 2)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"schedulers: [\xff\xfe]\n")
    assert "not UTF-8" in assert_error(cli("apply", "-f", str(binary)), 2)
    assert_error(cli("apply"), 2)  # -f is required
    assert fingerprint(conn) == before


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _refused(text: str) -> bool:
    try:
        manifest.parse(text, "x")
    except InvalidInput:
        return True
    return False


def _check_refused(cli: Cli, conn: Conn, tmp_path: Path, text: str) -> None:
    before = fingerprint(conn)
    message = assert_error(cli("apply", "-f", write(tmp_path, text, "h.yaml"), "--prune"), 2)
    assert "h.yaml" in message
    assert fingerprint(conn) == before


@pytest.fixture
def acme_with_schedulers(cli: Cli, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    apply(cli, tmp_path, BASE)


@HYPOTHESIS
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_refused_or_read(
    cli: Cli, conn: Conn, tmp_path: Path, acme_with_schedulers: None, text: str
) -> None:
    assume(_refused(text))  # parse raised nothing but InvalidInput
    _check_refused(cli, conn, tmp_path, text)


@HYPOTHESIS
@given(
    document=YAML_VALUES,
    field=st.sampled_from([*manifest.ENTRY_KEYS, "other"]),
    value=YAML_VALUES,
)
def test_generated_yaml_with_a_wrong_value_is_refused(
    cli: Cli,
    conn: Conn,
    tmp_path: Path,
    acme_with_schedulers: None,
    document: Any,
    field: str,
    value: Any,
) -> None:
    # A whole generated document, and a valid file with one key set to a generated value.
    for text in (
        yaml.safe_dump(document, allow_unicode=True),
        yaml.safe_dump(
            {"schedulers": [{"domain": "alpha.com", "every": "6h"} | {field: value}]},
            allow_unicode=True,
        ),
    ):
        if _refused(text):
            _check_refused(cli, conn, tmp_path, text)


# ---------------------------------------------------------------- organisations


def test_a_file_for_one_organisation_cannot_touch_another(
    cli: Cli, conn: Conn, tmp_path: Path
) -> None:
    acme = make_org(cli, "Acme")
    other = make_org(cli, "Other")
    apply(cli, tmp_path, "organisation: Other\n" + BASE)
    theirs = conn.execute(
        "SELECT s.*, st.* FROM schedulers s JOIN schedctl.scheduler_settings st"
        " ON st.scheduler_id = s.id WHERE s.organisation_id = %s ORDER BY s.id",
        [other],
    ).fetchall()
    plan = apply(cli, tmp_path, BASE.replace("6h", "48h"), "--org", "Acme", "--prune")
    assert counts(plan)["created"] == 2  # the same domains, Acme's own schedulers
    assert plan["organisations"] == [{"id": acme, "name": "Acme"}]
    pruned = apply(cli, tmp_path, "schedulers: []\n", "--org", "Acme", "--prune")
    assert counts(pruned)["deleted"] == 2
    assert (
        conn.execute(
            "SELECT s.*, st.* FROM schedulers s JOIN schedctl.scheduler_settings st"
            " ON st.scheduler_id = s.id WHERE s.organisation_id = %s ORDER BY s.id",
            [other],
        ).fetchall()
        == theirs
    )
    before = fingerprint(conn)
    # --org pins the organisation: a file or an entry naming another one is refused.
    for text in (
        "organisation: Other\nschedulers: []\n",
        "schedulers:\n  - domain: a.com\n    organisation: Other\n    every: 6h\n",
        f"schedulers:\n  - domain: a.com\n    organisation: {other}\n    every: 6h\n",
    ):
        assert "--org" in assert_error(
            cli("apply", "-f", write(tmp_path, text), "--org", "Acme", "--prune"), 2
        )
    message = assert_error(
        cli("apply", "-f", write(tmp_path, "organisation: Nobody\nschedulers: []\n")), 3
    )
    assert "Nobody" in message
    assert fingerprint(conn) == before


def test_one_file_for_several_organisations(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    acme = make_org(cli, "Acme")
    other = make_org(cli, "Other")
    text = (
        "organisation: Acme\nschedulers:\n"
        "  - domain: alpha.com\n    every: 6h\n"
        f"  - domain: alpha.com\n    organisation: {other}\n    every: 12h\n"
    )
    plan = apply(cli, tmp_path, text)
    assert {(c["organisation_id"], c["domain"]) for c in plan["created"]} == {
        (acme, "alpha.com"),
        (other, "alpha.com"),
    }
    exported = cli("export", "--all-orgs").stdout
    assert apply(cli, tmp_path, exported, "--prune")["in_sync"]
    duplicate = text + "  - domain: ALPHA.com\n    organisation: Acme\n    every: 6h\n"
    assert "listed twice" in assert_error(cli("apply", "-f", write(tmp_path, duplicate)), 2)


# ---------------------------------------------------------------- processes, size


def test_apply_reads_stdin(cli: Cli, database_url: str, conn: Conn) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url}
    make_org(cli, "Acme")
    result = run_cli_subprocess(["apply", "-f", "-", "--json"], env, stdin=BASE)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["source"] == "<stdin>"
    assert set(managed(conn)) == {"alpha.com", "beta.org"}
    bad = run_cli_subprocess(["apply", "-f", "-"], env, stdin="schedulers: [\n")
    assert bad.code == 2 and bad.stderr.startswith("error: <stdin>: 1 problem")


def _hold_apply_lock(database_url: str, org_id: str) -> psycopg.Connection[Any]:
    holder = psycopg.connect(database_url)
    holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [APPLY_LOCK_KEY, org_id])
    return holder


def _waiting_for_advisory_lock(conn: Conn) -> int:
    return int(
        fetch_one(
            conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )[0]
    )


@pytest.mark.slow
def test_concurrent_applies_take_turns(
    cli: Cli, database_url: str, conn: Conn, tmp_path: Path
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url}
    make_org(cli, "Acme")
    org = str(fetch_one(conn, "SELECT id FROM organisations")[0])
    files = {}
    for name in ("a", "b"):
        entries = "".join(f"  - domain: {name}-{i}.com\n    every: 6h\n" for i in range(200))
        files[name] = write(tmp_path, "schedulers:\n" + entries, f"{name}.yaml")
    # Both start while a third session holds the organisation's lock, so they overlap for
    # certain; then they must run one after the other.
    holder = _hold_apply_lock(database_url, org)
    procs = [
        start_cli_process(["apply", "-f", files[name], "--prune", "--json"], env)
        for name in ("a", "b")
    ]
    for _ in range(600):
        if _waiting_for_advisory_lock(conn) == 2:
            break
        time.sleep(0.05)
    assert _waiting_for_advisory_lock(conn) == 2
    holder.rollback()
    holder.close()
    results = [finish_cli_process(proc) for proc in procs]
    assert [r.code for r in results] == [0, 0], [r.stderr for r in results]
    plans = [json.loads(r.stdout) for r in results]
    domains = set(managed(conn))
    # Never a mix: the database holds exactly the file that ran second.
    assert domains in ({f"a-{i}.com" for i in range(200)}, {f"b-{i}.com" for i in range(200)})
    second = plans[0] if next(iter(domains)).startswith("a") else plans[1]
    assert (len(second["created"]), len(second["deleted"])) == (200, 200)


def test_an_apply_that_cannot_get_the_lock_exits_4(
    database_url: str, cli: Cli, conn: Conn, tmp_path: Path
) -> None:
    org = make_org(cli, "Acme")
    holder = _hold_apply_lock(database_url, org)
    try:
        before = fingerprint(conn)
        result = cli("apply", "-f", write(tmp_path, BASE), env={"SCHEDCTL_LOCK_TIMEOUT": "0.2"})
        assert "another apply" in assert_error(result, 4)
        assert fingerprint(conn) == before
    finally:
        holder.rollback()
        holder.close()


def _big_file(n: int, changed_every: int | None = None) -> str:
    lines = ["organisation: Acme", "schedulers:"]
    for i in range(n):
        lines += [f"  - domain: site-{i}.com", f"    every: {(6, 12, 24, 48)[i % 4]}h"]
        if changed_every and i % changed_every == 0:
            lines.append("    concurrency: 21")
        if i % 3 == 0:
            lines.append(f"    include: [/p{i}]")
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_a_file_over_ten_thousand_entries(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    n = 10_050
    plan = apply(cli, tmp_path, _big_file(n))
    assert len(plan["created"]) == n
    assert (
        fetch_one(
            conn, "SELECT count(*) FROM schedctl.scheduler_settings WHERE managed_by = 'apply'"
        )[0]
        == n
    )
    assert (
        fetch_one(conn, "SELECT count(*) FROM schedctl.audit WHERE scheduler_id IS NOT NULL")[0]
        == n
    )
    entries = audit_count(conn)
    again = apply(cli, tmp_path, _big_file(n, changed_every=100))
    assert counts(again) == dict(
        created=0, changed=101, adopted=0, deleted=0, kept=0, unmanaged=0, unchanged=n - 101
    )
    assert all(c["changes"] == {"concurrency": [20, 21]} for c in again["changed"])
    assert audit_count(conn) == entries + 101
    assert fetch_one(conn, "SELECT count(*) FROM schedulers WHERE concurrency = 21")[0] == 101
    assert apply(cli, tmp_path, cli("export").stdout)["in_sync"]


def test_the_readme_example_file_applies(cli: Cli, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("```yaml\n# schedules.yaml\n") + len("```yaml\n")
    text = readme[start : readme.index("```", start)]
    make_org(cli, "Acme")
    make_org(cli, "Other")
    plan = apply(cli, tmp_path, text)
    assert [(c["domain"], len(c["fields"])) for c in plan["created"]] == [
        ("example.com", 15),
        ("shop.example.org", 15),
        ("blog.example.net", 15),
    ]
    assert apply(cli, tmp_path, text)["in_sync"]


def test_statements_sent_do_not_grow_with_the_file(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import schedctl.db
    from schedctl.sql import query as real_query

    make_org(cli, "Acme")
    sent: list[str] = []

    def counting(name: str) -> str:
        sent.append(name)
        return real_query(name)

    monkeypatch.setattr(schedctl.db, "query", counting)
    per_size: dict[int, tuple[list[str], list[str]]] = {}
    for n in (5, 200):
        first = "".join(f"  - domain: n{n}-{i}.com\n    every: 6h\n" for i in range(n))
        apply(cli, tmp_path, f"schedulers:\n  - domain: old{n}.com\n    every: 6h\n", "--prune")
        sent.clear()
        apply(cli, tmp_path, "schedulers:\n" + first, "--prune")  # creates n, deletes one
        created = list(sent)
        sent.clear()
        apply(cli, tmp_path, "schedulers:\n" + first.replace("6h", "12h"))  # changes n
        per_size[n] = (created, list(sent))
    assert per_size[5] == per_size[200]
    assert "schedulers_insert" in per_size[5][0]
    assert "schedulers_update" in per_size[5][1]


def test_a_database_without_the_ownership_column_says_to_migrate(
    cli: Cli, conn: Conn, tmp_path: Path
) -> None:
    make_org(cli, "Acme")
    conn.execute("ALTER TABLE schedctl.scheduler_settings DROP COLUMN managed_by")
    before = fingerprint(conn)
    for args in (["apply", "-f", write(tmp_path, BASE)], ["export"]):
        assert "schedctl migrate" in assert_error(cli(*args), 5)
    assert fingerprint(conn) == before


BROKEN_FILE = (
    "schedulers:\n"  # 1
    "  - domain: localhost\n"  # 2
    "    every: 7h\n"  # 3
)


def _check_broken_file_refused(result: Result, path: str) -> None:
    message = assert_error(result, 2)
    assert message.startswith(f"{path}: 2 problems, nothing applied"), message
    assert f"{path}:2: " in message and "localhost" in message, message
    assert f"{path}:3: " in message and "every must be one of" in message, message


def test_a_broken_file_is_exit_2_with_its_problems_while_the_database_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is checked before connecting: its problems, not the connection's."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/x")
    monkeypatch.setenv("SCHEDCTL_CONNECT_TIMEOUT", "2")
    path = write(tmp_path, BROKEN_FILE)
    for extra in ([], ["--dry-run"], ["--check"], ["--json"]):
        _check_broken_file_refused(run_cli(["apply", "-f", path, *extra]), path)


def test_a_broken_file_starts_no_embedded_server(tmp_path: Path) -> None:
    """With no database configured, a broken file is refused before the embedded server
    would start: exit 2, no notice, no data directory made."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="schedctl-test-apply-"))  # not under pytest's folder
    data_dir = base / "schedctl-data"
    path = write(tmp_path, BROKEN_FILE)
    try:
        result = run_cli_subprocess(
            ["apply", "-f", path], {"SCHEDCTL_DATA_DIR": str(data_dir)}, timeout=300
        )
        _check_broken_file_refused(result, path)
        assert not data_dir.exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)
