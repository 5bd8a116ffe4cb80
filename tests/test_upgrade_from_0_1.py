"""Upgrading a database that schedctl 0.1 migrated and used: everything it kept moves into
schedctl's schema, the host's tables lose what 0.1 added to them, no served slot is served
again, and the host's inserts never stall behind the upgrade's locks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from schedctl.migrate import yoyo_url
from tests.helpers import MIGRATIONS, cli_against, cli_env

FIXTURE = Path(__file__).parent / "fixtures" / "schedctl_0_1"

ACME = "00000000-0000-4000-8000-00000000000a"
SERVED = "00000000-0000-4000-8000-0000000000a1"  # skip policy; its slot was served by 0.1
PAUSED = "00000000-0000-4000-8000-0000000000a2"  # paused with a reason
PLAIN = "00000000-0000-4000-8000-0000000000a3"  # replace, enabled, due

# What schedctl 0.1 left in a database it migrated and ran: settings in the host's
# schedulers, a served slot on the host's jobs, its audit trail and heartbeat in public.
DATA_0_1 = f"""
INSERT INTO organisations (id, name) VALUES ('{ACME}', 'Acme');
INSERT INTO domains (id, name) VALUES (1, 'served.com'), (2, 'paused.com'), (3, 'plain.com');
INSERT INTO schedulers (id, domain_id, organisation_id, schedule_interval_hours, next_run_at,
                        is_enabled, overlap_policy, pause_reason)
VALUES ('{SERVED}', 1, '{ACME}', 6, '2026-01-01T06:00:00Z', TRUE, 'skip', NULL),
       ('{PAUSED}', 2, '{ACME}', 24, now() + interval '1 hour', FALSE, 'allow', 'billing hold'),
       ('{PLAIN}', 3, '{ACME}', 12, now() - interval '1 minute', TRUE, 'replace', NULL);
INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at, concurrency,
                  find_links, max_pages, source_type, source_detail, scheduler_id,
                  scheduler_slot)
VALUES ('job-served', 1, '{ACME}', 'completed', 100, '2026-01-01T06:00:01Z', 20, TRUE, 0,
        'scheduler', '{SERVED}', '{SERVED}', '2026-01-01T06:00:00Z');
INSERT INTO scheduler_audit (at, actor, action, scheduler_id, organisation_id, domain, changes)
VALUES ('2026-01-01T00:00:00Z', 'alice', 'create', '{SERVED}', '{ACME}', 'served.com', '{{}}'),
       ('2026-01-02T00:00:00Z', 'bob', 'pause', '{PAUSED}', '{ACME}', 'paused.com', '{{}}');
INSERT INTO tick_heartbeats (host, ticked_at, ok, due, created, skipped, failed, missed)
VALUES ('old-host', '2026-01-01T06:00:02Z', TRUE, 1, 1, 0, 0, 0);
-- next_run_at set back onto the served slot: the slot must not be served again.
UPDATE schedulers SET next_run_at = '2026-01-01T06:00:00Z' WHERE id = '{SERVED}';
"""


def _migrate_as_0_1(url: str) -> None:
    """Apply schedctl 0.1's own migrations, as 0.1 did: yoyo's bookkeeping in public."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_url(url, 10, schema=None))
    try:
        backend.apply_migrations(backend.to_apply(read_migrations(str(FIXTURE))))
    finally:
        backend.connection.close()


def _columns(conn: psycopg.Connection[Any], table: str) -> set[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped",
        [table],
    ).fetchall()
    return {str(name) for (name,) in rows}


