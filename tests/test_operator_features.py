"""Operator features: pause/resume, run now, next runs, dry run, status, audit trail and
quiet tick output, each through the command line against a real database."""

from __future__ import annotations

import itertools
import json
import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import (
    Cli,
    Conn,
    assert_error,
    fetch_one,
    fingerprint,
    make_due,
    make_org,
    make_scheduler,
    parse_time,
    run_cli_subprocess,
)
from tests.helpers import insert_active_job as _insert_active_job
from tests.helpers import ok_json as _json
from tests.helpers import scheduler_row as _scheduler_row

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
HEAD_MIGRATION = sorted(
    p.stem
    for p in (Path(__file__).resolve().parents[1] / "migrations").glob("*.sql")
    if not p.stem.endswith(".rollback")
)[-1]


def _create(cli: Cli, domain: str, *options: str, actor: str) -> dict[str, Any]:
    """make_scheduler as `actor` (SCHEDCTL_ACTOR stays set for the rest of the test)."""
    doc: dict[str, Any] = _json(
        cli("create", domain, "--every", "6h", *options, "--json", env={"SCHEDCTL_ACTOR": actor})
    )
    return doc


def _audit(conn: Conn, scheduler_id: str) -> list[tuple[str, str, dict[str, Any], str | None]]:
    return conn.execute(
        "SELECT action, actor, changes, reason FROM schedctl.audit "
        "WHERE scheduler_id = %s ORDER BY id",
        [scheduler_id],
    ).fetchall()


def _refuse_jobs_of(conn: Conn, domain: str) -> None:
    """A host constraint that refuses new jobs of one domain (tick then fails on it)."""
    conn.execute(
        f"ALTER TABLE jobs ADD CONSTRAINT host_refuses_domain CHECK (domain_id <> "
        f"{_domain_id(conn, domain)}) NOT VALID"
    )


def _domain_id(conn: Conn, domain: str) -> int:
    row = conn.execute("SELECT id FROM domains WHERE name = %s", [domain]).fetchone()
    assert row is not None
    value: int = row[0]
    return value


# ---------------------------------------------------------------- 1. pause and resume


