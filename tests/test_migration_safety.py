"""Migrations under pressure: several `migrate` processes at once, one killed while it
holds the lock, one blocked by the host's workers, and an upgrade over live data.

The schema is applied exactly once, nothing waits forever, and a database holding
schedulers and jobs loses nothing when a new migration is applied."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from typing import Any

import psycopg
import pytest

from schedctl.config import Settings
from schedctl.migrate import migrate, migrations_dir
from tests.helpers import (
    Cli,
    Conn,
    NewDatabase,
    check_result,
    fetch_one,
    run_cli_subprocess,
    start_cli_process,
)
from tests.helpers import finish_cli_process as _finish

pytestmark = pytest.mark.slow

HEAD = sorted(p.stem for p in migrations_dir().glob("*.sql") if ".rollback" not in p.name)
SCHEDCTL_TABLES = (
    "public.organisations",
    "public.domains",
    "public.jobs",
    "public.schedulers",
    "schedctl.audit",
    "schedctl.tick_heartbeats",
    "schedctl.scheduler_settings",
    "schedctl.served_slots",
)


def _start(args: list[str], url: str, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return start_cli_process(args, {"SCHEDCTL_DATABASE_URL": url, **(extra or {})})


def _applied(conn: Conn) -> list[tuple[str, int]]:
    """Each migration yoyo recorded, with how many times it was recorded and applied."""
    return conn.execute(
        "SELECT m.migration_id, count(*) * 100 + (SELECT count(*) FROM schedctl._yoyo_log l"
        " WHERE l.migration_id = m.migration_id AND l.operation = 'apply')"
        " FROM schedctl._yoyo_migration m GROUP BY m.migration_id ORDER BY 1"
    ).fetchall()


@pytest.fixture
def empty_databases(new_database: NewDatabase) -> NewDatabase:
    """A factory of empty databases on the test server, all dropped afterwards."""
    return new_database


# ---------------------------------------------------------------- concurrent runs


@pytest.mark.parametrize("processes", [4, 8])
@pytest.mark.parametrize("attempt", [1, 2])
def test_concurrent_migrates_on_an_empty_database_apply_the_schema_once(
    empty_databases: NewDatabase, processes: int, attempt: int
) -> None:
    url = empty_databases()
    procs = [_start(["migrate", "--json"], url) for _ in range(processes)]
    results = [_finish(proc) for proc in procs]
    for result in results:
        assert result.code == 0, result.stderr
        assert result.stderr == ""
    applied = [json.loads(result.stdout)["migrations"] for result in results]
    # One process applied everything; the others found the schema up to date.
    assert sorted(applied, key=len) == [[]] * (processes - 1) + [HEAD]
    with psycopg.connect(url) as conn:
        assert _applied(conn) == [(name, 101) for name in HEAD]
        tables = conn.execute(
            "SELECT schemaname || '.' || tablename, count(*) FROM pg_tables"
            " WHERE schemaname || '.' || tablename = ANY(%s) GROUP BY 1 ORDER BY 1",
            [list(SCHEDCTL_TABLES)],
        ).fetchall()
        assert tables == sorted((name, 1) for name in SCHEDCTL_TABLES)
        # yoyo's own lock was released: nothing stale for the next run.
        assert conn.execute("SELECT count(*) FROM schedctl.yoyo_lock").fetchone() == (0,)
    again = run_cli_subprocess(["migrate"], {"SCHEDCTL_DATABASE_URL": url})
    assert (again.code, again.stdout) == (0, "schema is up to date\n")


def test_a_migrate_killed_while_it_holds_the_lock_does_not_block_the_next(
    empty_databases: NewDatabase,
) -> None:
    url = empty_databases()
    with psycopg.connect(url) as blocker, psycopg.connect(url, autocommit=True) as watcher:
        # An uncommitted DROP SCHEMA holds the schema: the migrate that takes the advisory
        # lock then waits at its first CREATE TABLE, and is killed there.
        blocker.execute("DROP SCHEMA public CASCADE")
        first = _start(["migrate"], url)
        deadline = time.monotonic() + 30
        while not fetch_one(
            watcher,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'",
        )[0]:
            assert time.monotonic() < deadline, "the first migrate never waited"
            time.sleep(0.05)
        assert watcher.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone() == (1,)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
        blocker.rollback()
    started = time.monotonic()
    second = run_cli_subprocess(["migrate", "--json"], {"SCHEDCTL_DATABASE_URL": url})
    assert second.code == 0, second.stderr
    assert json.loads(second.stdout)["migrations"] == HEAD
    assert time.monotonic() - started < 30
    with psycopg.connect(url) as conn:
        assert _applied(conn) == [(name, 101) for name in HEAD]


def test_a_migration_blocked_by_the_hosts_workers_gives_up_and_applies_later(
    empty_databases: NewDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = empty_databases()
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", url)
    migrate(Settings(), upto="0001_host_tables")
    with psycopg.connect(url) as worker:
        # A worker's open transaction on jobs: 0002's ALTER TABLE jobs (adding the
        # scheduler_id this host lacks) must wait for it.
        worker.execute("LOCK TABLE jobs IN ROW EXCLUSIVE MODE")
        started = time.monotonic()
        blocked = _finish(_start(["migrate"], url, {"SCHEDCTL_LOCK_TIMEOUT": "2"}), timeout=60)
        waited = time.monotonic() - started
        worker.rollback()
    check_result(blocked)
    assert blocked.code == 1, blocked
    assert blocked.stderr.startswith(
        "error: migration failed; its transaction was rolled back: "
        "gave up waiting for a database lock after 2 s (SCHEDCTL_LOCK_TIMEOUT)"
    )
    assert waited < 20, waited
    with psycopg.connect(url) as conn:
        assert [name for name, _ in _applied(conn)] == HEAD[:1]
        assert conn.execute("SELECT to_regclass('schedctl.audit')").fetchone() == (None,)
    done = run_cli_subprocess(["migrate", "--json"], {"SCHEDCTL_DATABASE_URL": url})
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["migrations"] == HEAD[1:]


def test_a_hosts_open_transaction_on_its_tables_does_not_hold_up_schedctls_migrations(
    empty_databases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = empty_databases()
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", url)
    migrate(Settings(), upto="0002_schedulers")
    with psycopg.connect(url) as worker:
        # schedctl's own migrations take no lock on the host's tables.
        worker.execute("LOCK TABLE jobs, schedulers, domains, organisations IN EXCLUSIVE MODE")
        done = _finish(_start(["migrate", "--json"], url, {"SCHEDCTL_LOCK_TIMEOUT": "2"}))
        worker.rollback()
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["migrations"] == HEAD[2:]


# ---------------------------------------------------------------- upgrade over live data

SEED_ROWS = """
INSERT INTO organisations (id, name) VALUES
    ('00000000-0000-4000-8000-00000000000a', 'Acme'),
    ('00000000-0000-4000-8000-00000000000b', 'Globex');