@pytest.fixture
def db_0_1(empty_database_url: str) -> str:
    _migrate_as_0_1(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(DATA_0_1)
    return empty_database_url


def test_an_upgrade_from_0_1_keeps_everything_and_gives_the_host_its_tables_back(
    db_0_1: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = cli_against(db_0_1, monkeypatch)
    upgraded = cli("migrate", "--json")
    assert upgraded.code == 0, upgraded.stderr
    report = json.loads(upgraded.stdout)
    assert report["migrations"] == MIGRATIONS[3:]
    assert sorted(report["removed_from_host_tables"]) == [
        "index idx_jobs_active_domain_org",
        "jobs.scheduler_slot",
        "schedulers.overlap_policy and schedulers.pause_reason",
    ]

    with psycopg.connect(db_0_1, autocommit=True) as conn:
        # The host's tables are back to the seed's shape.
        assert "scheduler_slot" not in _columns(conn, "public.jobs")
        assert not {"overlap_policy", "pause_reason"} & _columns(conn, "public.schedulers")
        assert conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
            " AND indexname IN ('idx_jobs_active_domain_org', 'uq_jobs_scheduler_slot')"
        ).fetchone() == (0,)
        # Nothing of schedctl's is left in public; yoyo's records moved with the rest.
        assert conn.execute(
            "SELECT array_agg(tablename ORDER BY tablename) FROM pg_tables"
            " WHERE schemaname = 'public'"
        ).fetchone() == (["domains", "jobs", "organisations", "schedulers"],)
        assert conn.execute(
            "SELECT array_agg(migration_id ORDER BY migration_id) FROM schedctl._yoyo_migration"
        ).fetchone() == (MIGRATIONS,)
        assert conn.execute(
            "SELECT scheduler_id::text, overlap_policy, pause_reason"
            " FROM schedctl.scheduler_settings ORDER BY 1"
        ).fetchall() == [(SERVED, "skip", None), (PAUSED, "allow", "billing hold")]
        assert conn.execute(
            "SELECT scheduler_id::text, job_id FROM schedctl.served_slots"
        ).fetchall() == [(SERVED, "job-served")]
        assert conn.execute("SELECT actor, action FROM schedctl.audit ORDER BY id").fetchall() == [
            ("alice", "create"),
            ("bob", "pause"),
        ]
        assert conn.execute("SELECT host FROM schedctl.tick_heartbeats").fetchall() == [
            ("old-host",)
        ]

    # The settings read back through the CLI as they were.
    shown = cli("show", PAUSED, "--json")
    assert shown.code == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert (doc["overlap_policy"], doc["is_enabled"], doc["pause_reason"]) == (
        "allow",
        False,
        "billing hold",
    )

    # The slot 0.1 served is not served again; the other due scheduler is.
    ticked = cli("tick", "--json")
    assert ticked.code == 0, ticked.stderr
    summary = json.loads(ticked.stdout)
    assert [job["scheduler_id"] for job in summary["jobs"]] == [PLAIN]
    assert (summary["due"], summary["created"], summary["skipped"]) == (2, 1, 1)
    with psycopg.connect(db_0_1, autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM jobs WHERE scheduler_id = %s", [SERVED]
        ).fetchone() == (1,)

    again = cli("migrate")
    assert (again.code, again.stdout) == (0, "schema is up to date\n")


def test_the_upgrade_never_stalls_the_hosts_inserts_behind_a_reader(db_0_1: str) -> None:
    """A host transaction holds jobs open while the upgrade runs: each DDL statement on a
    host table waits only briefly for its lock and tries again later, so the host's
    inserts never queue behind it for long."""
    hold = 4.0
    stalls: list[float] = []
    stop = threading.Event()

    def insert_loop() -> None:
        with psycopg.connect(db_0_1, autocommit=True) as conn:
            last = time.monotonic()
            n = 0
            while not stop.is_set():
                n += 1
                conn.execute(
                    "INSERT INTO jobs (id, domain_id, organisation_id, status, progress,"
                    " created_at, concurrency, find_links, max_pages)"
                    " VALUES (%s, 3, %s, 'completed', 1, now(), 1, TRUE, 0)",
                    [f"host-{n}", ACME],
                )
                now = time.monotonic()
                stalls.append(now - last)
                last = now
                time.sleep(0.01)

    with psycopg.connect(db_0_1) as reader:
        reader.execute("SELECT count(*) FROM jobs")  # holds an ACCESS SHARE lock on jobs
        inserter = threading.Thread(target=insert_loop)
        inserter.start()
        time.sleep(0.3)
        started = time.monotonic()
        upgrade = subprocess.Popen(
            [sys.executable, "-m", "schedctl", "migrate", "--json"],
            env=cli_env({"SCHEDCTL_DATABASE_URL": db_0_1, "SCHEDCTL_LOCK_TIMEOUT": "60"}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(hold)
        assert upgrade.poll() is None, "the upgrade did not wait for the reader"
        reader.rollback()
    out, err = upgrade.communicate(timeout=120)
    elapsed = time.monotonic() - started
    time.sleep(0.3)
    stop.set()
    inserter.join()
    assert upgrade.returncode == 0, err
    assert "jobs.scheduler_slot" in json.loads(out)["removed_from_host_tables"]
    assert elapsed >= hold
    assert len(stalls) > 20
    assert max(stalls) < 1.0, f"the longest stall of a host insert was {max(stalls):.2f} s"