def test_pause_keeps_the_reason_and_show_and_list_display_it(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    paused = _json(cli("pause", "example.com", "--reason", "site migration [/blog]", "--json"))
    assert paused["id"] == doc["id"]
    assert (paused["is_enabled"], paused["pause_reason"]) == (False, "site migration [/blog]")
    assert paused["next_run_at"] == doc["next_run_at"]
    row = _scheduler_row(conn, doc["id"])
    assert (row["is_enabled"], row["pause_reason"]) == (False, "site migration [/blog]")

    assert _json(cli("show", doc["id"], "--json"))["pause_reason"] == "site migration [/blog]"
    assert [s["pause_reason"] for s in _json(cli("list", "--json"))] == ["site migration [/blog]"]
    shown = cli("show", "example.com")
    assert shown.code == 0
    assert re.search(r"^status +paused: site migration \[/blog\]$", shown.stdout, re.M)
    listed = cli("list")
    assert listed.code == 0
    assert listed.stdout.splitlines()[1].split("\t")[3] == "paused: site migration [/blog]"
    assert cli("list", "--disabled", "--json").stdout.count(doc["id"]) == 1
    assert _json(cli("list", "--enabled", "--json")) == []


def test_pause_without_a_reason_and_the_json_of_an_enabled_scheduler(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    assert doc["pause_reason"] is None
    paused = _json(cli("pause", "example.com", "--json"))
    assert (paused["is_enabled"], paused["pause_reason"]) == (False, None)
    assert cli("list").stdout.splitlines()[1].split("\t")[3] == "paused"


def test_resume_enables_and_clears_the_reason_keeping_next_run(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    cli("pause", "example.com", "--reason", "billing hold")
    resumed = _json(cli("resume", "example.com", "--json"))
    assert (resumed["is_enabled"], resumed["pause_reason"]) == (True, None)
    assert resumed["next_run_at"] == doc["next_run_at"]
    row = _scheduler_row(conn, doc["id"])
    assert (row["is_enabled"], row["pause_reason"]) == (True, None)


def test_a_slot_missed_while_paused_is_due_at_once_then_back_on_the_grid(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", "6h")
    cli("pause", "example.com", "--reason", "outage")
    slot = make_due(conn, doc["id"], "13 hours")  # two grid times passed while paused

    idle = _json(cli("tick", "--json"))
    assert (idle["due"], idle["created"]) == (0, 0)
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    assert _scheduler_row(conn, doc["id"])["next_run_at"] == slot

    cli("resume", "example.com")
    assert [s["id"] for s in _json(cli("list", "--due", "--json"))] == [doc["id"]]
    summary = _json(cli("tick", "--json"))
    assert (summary["due"], summary["created"], summary["missed"]) == (1, 1, 2)
    assert parse_time(summary["jobs"][0]["slot"]) == slot
    assert _scheduler_row(conn, doc["id"])["next_run_at"] == slot + timedelta(hours=18)
    assert conn.execute(
        "SELECT count(*), min(ss.slot) FROM jobs j"
        " JOIN schedctl.served_slots ss ON ss.job_id = j.id WHERE j.scheduler_id = %s",
        [doc["id"]],
    ).fetchone() == (1, slot)
    again = _json(cli("tick", "--json"))
    assert (again["due"], again["created"]) == (0, 0)


def test_update_enable_also_clears_the_pause_reason(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    cli("pause", "example.com", "--reason", "hold")
    _json(cli("update", "example.com", "--enable", "--json"))
    row = _scheduler_row(conn, doc["id"])
    assert (row["is_enabled"], row["pause_reason"]) == (True, None)


@pytest.mark.parametrize("reason", ["x" * 501, "two\nlines", "bell\x07"])
def test_pause_refuses_a_bad_reason_and_writes_nothing(cli: Cli, conn: Conn, reason: str) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    before = fingerprint(conn)
    assert "--reason" in assert_error(cli("pause", "example.com", "--reason", reason), 2)
    assert fingerprint(conn) == before


def test_pause_resume_and_run_of_an_unknown_scheduler_are_not_found(cli: Cli) -> None:
    make_org(cli, "Acme")
    for command in ("pause", "resume", "run"):
        assert "no scheduler" in assert_error(cli(command, "nowhere.com", "--json"), 3)


# ---------------------------------------------------------------- 2. run now


def test_run_creates_a_manual_job_with_the_template_and_keeps_next_run(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--concurrency",
        "7",
        "--no-find-links",
        "--max-pages",
        "250",
        "--include",
        "/blog",
        "--exclude",
        "/blog/drafts",
        "--required-workers",
        "3",
    )
    before = _scheduler_row(conn, doc["id"])
    job = _json(cli("run", "example.com", "--json"))
    assert (job["scheduler_id"], job["domain"], job["status"]) == (
        doc["id"],
        "example.com",
        "pending",
    )
    assert job["progress"] == 0
    assert RFC3339_UTC.match(job["created_at"])
    row = conn.execute(
        """
        SELECT organisation_id::text, domain_id, concurrency, find_links, max_pages,
               include_paths, exclude_paths, required_workers, source_type, source_detail,
               source_info, scheduler_id::text,
               (SELECT slot FROM schedctl.served_slots WHERE job_id = jobs.id)
        FROM jobs WHERE id = %s
        """,
        [job["id"]],
    ).fetchone()
    assert row == (
        doc["organisation_id"],
        _domain_id(conn, "example.com"),
        7,
        False,
        250,
        '["/blog"]',
        '["/blog/drafts"]',
        3,
        "scheduler",
        doc["id"],
        "manual run",
        doc["id"],
        None,
    )
    after = _scheduler_row(conn, doc["id"])
    assert after["next_run_at"] == before["next_run_at"]
    assert after == before


def test_run_does_not_take_the_slot_of_the_next_tick(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--overlap", "allow")
    slot = make_due(conn, doc["id"], "5 minutes")
    manual = _json(cli("run", "example.com", "--json"))
    summary = _json(cli("tick", "--json"))
    assert (summary["created"], parse_time(summary["jobs"][0]["slot"])) == (1, slot)
    assert summary["jobs"][0]["job_id"] != manual["id"]
    assert conn.execute(
        "SELECT count(*) FROM jobs WHERE scheduler_id = %s", [doc["id"]]
    ).fetchone() == (2,)


def test_run_with_replace_cancels_the_active_job(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    active = _insert_active_job(conn, doc["id"])
    job = _json(cli("run", "example.com", "--json"))
    status, completed_at = fetch_one(
        conn, "SELECT status, completed_at FROM jobs WHERE id = %s", [active]
    )
    assert status == "cancelled"
    assert completed_at is not None
    assert conn.execute("SELECT status FROM jobs WHERE id = %s", [job["id"]]).fetchone() == (
        "pending",
    )


def test_run_with_skip_is_a_conflict_while_a_job_is_active(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--overlap", "skip")
    active = _insert_active_job(conn, doc["id"], status="pending")
    before = fingerprint(conn)
    assert "still active" in assert_error(cli("run", "example.com", "--json"), 4)
    assert fingerprint(conn) == before
    conn.execute("UPDATE jobs SET status = 'completed' WHERE id = %s", [active])
    job = _json(cli("run", "example.com", "--json"))
    assert job["scheduler_id"] == doc["id"]


def test_run_with_allow_leaves_the_active_job_running(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--overlap", "allow")
    active = _insert_active_job(conn, doc["id"])
    _json(cli("run", "example.com", "--json"))
    assert conn.execute("SELECT status FROM jobs WHERE id = %s", [active]).fetchone() == (
        "running",
    )
    assert conn.execute(
        "SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')"
    ).fetchone() == (2,)


def test_run_plain_output_names_the_job(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    result = cli("run", "example.com")
    assert result.code == 0, result.stderr
    (job_id,) = fetch_one(conn, "SELECT id FROM jobs")
    assert result.stdout == f"created job {job_id} for example.com\n"


# ---------------------------------------------------------------- 3. next runs


def test_show_lists_the_next_five_run_times_on_the_grid(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", "12h")
    shown = _json(cli("show", "example.com", "--json"))
    runs = shown["next_runs"]
    assert len(runs) == 5
    assert all(RFC3339_UTC.match(run) for run in runs)
    assert runs[0] == doc["next_run_at"]
    times = [parse_time(run) for run in runs]
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(hours=12)] * 4


@pytest.mark.parametrize("count", ["1", "3", "1000"])
def test_show_next_n(cli: Cli, count: str) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    assert len(_json(cli("show", "example.com", "--next", count, "--json"))["next_runs"]) == int(
        count
    )


@pytest.mark.parametrize("count", ["0", "-1", "1001", "many"])
def test_show_next_out_of_range_is_a_usage_error(cli: Cli, count: str) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    assert_error(cli("show", "example.com", "--next", count, "--json"), 2)


def test_next_runs_of_an_overdue_scheduler_are_its_slot_then_the_grid_after_now(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", "6h")
    slot = make_due(conn, doc["id"], "13 hours")
    runs = [parse_time(t) for t in _json(cli("show", "example.com", "--json"))["next_runs"]]
    # What the next tick does: one job for the slot, then next_run_at = slot + 18h.
    assert runs[:3] == [slot, slot + timedelta(hours=18), slot + timedelta(hours=24)]
    cli("tick")
    assert _scheduler_row(conn, doc["id"])["next_run_at"] == runs[1]


def test_show_plain_output_lists_each_next_run(cli: Cli) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    shown = _json(cli("show", "example.com", "--next", "3", "--json"))
    text = cli("show", "example.com", "--next", "3").stdout
    # For people, every time to the second (JSON keeps the microseconds).
    runs = [re.sub(r"\.\d+Z$", "Z", run) for run in shown["next_runs"]]
    for run in runs:
        assert run in text
    assert re.search(r"^next runs +" + re.escape(runs[0]) + "$", text, re.M)
    assert re.search(r"^next run +" + re.escape(runs[0]) + "$", text, re.M)
    assert not re.search(r"\d\.\d+Z", text)


# ---------------------------------------------------------------- 4. dry run


def _mixed_schedulers(cli: Cli, conn: Conn) -> dict[str, str]:
    """Due with replace and an active job; due with skip and an active job; due and
    clean; not due; paused and due."""
    ids = {}
    for domain, options, ago in (
        ("replace.com", ("--overlap", "replace"), "10 minutes"),
        ("skip.com", ("--overlap", "skip"), "7 hours"),
        ("clean.com", (), "1 minute"),
        ("later.com", (), None),
        ("paused.com", (), "1 hour"),
    ):
        ids[domain] = make_scheduler(cli, domain, *options)["id"]
        if ago:
            make_due(conn, ids[domain], ago)
    _insert_active_job(conn, ids["replace.com"])
    _insert_active_job(conn, ids["skip.com"])
    cli("pause", "paused.com", "--reason", "hold")
    return ids


def _heartbeats(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM schedctl.tick_heartbeats ORDER BY host").fetchall()


def test_dry_run_reports_what_the_real_tick_then_does_and_writes_nothing(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    ids = _mixed_schedulers(cli, conn)
    before, beats = fingerprint(conn), _heartbeats(conn)

    dry = _json(cli("tick", "--dry-run", "--json"))
    assert fingerprint(conn) == before
    assert _heartbeats(conn) == beats
    assert (dry["due"], dry["created"], dry["skipped"], dry["failed"]) == (3, 2, 1, 0)
    assert all(job["job_id"] is None for job in dry["jobs"])

    real = _json(cli("tick", "--json"))
    assert {k: real[k] for k in ("due", "created", "skipped", "failed", "missed", "errors")} == {
        k: dry[k] for k in ("due", "created", "skipped", "failed", "missed", "errors")
    }
    assert [j | {"job_id": None} for j in real["jobs"]] == dry["jobs"]
    assert {j["scheduler_id"] for j in real["jobs"]} == {ids["replace.com"], ids["clean.com"]}
    assert all(j["job_id"] for j in real["jobs"])


def test_dry_run_with_limit_matches_the_real_pass(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    for n in range(5):
        doc = make_scheduler(cli, f"site{n}.com")
        make_due(conn, doc["id"], f"{10 - n} minutes")
    dry = _json(cli("tick", "--dry-run", "--limit", "2", "--json"))
    real = _json(cli("tick", "--limit", "2", "--json"))
    assert dry["due"] == real["due"] == 2
    assert [j["scheduler_id"] for j in dry["jobs"]] == [j["scheduler_id"] for j in real["jobs"]]


def test_dry_run_plain_output(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    make_due(conn, doc["id"])
    result = cli("tick", "--dry-run")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"would create a job for example.com (scheduler {doc['id']}, ")
    assert lines[-1] == "tick (dry run): 1 due, 1 created, 0 skipped, 0 failed, 0 missed"
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)


# ---------------------------------------------------------------- 5. status


def _status(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("status", *args, "--json")
    assert result.code in (0, 1), (result.code, result.stderr)
    return result.code, json.loads(result.stdout)


def test_status_of_a_healthy_database(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "a.com")
    make_scheduler(cli, "b.com")
    cli("pause", "b.com")
    code, report = _status(cli)
    assert code == 0
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["database"] == "reachable"
    assert report["schema_version"] == HEAD_MIGRATION
    assert (report["enabled"], report["paused"], report["due"]) == (1, 1, 0)
    assert report["worst_lag_seconds"] == 0
    assert report["max_lag_seconds"] == 300
    assert report["last_tick"] is None
    assert RFC3339_UTC.match(report["now"])


def test_status_exits_1_when_the_worst_lag_exceeds_max_lag(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    late = make_scheduler(cli, "late.com")
    make_due(conn, late["id"], "10 minutes")
    make_due(conn, make_scheduler(cli, "recent.com")["id"], "1 minute")
    paused = make_scheduler(cli, "paused.com")
    make_due(conn, paused["id"], "5 days")
    cli("pause", "paused.com")  # a paused scheduler is not waiting

    code, report = _status(cli)
    assert code == 1
    assert report["ok"] is False
    assert (report["enabled"], report["paused"], report["due"]) == (2, 1, 2)
    assert 600 <= report["worst_lag_seconds"] < 600 + 120
    assert len(report["problems"]) == 1
    assert "waited" in report["problems"][0]

    assert _status(cli, "--max-lag", "1h")[0] == 0
    assert _status(cli, "--max-lag", "15m")[0] == 0
    assert _status(cli, "--max-lag", "9m")[0] == 1

    plain = cli("status")
    assert plain.code == 1
    assert plain.stdout.startswith(
        f"status     PROBLEM: the scheduler of late.com ({late['id']}, organisation Acme) "
        "has waited 10m"
    )
    assert re.search(r"^worst lag +10m( \d+s)? \(limit 5m\)$", plain.stdout, re.M)


@pytest.mark.parametrize("limit", ["5m", "90s", "1h30m"])
def test_a_lag_equal_to_max_lag_is_fine_and_a_second_more_is_a_problem(
    cli: Cli, conn: Conn, limit: str
) -> None:
    """README: exit 1 when the worst lag *exceeds* --max-lag. The database clock stands still
    inside one transaction, so the lag is exactly what the test set."""
    from schedctl import db, monitoring
    from schedctl.config import Settings
    from schedctl.validation import parse_duration

    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    max_lag = parse_duration(limit)
    with db.connect(Settings()) as status_conn, status_conn.transaction():
        for late, ok in ((max_lag, True), (max_lag + timedelta(seconds=1), False)):
            status_conn.execute(
                "UPDATE schedulers SET next_run_at = now() - %s,"
                " created_at = now() - interval '1 day' WHERE id = %s",
                [late, doc["id"]],
            )
            report = monitoring.status(status_conn, None, max_lag)
            assert report["worst_lag_seconds"] == late.total_seconds()
            assert (report["ok"], len(report["problems"])) == (ok, 0 if ok else 1), report


def test_tick_records_a_heartbeat_and_status_reports_it(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    make_due(conn, doc["id"], "1 hour")
    assert _status(cli)[0] == 1
    cli("tick", "--dry-run")
    assert _status(cli)[1]["last_tick"] is None  # a dry run writes no heartbeat

    assert cli("tick", "--quiet").code == 0
    code, report = _status(cli)
    assert code == 0
    last = report["last_tick"]
    assert (last["host"], last["ok"], last["due"], last["created"], last["failed"]) == (
        socket.gethostname(),
        True,
        1,
        1,
        0,
    )
    assert RFC3339_UTC.match(last["ticked_at"])
    assert 0 <= report["last_tick_age_seconds"] < 120
    assert report["due"] == 0
    text = cli("status").stdout
    assert re.search(r"^last tick +\S+Z \(\d+s ago\) on .+: ok, 1 created", text, re.M)
    assert conn.execute("SELECT count(*) FROM schedctl.tick_heartbeats").fetchone() == (1,)
    cli("tick")
    assert conn.execute("SELECT count(*) FROM schedctl.tick_heartbeats").fetchone() == (1,)


def test_status_exits_1_when_the_last_tick_failed_until_a_tick_succeeds(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    make_due(conn, doc["id"], "1 minute")
    _refuse_jobs_of(conn, "example.com")
    assert cli("tick", "--quiet").code == 1

    code, report = _status(cli, "--max-lag", "1d")  # the lag alone would be fine
    assert code == 1
    assert report["last_tick"]["ok"] is False
    assert report["last_tick"]["failed"] == 1
    assert "host_refuses_domain" in report["last_tick"]["message"]
    assert report["problems"] == [f"the last tick failed: {report['last_tick']['message']}"]
    assert "FAILED" in cli("status", "--max-lag", "1d").stdout

    conn.execute("ALTER TABLE jobs DROP CONSTRAINT host_refuses_domain")
    assert cli("tick").code == 0
    code, report = _status(cli, "--max-lag", "1d")
    assert (code, report["ok"], report["last_tick"]["ok"]) == (0, True, True)


def test_status_counts_one_organisation_or_all(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_org(cli, "Beta")
    make_scheduler(cli, "a.com", "--org", "Acme")
    due = make_scheduler(cli, "b.com", "--org", "Beta")
    make_due(conn, due["id"], "1 hour")
    make_scheduler(cli, "c.com", "--org", "Beta", "--disabled")

    # Without --org, the whole database, as tick and its heartbeat.
    code, whole = _status(cli)
    assert (code, whole["enabled"], whole["paused"], whole["due"]) == (1, 2, 1, 1)
    assert f"the scheduler of b.com ({due['id']}, organisation Beta)" in whole["problems"][0]
    code, acme = _status(cli, "--org", "Acme")
    assert (code, acme["enabled"], acme["paused"], acme["due"]) == (0, 1, 0, 0)
    code, beta = _status(cli, "--org", "Beta")
    assert (code, beta["enabled"], beta["paused"], beta["due"]) == (1, 1, 1, 1)
    code, both = _status(cli, "--all-orgs")
    assert (code, both["enabled"], both["paused"], both["due"]) == (1, 2, 1, 1)
    assert both["worst_lag_seconds"] >= 3600


@pytest.mark.parametrize("value", ["", "soon", "-5m", "5x", "1e3", "99999999d"])
def test_status_refuses_an_invalid_max_lag(cli: Cli, value: str) -> None:
    make_org(cli, "Acme")
    assert "--max-lag" in assert_error(cli("status", "--max-lag", value, "--json"), 2)


def test_status_of_an_unmigrated_or_unreachable_database_is_exit_5(empty_database_url: str) -> None:
    unmigrated = run_cli_subprocess(
        ["status", "--all-orgs", "--json"], {"SCHEDCTL_DATABASE_URL": empty_database_url}
    )
    assert (unmigrated.code, unmigrated.stdout) == (5, "")
    assert "migrate" in unmigrated.stderr
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = run_cli_subprocess(
        ["status", "--all-orgs", "--json"],
        {
            "SCHEDCTL_DATABASE_URL": f"postgresql://nobody:secret@127.0.0.1:{port}/x",
            "SCHEDCTL_CONNECT_TIMEOUT": "3",
        },
    )
    assert (unreachable.code, unreachable.stdout) == (5, "")
    assert unreachable.stderr.startswith("error: cannot connect")
    assert "secret" not in unreachable.stderr


# ---------------------------------------------------------------- 6. audit trail


def test_create_records_only_the_meaningful_settings(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = _create(cli, "example.com", "--include", "/blog", actor="alice")
    [(action, actor, changes, reason)] = _audit(conn, doc["id"])
    assert (action, actor, reason) == ("create", "alice", None)
    assert changes == {
        "schedule_interval_hours": [None, 6],
        "next_run_at": [None, doc["next_run_at"]],
        "is_enabled": [None, True],
        "overlap_policy": [None, "replace"],
        "concurrency": [None, 20],
        "find_links": [None, True],
        "max_pages": [None, 0],
        "include_paths": [None, ["/blog"]],
        "required_workers": [None, 1],
    }


def test_every_change_is_recorded_with_old_and_new_values(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = _create(cli, "example.com", "--include", "/blog", actor="alice")
    updated = _json(cli("update", "example.com", "--every", "12h", "--clear-include", "--json"))
    cli("pause", "example.com", "--reason", "billing hold", env={"SCHEDCTL_ACTOR": "bob"})
    cli("resume", "example.com")
    job = _json(cli("run", "example.com", "--json"))

    entries = _audit(conn, doc["id"])
    assert [(e[0], e[1]) for e in entries] == [
        ("create", "alice"),
        ("update", "alice"),
        ("pause", "bob"),
        ("resume", "bob"),
        ("run", "bob"),
    ]
    assert entries[1][2] == {
        "schedule_interval_hours": [6, 12],
        "next_run_at": [doc["next_run_at"], updated["next_run_at"]],
        "include_paths": [["/blog"], []],
    }
    assert entries[2][2:] == (
        {"is_enabled": [True, False], "pause_reason": [None, "billing hold"]},
        "billing hold",
    )
    assert entries[3][2:] == (
        {"is_enabled": [False, True], "pause_reason": ["billing hold", None]},
        None,
    )
    assert entries[4][2] == {"job_id": [None, job["id"]]}


def test_the_actor_is_the_operating_system_user_without_schedctl_actor(
    database_url: str, conn: Conn
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url, "LOGNAME": "opsuser", "USER": "opsuser"}
    assert run_cli_subprocess(["org", "create", "Acme"], env).code == 0
    assert run_cli_subprocess(["create", "example.com", "--every", "6h"], env).code == 0
    named = run_cli_subprocess(
        ["pause", "example.com"], env | {"SCHEDCTL_ACTOR": "carol (on-call)"}
    )
    assert named.code == 0, named.stderr
    assert conn.execute("SELECT actor FROM schedctl.audit ORDER BY id").fetchall() == [
        ("opsuser",),  # org create
        ("opsuser",),
        ("carol (on-call)",),
    ]


def test_schedctl_actor_in_a_dot_env_file_counts(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SCHEDCTL_ACTOR=dave\n")
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    assert [e[1] for e in _audit(conn, doc["id"])] == ["dave"]


def test_a_deleted_schedulers_entries_stay(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--concurrency", "4")
    cli("update", "example.com", "--concurrency", "5")
    assert cli("delete", "example.com", "--yes").code == 0
    entries = _audit(conn, doc["id"])
    assert [e[0] for e in entries] == ["create", "update", "delete"]
    assert entries[2][2]["concurrency"] == [5, None]
    assert "pause_reason" not in entries[2][2]

    for ref in ("example.com", doc["id"]):
        logged = _json(cli("log", ref, "--json"))
        assert [e["action"] for e in logged] == ["delete", "update", "create"]
        assert {e["scheduler_id"] for e in logged} == {doc["id"]}


def test_the_audit_trail_is_append_only(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    for statement in (
        "UPDATE schedctl.audit SET actor = 'mallory'",
        "DELETE FROM schedctl.audit",
        "TRUNCATE schedctl.audit",
    ):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute(statement)
    assert fetch_one(conn, "SELECT count(*), min(actor) FROM schedctl.audit")[0] == 2


def test_log_json_newest_first_with_limit(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    a = _create(cli, "a.com", actor="alice")
    b = _create(cli, "b.com", actor="alice")
    cli("pause", "a.com", "--reason", "hold")
    entries = _json(cli("log", "--json"))
    assert [(e["action"], e["domain"]) for e in entries] == [
        ("pause", "a.com"),
        ("create", "b.com"),
        ("create", "a.com"),
        ("org_create", None),  # the organisation's own entries are in its log too
    ]
    first = entries[0]
    assert set(first) == {
        "id",
        "at",
        "actor",
        "action",
        "scheduler_id",
        "organisation_id",
        "domain",
        "changes",
        "reason",
        "source",
    }
    assert (first["scheduler_id"], first["actor"], first["reason"]) == (a["id"], "alice", "hold")
    assert first["organisation_id"] == a["organisation_id"]
    assert RFC3339_UTC.match(first["at"])
    assert [e["action"] for e in _json(cli("log", "--limit", "2", "--json"))] == [
        "pause",
        "create",
    ]
    assert [e["scheduler_id"] for e in _json(cli("log", "b.com", "--json"))] == [b["id"]]


@pytest.mark.parametrize("limit", ["0", "1001", "-3"])
def test_log_limit_out_of_range_is_a_usage_error(cli: Cli, limit: str) -> None:
    make_org(cli, "Acme")
    assert_error(cli("log", "--limit", limit, "--json"), 2)


def test_log_shows_only_the_organisations_own_entries(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_org(cli, "Beta")
    acme = make_scheduler(cli, "a.com", "--org", "Acme")
    make_scheduler(cli, "b.com", "--org", "Beta")
    assert [e["domain"] for e in _json(cli("log", "--org", "Beta", "--json"))] == ["b.com", None]
    assert "no scheduler" in assert_error(cli("log", acme["id"], "--org", "Beta", "--json"), 3)
    assert "no scheduler" in assert_error(cli("log", "a.com", "--org", "Beta", "--json"), 3)


def test_log_plain_output_is_readable(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = _create(cli, "example.com", "--include", "/blog", actor="alice")
    cli("update", "example.com", "--concurrency", "5", "--exclude", "/tmp")
    cli("pause", "example.com", "--reason", "billing hold")
    lines = cli("log").stdout.splitlines()
    assert lines[0] == "at\tactor\taction\tdomain\tchanges\treason\tsource"
    pause, update, create, org_create = (line.split("\t") for line in lines[1:])
    assert org_create[2:5] == ["org_create", "-", "name Acme"]
    assert pause[1:] == [
        "alice",
        "pause",
        "example.com",
        "enabled yes -> no; pause reason billing hold",
        "billing hold",
        "cli",
    ]
    assert update[4] == "concurrency 20 -> 5; exclude - -> /tmp"
    assert create[4] == (
        f"every 6h; next run {doc['next_run_at']}; enabled yes; overlap replace; "
        "concurrency 20; find links yes; max pages 0; include /blog; required workers 1"
    )
    assert RFC3339_UTC.match(create[0])


def test_a_skipped_slot_is_in_the_audit_trail_with_rfc3339_times(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    whole = make_scheduler(cli, "whole.com", "--overlap", "skip")
    fraction = make_scheduler(cli, "fraction.com", "--overlap", "skip")
    # Slots on a whole second and with microseconds: both written as render writes them.
    conn.execute(
        "UPDATE schedulers SET next_run_at = date_trunc('second', now()) - interval '1 hour' "
        "WHERE id = %s",
        [whole["id"]],
    )
    conn.execute(
        "UPDATE schedulers SET next_run_at = date_trunc('second', now()) "
        "- interval '7 hours 0.25 seconds' WHERE id = %s",
        [fraction["id"]],
    )
    for doc in (whole, fraction):
        _insert_active_job(conn, doc["id"])
    tick = _json(cli("tick", "--json"))
    assert (tick["due"], tick["skipped"], tick["created"]) == (2, 2, 0)
    for doc in (whole, fraction):
        row = _scheduler_row(conn, doc["id"])
        [entry] = [e for e in _json(cli("log", doc["id"], "--json")) if e["action"] == "skip"]
        assert entry["actor"] == "tick"
        assert entry["reason"] == "a job of this domain is still active"
        slot = entry["changes"]["slot"]
        assert RFC3339_UTC.match(slot)
        assert parse_time(slot) == row["next_run_at"] - timedelta(
            hours=6 * (1 if doc is whole else 2)
        )
        assert entry["changes"]["next_run_at"] == [
            slot,
            _json(cli("show", doc["id"], "--json"))["next_run_at"],
        ]
    whole_slot = [e for e in _json(cli("log", whole["id"], "--json")) if e["action"] == "skip"]
    assert "." not in whole_slot[0]["changes"]["slot"]
    assert "slot " in cli("log", whole["id"]).stdout


# ---------------------------------------------------------------- 7. quiet cron output


def test_tick_quiet_prints_nothing_when_all_went_well(
    cli: Cli, database_url: str, conn: Conn
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url}
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    (scheduler_id,) = fetch_one(conn, "SELECT id FROM schedulers")
    make_due(conn, str(scheduler_id))
    result = run_cli_subprocess(["tick", "--quiet"], env)
    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (1,)
    idle = run_cli_subprocess(["tick", "-q"], env)
    assert (idle.code, idle.stdout, idle.stderr) == (0, "", "")


def test_tick_quiet_prints_the_failures_alone(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    good = make_scheduler(cli, "good.com")
    bad = make_scheduler(cli, "bad.com")
    for doc in (good, bad):
        make_due(conn, doc["id"])
    _refuse_jobs_of(conn, "bad.com")
    result = cli("tick", "--quiet")
    assert result.code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: scheduler {bad['id']}: ")
    assert "host_refuses_domain" in line
    assert "good.com" not in result.stderr
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (1,)


def test_tick_quiet_still_reports_an_unreachable_database(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli_subprocess(
        ["tick", "--quiet"],
        {
            "SCHEDCTL_DATABASE_URL": f"postgresql://tick@127.0.0.1:{port}/x",
            "SCHEDCTL_CONNECT_TIMEOUT": "3",
        },
    )
    assert (result.code, result.stdout) == (5, "")
    assert result.stderr.startswith("error: cannot connect")