INSERT INTO domains (id, name) VALUES (101, 'acme.com'), (102, 'globex.com'), (103, 'shared.org');
-- Schedulers as the host's code writes them: the seed's columns only.
INSERT INTO schedulers (id, domain_id, organisation_id, schedule_interval_hours, next_run_at,
                        is_enabled, concurrency, find_links, max_pages, include_paths,
                        exclude_paths, required_workers, created_at, updated_at)
VALUES
    ('00000000-0000-4000-8000-0000000000a1', 101, '00000000-0000-4000-8000-00000000000a', 6,
     now() - interval '30 minutes', TRUE, 5, FALSE, 100, '["/blog"]', '["/admin"]', 2,
     now() - interval '10 days', now() - interval '1 day'),
    ('00000000-0000-4000-8000-0000000000a2', 103, '00000000-0000-4000-8000-00000000000a', 24,
     now() + interval '3 hours', FALSE, 20, TRUE, 0, NULL, NULL, 1,
     now() - interval '5 days', now() - interval '5 days'),
    ('00000000-0000-4000-8000-0000000000b1', 102, '00000000-0000-4000-8000-00000000000b', 48,
     now() - interval '50 hours', TRUE, 20, TRUE, 0, NULL, NULL, 1,
     now() - interval '20 days', now() - interval '2 days');
INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours, next_run_at)
VALUES (103, '00000000-0000-4000-8000-00000000000b', 12, now() + interval '1 hour');
-- Jobs as the host writes them: some linked to a scheduler, some manual, some finished.
INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at, started_at,
                  completed_at, concurrency, find_links, max_pages, total_tasks,
                  completed_tasks, source_type, source_detail, scheduler_id)
VALUES
    ('job-1', 101, '00000000-0000-4000-8000-00000000000a', 'completed', 100,
     now() - interval '6 hours', now() - interval '6 hours', now() - interval '5 hours',
     5, FALSE, 100, 40, 40, 'scheduler', '00000000-0000-4000-8000-0000000000a1',
     '00000000-0000-4000-8000-0000000000a1'),
    ('job-2', 101, '00000000-0000-4000-8000-00000000000a', 'running', 42.5,
     now() - interval '1 hour', now() - interval '1 hour', NULL,
     5, FALSE, 100, 10, 4, 'scheduler', '00000000-0000-4000-8000-0000000000a1',
     '00000000-0000-4000-8000-0000000000a1'),
    ('job-3', 102, '00000000-0000-4000-8000-00000000000b', 'failed', 3,
     now() - interval '3 days', NULL, now() - interval '3 days',
     20, TRUE, 0, 0, 0, 'manual', NULL, NULL);
