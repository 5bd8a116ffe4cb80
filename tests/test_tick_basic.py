"""`schedctl tick` in one process: which schedulers it picks, the job rows it writes,
the grid, the overlap policies, a failing scheduler, --limit and --dry-run."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers import (
    Cli,
    Conn,
    assert_error,
    db_now,
    fingerprint,
    insert_active_job,
    make_due,
    make_org,
    make_scheduler,
)
from tests.helpers import job_row as _job
from tests.helpers import parse_time as _ts
from tests.helpers import scheduler_row as _scheduler

TICK_KEYS = {"due", "created", "skipped", "failed", "missed", "resumed", "jobs", "errors"}
ENTRY_KEYS = {"scheduler_id", "job_id", "organisation_id", "domain", "slot", "next_run_at"}
ACTIVE = ("pending", "initializing", "running", "paused")


def _tick(cli: Cli, *options: str, code: int = 0) -> dict[str, Any]:
    result = cli("tick", "--json", *options)
    assert result.code == code, (result.code, result.stdout, result.stderr)
    summary: dict[str, Any] = json.loads(result.stdout)
    assert set(summary) == TICK_KEYS
    assert summary["due"] == summary["created"] + summary["skipped"] + summary["failed"]
    return summary


# ------------------------------------------------------------------ what is due


def test_tick_picks_up_exactly_the_ready_schedulers(cli: Cli, conn: Conn) -> None:
    acme = make_org(cli, "Acme")
    other = make_org(cli, "Other")
    due = make_scheduler(cli, "due.com", "--org", acme)
    overdue = make_scheduler(cli, "overdue.com", "--org", acme)
    other_due = make_scheduler(cli, "due.com", "--org", other)
    paused = make_scheduler(cli, "paused.com", "--org", acme, "--disabled")
    future = make_scheduler(cli, "future.com", "--org", acme)
    make_due(conn, due["id"], "1 second")
    make_due(conn, overdue["id"], "3 days")
    make_due(conn, other_due["id"], "1 minute")
    make_due(conn, paused["id"], "1 hour")
    make_due(conn, future["id"], "-1 minute")  # a minute from now
    untouched = {doc["id"]: _scheduler(conn, doc["id"]) for doc in (paused, future)}

    summary = _tick(cli)
    assert (summary["due"], summary["created"], summary["skipped"], summary["failed"]) == (
        3,
        3,
        0,
        0,
    )
    assert summary["errors"] == []
    assert {e["scheduler_id"] for e in summary["jobs"]} == {
        due["id"],
        overdue["id"],
        other_due["id"],
    }
    assert all(set(e) == ENTRY_KEYS for e in summary["jobs"])
    by_id = {e["scheduler_id"]: e for e in summary["jobs"]}
    assert by_id[other_due["id"]]["organisation_id"] == other
    assert by_id[overdue["id"]]["domain"] == "overdue.com"
    for scheduler_id, row in untouched.items():
        assert _scheduler(conn, scheduler_id) == row
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (3,)

    # Nothing is due any more: the next pass does nothing.
    again = _tick(cli)
    assert (again["due"], again["jobs"]) == (0, [])
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (3,)


def test_a_scheduler_whose_time_is_exactly_now_is_due(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--start-at", "now")
    summary = _tick(cli)
    assert [e["scheduler_id"] for e in summary["jobs"]] == [doc["id"]]
    assert _ts(summary["jobs"][0]["slot"]) == _ts(doc["next_run_at"])


# ------------------------------------------------------------------ the job row


def test_the_job_row_is_exactly_as_specified(cli: Cli, conn: Conn) -> None:
    org = make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--every",
        "12h",
        "--concurrency",
        "7",
        "--no-find-links",
        "--max-pages",
        "300",
        "--include",
        "/blog",
        "--exclude",
        "/private",
        "--exclude",
        "/tmp",
        "--required-workers",
        "4",
    )
    slot = make_due(conn, doc["id"], "5 minutes")
    before = db_now(conn)
    summary = _tick(cli)
    after = db_now(conn)
    entry = summary["jobs"][0]
    job = _job(conn, entry["job_id"])

    assert str(uuid.UUID(job["id"])) == job["id"]
    scheduler = _scheduler(conn, doc["id"])
    expected = {
        "domain_id": scheduler["domain_id"],
        "user_id": None,
        "organisation_id": uuid.UUID(org),
        "status": "pending",
        "progress": 0,
        "sitemap_tasks": 0,
        "found_tasks": 0,
        "total_tasks": 0,
        "completed_tasks": 0,
        "failed_tasks": 0,
        "skipped_tasks": 0,
        "running_tasks": 0,
        "started_at": None,
        "completed_at": None,
        "concurrency": 7,
        "find_links": False,
        "max_pages": 300,
        "include_paths": '["/blog"]',
        "exclude_paths": '["/private", "/tmp"]',
        "required_workers": 4,
        "error_message": None,
        "source_type": "scheduler",
        "source_detail": doc["id"],
        "source_info": None,
        "scheduler_id": uuid.UUID(doc["id"]),
        "scheduler_slot": slot,
    }
    assert {k: job[k] for k in expected} == expected
    assert json.loads(job["exclude_paths"]) == ["/private", "/tmp"]
    assert before <= job["created_at"] <= after
    # The scheduler's updated_at is the same now() as the job's created_at.
    assert scheduler["updated_at"] == job["created_at"]
    assert scheduler["next_run_at"] == slot + timedelta(hours=12)

    assert entry == {
        "scheduler_id": doc["id"],
        "job_id": job["id"],
        "organisation_id": org,
        "domain": "example.com",
        "slot": entry["slot"],
        "next_run_at": entry["next_run_at"],
    }
    assert _ts(entry["slot"]) == slot
    assert _ts(entry["next_run_at"]) == scheduler["next_run_at"]
    assert entry["slot"].endswith("Z")


def test_empty_path_lists_stay_null_on_the_job(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    make_due(conn, doc["id"])
    job = _job(conn, _tick(cli)["jobs"][0]["job_id"])
    assert (job["include_paths"], job["exclude_paths"]) == (None, None)
    assert (job["concurrency"], job["find_links"], job["max_pages"]) == (20, True, 0)
    assert job["required_workers"] == 1


# ------------------------------------------------------------------ the grid


@pytest.mark.parametrize(
    ("every", "ago", "missed", "steps"),
    [
        ("6h", "1 minute", 0, 1),
        ("6h", "5 hours 59 minutes", 0, 1),
        ("6h", "6 hours 1 minute", 1, 2),
        ("6h", "20 hours", 3, 4),
        ("24h", "10 days 1 hour", 10, 11),
        ("48h", "47 hours", 0, 1),
    ],
)
def test_next_run_stays_on_the_grid_and_counts_missed_slots(
    cli: Cli, conn: Conn, every: str, ago: str, missed: int, steps: int
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", every)
    slot = make_due(conn, doc["id"], ago)
    summary = _tick(cli)
    after = db_now(conn)
    assert summary["missed"] == missed
    assert summary["created"] == 1  # coalesced into one job
    hours = doc["schedule_interval_hours"]
    next_run = _scheduler(conn, doc["id"])["next_run_at"]
    assert next_run == slot + timedelta(hours=hours * steps)
    assert next_run > after
    assert _ts(summary["jobs"][0]["slot"]) == slot
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (1,)


def test_a_slot_exactly_on_now_is_missed_and_the_next_run_is_strictly_after(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    from schedctl import db, tick
    from schedctl.config import Settings

    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", "6h", "--start-at", "2030-01-01T00:00Z")
    slot = _scheduler(conn, doc["id"])["next_run_at"]
    jobs: list[dict[str, Any]] = []
    with db.connect(Settings()) as tick_conn:
        summary = tick.run(tick_conn, on_job=jobs.append, now=slot + timedelta(hours=12))
    assert (summary.due, summary.created, summary.missed) == (1, 1, 2)
    assert jobs[0]["next_run_at"] == slot + timedelta(hours=18)
    assert _scheduler(conn, doc["id"])["next_run_at"] == slot + timedelta(hours=18)


def test_one_pass_handles_every_due_scheduler_in_batches(cli: Cli, conn: Conn) -> None:
    from schedctl import db, tick
    from schedctl.config import Settings

    org = make_org(cli, "Acme")
    conn.execute(
        """
        WITH d AS (
            INSERT INTO domains (name)
            SELECT 'site' || n || '.com' FROM generate_series(1, 120) n RETURNING id
        )
        INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours, next_run_at)
        SELECT id, %s, 6, now() - interval '1 minute' FROM d
        """,
        [org],
    )
    jobs: list[dict[str, Any]] = []
    with db.connect(Settings()) as tick_conn:
        summary = tick.run(tick_conn, on_job=jobs.append, batch_size=7)
    assert (summary.due, summary.created, summary.failed) == (120, 120, 0)
    assert len({j["scheduler_id"] for j in jobs}) == 120
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (120,)
    assert conn.execute(
        "SELECT count(*) FROM schedulers WHERE next_run_at <= now()"
    ).fetchone() == (0,)


# ------------------------------------------------------------------ overlap policies


def test_overlap_replace_cancels_the_active_job(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    other_org = make_org(cli, "Other")
    doc = make_scheduler(cli, "example.com", "--org", "Acme")  # replace is the default
    running = insert_active_job(conn, doc["id"], "running")
    paused = insert_active_job(conn, doc["id"], "paused")
    finished = insert_active_job(conn, doc["id"], "completed")
    elsewhere = insert_active_job(conn, doc["id"], "running", org=other_org)
    make_due(conn, doc["id"])

    summary = _tick(cli)
    assert (summary["created"], summary["skipped"]) == (1, 0)
    new_job = _job(conn, summary["jobs"][0]["job_id"])
    assert new_job["status"] == "pending"
    for cancelled in (running, paused):
        row = _job(conn, cancelled)
        assert row["status"] == "cancelled"
        assert row["completed_at"] == new_job["created_at"]  # the tick's now()
    assert _job(conn, finished)["status"] == "completed"
    assert _job(conn, finished)["completed_at"] is None
    assert _job(conn, elsewhere)["status"] == "running"  # another organisation's


@pytest.mark.parametrize("policy", ["replace", "skip", "allow"])
def test_a_slot_that_already_has_its_job_is_not_served_again(
    cli: Cli, conn: Conn, policy: str
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--overlap", policy)
    slot = make_due(conn, doc["id"])
    first = _tick(cli)
    assert first["created"] == 1
    job_id = first["jobs"][0]["job_id"]
    # An operator sets the schedule back onto the slot that was already served.
    conn.execute("UPDATE schedulers SET next_run_at = %s WHERE id = %s", [slot, doc["id"]])

    preview = _tick(cli, "--dry-run")
    assert (preview["due"], preview["created"], preview["skipped"], preview["jobs"]) == (
        1,
        0,
        1,
        [],
    )
    again = _tick(cli)
    assert (again["due"], again["created"], again["skipped"], again["jobs"]) == (1, 0, 1, [])
    assert _job(conn, job_id)["status"] == "pending"  # not cancelled by its own slot
    count = conn.execute("SELECT count(*) FROM jobs WHERE scheduler_id = %s", [doc["id"]])
    assert count.fetchone() == (1,)
    assert _scheduler(conn, doc["id"])["next_run_at"] > slot


def test_overlap_skip_makes_no_job_moves_the_grid_and_logs_the_slot(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--overlap", "skip")
    running = insert_active_job(conn, doc["id"], "initializing")
    slot = make_due(conn, doc["id"], "7 hours")

    summary = _tick(cli)
    assert (summary["due"], summary["created"], summary["skipped"], summary["failed"]) == (
        1,
        0,
        1,
        0,
    )
    assert summary["jobs"] == []
    assert summary["missed"] == 1
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (1,)
    assert _job(conn, running)["status"] == "initializing"
    assert _scheduler(conn, doc["id"])["next_run_at"] == slot + timedelta(hours=12)

    log = cli("log", "example.com", "--json")
    assert log.code == 0, log.stderr
    entries = json.loads(log.stdout)
    assert entries[0]["action"] == "skip"
    assert entries[0]["scheduler_id"] == doc["id"]
    assert _ts(entries[0]["changes"]["slot"]) == slot

    # Once the active job is finished, the next due slot makes a job again.
    conn.execute("UPDATE jobs SET status = 'completed' WHERE id = %s", [running])
    make_due(conn, doc["id"])
    assert _tick(cli)["created"] == 1


def test_overlap_allow_keeps_both_jobs_active(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--overlap", "allow")
    running = insert_active_job(conn, doc["id"], "running")
    make_due(conn, doc["id"])
    summary = _tick(cli)
    assert summary["created"] == 1
    assert _job(conn, running)["status"] == "running"
    statuses = conn.execute("SELECT status FROM jobs ORDER BY status").fetchall()
    assert statuses == [("pending",), ("running",)]


def test_overlap_policies_side_by_side_in_one_pass(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    docs = {
        policy: make_scheduler(cli, f"{policy}.com", "--overlap", policy)
        for policy in ("replace", "skip", "allow")
    }
    for doc in docs.values():
        insert_active_job(conn, doc["id"], "pending")
        make_due(conn, doc["id"])
    summary = _tick(cli)
    assert (summary["due"], summary["created"], summary["skipped"]) == (3, 2, 1)
    assert {e["domain"] for e in summary["jobs"]} == {"replace.com", "allow.com"}


# ------------------------------------------------------------------ a failing scheduler


def test_a_failing_scheduler_is_reported_and_the_others_still_get_jobs(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    docs = [make_scheduler(cli, f"site{n}.com") for n in range(4)]
    bad = docs[2]
    for doc in docs:
        make_due(conn, doc["id"])
    bad_row = _scheduler(conn, bad["id"])
    conn.execute(
        f"ALTER TABLE jobs ADD CONSTRAINT host_rule CHECK (domain_id <> {bad_row['domain_id']})"
    )

    summary = _tick(cli, code=1)
    assert (summary["due"], summary["created"], summary["failed"]) == (4, 3, 1)
    assert summary["errors"] == [
        {"scheduler_id": bad["id"], "message": summary["errors"][0]["message"]}
    ]
    assert "host_rule" in summary["errors"][0]["message"]
    assert {e["scheduler_id"] for e in summary["jobs"]} == {d["id"] for d in docs if d is not bad}
    assert _scheduler(conn, bad["id"]) == bad_row  # next_run_at and updated_at unchanged
    assert conn.execute(
        "SELECT count(*) FROM jobs WHERE scheduler_id = %s", [bad["id"]]
    ).fetchone() == (0,)


def test_a_trigger_refusing_one_job_fails_only_that_scheduler(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    good = make_scheduler(cli, "good.com")
    bad = make_scheduler(cli, "bad.com")
    for doc in (good, bad):
        make_due(conn, doc["id"])
    bad_next = _scheduler(conn, bad["id"])["next_run_at"]
    conn.execute(
        """
        CREATE FUNCTION refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.source_detail = '%s' THEN RAISE EXCEPTION 'quota exceeded'; END IF;
            RETURN NEW;
        END $$
        """.replace("%s", bad["id"])
    )
    conn.execute(
        "CREATE TRIGGER refuse_bad BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_bad()"
    )
    summary = _tick(cli, code=1)
    assert (summary["created"], summary["failed"]) == (1, 1)
    assert summary["errors"] == [{"scheduler_id": bad["id"], "message": "quota exceeded"}]
    assert [e["scheduler_id"] for e in summary["jobs"]] == [good["id"]]
    assert _scheduler(conn, bad["id"])["next_run_at"] == bad_next


# ------------------------------------------------------------------ --limit and --dry-run


def test_limit_bounds_the_schedulers_attempted_most_overdue_first(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    docs = [make_scheduler(cli, f"site{n}.com") for n in range(5)]
    for n, doc in enumerate(docs):
        make_due(conn, doc["id"], f"{n + 1} minutes")
    first = _tick(cli, "--limit", "2")
    assert (first["due"], first["created"]) == (2, 2)
    assert {e["scheduler_id"] for e in first["jobs"]} == {docs[4]["id"], docs[3]["id"]}
    assert conn.execute(
        "SELECT count(*) FROM schedulers WHERE next_run_at <= now()"
    ).fetchone() == (3,)
    rest = _tick(cli, "--limit", "10")
    assert (rest["due"], rest["created"]) == (3, 3)
    assert_error(cli("tick", "--limit", "0"), 2)
    assert_error(cli("tick", "--limit", "-1", "--json"), 2)


def test_dry_run_prints_the_same_summary_with_null_job_ids_and_writes_nothing(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    plain = make_scheduler(cli, "plain.com")
    skipping = make_scheduler(cli, "skip.com", "--overlap", "skip")
    replacing = make_scheduler(cli, "replace.com")
    make_due(conn, plain["id"], "13 hours")
    make_due(conn, skipping["id"])
    make_due(conn, replacing["id"])
    insert_active_job(conn, skipping["id"])
    active = insert_active_job(conn, replacing["id"])
    before = fingerprint(conn)
    heartbeats = conn.execute("SELECT count(*) FROM schedctl.tick_heartbeats").fetchone()

    dry = _tick(cli, "--dry-run")
    assert fingerprint(conn) == before
    assert conn.execute("SELECT count(*) FROM schedctl.tick_heartbeats").fetchone() == heartbeats
    assert _job(conn, active)["status"] == "running"
    assert all(entry["job_id"] is None for entry in dry["jobs"])

    real = _tick(cli)
    assert {k: v for k, v in dry.items() if k != "jobs"} == {
        k: v for k, v in real.items() if k != "jobs"
    }
    assert (real["created"], real["skipped"], real["missed"]) == (2, 1, 2)
    assert [dict(e, job_id=None) for e in real["jobs"]] == dry["jobs"]
    assert all(entry["job_id"] for entry in real["jobs"])


def test_plain_and_quiet_output(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    make_due(conn, doc["id"])
    dry = cli("tick", "--dry-run")
    assert dry.code == 0
    assert dry.stdout.splitlines()[0].startswith(
        f"would create a job for example.com (scheduler {doc['id']}, slot "
    )
    assert dry.stdout.splitlines()[-1] == (
        "tick (dry run): 1 due, 1 created, 0 skipped, 0 failed, 0 missed"
    )
    quiet = cli("tick", "--quiet")
    assert (quiet.code, quiet.stdout, quiet.stderr) == (0, "", "")
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (1,)
    idle = cli("tick")
    assert idle.stdout == "tick: 0 due, 0 created, 0 skipped, 0 failed, 0 missed\n"