"""

# The rows of every table as the seed knows them, in a stable order.
SEED_VIEW = {
    "organisations": "SELECT id, name, created_at, updated_at FROM organisations ORDER BY id",
    "domains": "SELECT id, name, created_at FROM domains ORDER BY id",
    "schedulers": (
        "SELECT id, domain_id, organisation_id, schedule_interval_hours, next_run_at,"
        " is_enabled, concurrency, find_links, max_pages, include_paths, exclude_paths,"
        " required_workers, created_at, updated_at FROM schedulers ORDER BY id"
    ),
    "jobs": (
        "SELECT id, domain_id, user_id, organisation_id, status, progress, sitemap_tasks,"
        " found_tasks, total_tasks, completed_tasks, failed_tasks, skipped_tasks,"
        " running_tasks, created_at, started_at, completed_at, concurrency, find_links,"
        " max_pages, include_paths, exclude_paths, required_workers, error_message,"
        " source_type, source_detail, source_info, scheduler_id FROM jobs ORDER BY id"
    ),
}


def _seed_view(conn: Conn) -> dict[str, list[Any]]:
    return {table: conn.execute(query).fetchall() for table, query in SEED_VIEW.items()}


def test_upgrading_a_database_holding_schedulers_and_jobs_loses_nothing(
    empty_databases: NewDatabase, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    url = empty_databases()
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", url)
    assert migrate(Settings(), upto="0002_schedulers").migrations == HEAD[:2]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_ROWS)
        before = _seed_view(conn)
        assert [len(rows) for rows in before.values()] == [2, 3, 4, 3]

    applied = run_cli_subprocess(["migrate", "--json"], {"SCHEDCTL_DATABASE_URL": url})
    assert applied.code == 0, applied.stderr
    assert json.loads(applied.stdout)["migrations"] == HEAD[2:]

    with psycopg.connect(url, autocommit=True) as conn:
        assert _seed_view(conn) == before  # every row, every value, as it was
        assert [name for name, _ in _applied(conn)] == HEAD
        assert conn.execute("SELECT count(*) FROM schedctl.scheduler_settings").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM schedctl.served_slots").fetchone() == (0,)

        # The upgraded rows work like any other: shown, listed, and ticked.
        shown = cli("show", "acme.com", "--org", "Acme", "--json")
        assert shown.code == 0, shown.stderr
        doc = json.loads(shown.stdout)
        assert (doc["concurrency"], doc["find_links"], doc["max_pages"]) == (5, False, 100)
        assert (doc["include_paths"], doc["exclude_paths"]) == (["/blog"], ["/admin"])
        assert doc["last_job"]["id"] == "job-2"
        history = cli("history", "acme.com", "--org", "Acme", "--json")
        assert [job["id"] for job in json.loads(history.stdout)] == ["job-2", "job-1"]
        listed = cli("list", "--all-orgs", "--json")
        assert len(json.loads(listed.stdout)) == 4

        ticked = cli("tick", "--json")
        assert ticked.code == 0, ticked.stderr
        summary = json.loads(ticked.stdout)
        assert (summary["due"], summary["created"], summary["missed"]) == (2, 2, 1)
        made = conn.execute(
            "SELECT scheduler_id::text, concurrency, find_links, max_pages, include_paths,"
            " exclude_paths, required_workers FROM jobs"
            " WHERE id IN (SELECT job_id FROM schedctl.served_slots) ORDER BY 1"
        ).fetchall()
        assert made == [
            ("00000000-0000-4000-8000-0000000000a1", 5, False, 100, '["/blog"]', '["/admin"]', 2),
            ("00000000-0000-4000-8000-0000000000b1", 20, True, 0, None, None, 1),
        ]
        # The replace policy cancelled the host's running job of acme.com, as the host would.
        assert conn.execute("SELECT status FROM jobs WHERE id = 'job-2'").fetchone() == (
            "cancelled",
        )
        # Nothing else changed: the finished jobs and the other schedulers are as they were.
        after = _seed_view(conn)
        assert after["organisations"] == before["organisations"]
        assert after["domains"] == before["domains"]
        assert [job for job in after["jobs"] if job[0] in ("job-1", "job-3")] == [
            job for job in before["jobs"] if job[0] in ("job-1", "job-3")
        ]
