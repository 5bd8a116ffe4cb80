"""`schedctl migrate`: idempotent, a dry run that applies nothing, and an install on top of a
host application's own schema that already has the tables (and the seed's schedulers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.helpers import MIGRATIONS, Cli, Conn, assert_error, cli_against, make_due, messages

# What migrate --json says beside the migrations when it has nothing else to report.
QUIET = {
    "removed_from_host_tables": [],
    "completed_on_host_tables": [],
    "active_jobs_index_created": False,
    "active_jobs_index_advised": False,
}

# What the first migrate of a database without jobs.scheduler_id finishes after the
# migrations: the foreign key added NOT VALID is validated, the index built concurrently.
ONLINE_STEPS = [
    "validated foreign key schedctl_jobs_scheduler_id_fkey on jobs",
    "built index schedctl_jobs_scheduler_id_idx on jobs",
]


def _report(stdout: str) -> Any:
    """migrate's JSON report, without the database it names (tested in its own file)."""
    doc = json.loads(stdout)
    assert set(doc.pop("connection")) == {"host", "port", "database", "user"}
    return doc


@pytest.fixture
def empty_cli(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """schedctl in this process against the empty (not migrated) database."""
    return cli_against(empty_database_url, monkeypatch)


@pytest.fixture
def empty_conn(empty_database_url: str) -> Iterator[Conn]:
    with psycopg.connect(empty_database_url, autocommit=True) as connection:
        yield connection


def _tables(conn: Conn, schema: str = "public") -> set[str]:
    """The tables of a schema, leaving out yoyo's bookkeeping (its names start with _)."""
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename NOT LIKE '\\_%%'",
        [schema],
    ).fetchall()
    return {str(row[0]) for row in rows}


def _applied(conn: Conn) -> list[str]:
    if conn.execute("SELECT to_regclass('schedctl._yoyo_migration')").fetchone() == (None,):
        return []
    rows = conn.execute("SELECT migration_id FROM schedctl._yoyo_migration ORDER BY migration_id")
    return [str(row[0]) for row in rows.fetchall()]


def test_migrate_applies_everything_then_is_a_no_op(empty_cli: Cli, empty_conn: Conn) -> None:
    first = empty_cli("migrate")
    assert first.code == 0, first.stderr
    assert first.stdout.splitlines() == [f"applied {name}" for name in MIGRATIONS] + ONLINE_STEPS
    assert _applied(empty_conn) == MIGRATIONS
    assert {"organisations", "domains", "jobs", "schedulers"} == _tables(empty_conn)
    assert _tables(empty_conn, "schedctl") == {
        "audit",
        "hooks",
        "legacy_host_objects",
        "scheduler_settings",
        "served_slots",
        "tick_heartbeats",
        "yoyo_lock",
    }

    second = empty_cli("migrate")
    assert (second.code, second.stdout) == (0, "schema is up to date\n")
    assert messages(second.stderr) == ""
    again = empty_cli("migrate", "--json")
    assert again.code == 0
    assert _report(again.stdout) == {"dry_run": False, "migrations": []} | QUIET
    assert _applied(empty_conn) == MIGRATIONS


def test_migrate_json_lists_what_it_applied(empty_cli: Cli) -> None:
    result = empty_cli("migrate", "--json")
    assert result.code == 0, result.stderr
    assert _report(result.stdout) == {"dry_run": False, "migrations": MIGRATIONS} | QUIET | {
        "completed_on_host_tables": ONLINE_STEPS
    }


def test_dry_run_lists_the_pending_migrations_and_applies_nothing(
    empty_cli: Cli, empty_conn: Conn
) -> None:
    plain = empty_cli("migrate", "--dry-run")
    assert plain.code == 0, plain.stderr
    assert plain.stdout.splitlines() == [f"would apply {name}" for name in MIGRATIONS]
    as_json = empty_cli("migrate", "--dry-run", "--json")
    assert _report(as_json.stdout) == {"dry_run": True, "migrations": MIGRATIONS} | QUIET
    # Not even yoyo's bookkeeping tables: a dry run writes nothing.
    assert empty_conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    ).fetchone() == (0,)
    # The database is still not migrated.
    assert "schedctl migrate" in assert_error(empty_cli("list"), 5)


def test_dry_run_on_a_partly_migrated_database_lists_only_the_rest(
    empty_cli: Cli, empty_conn: Conn
) -> None:
    from schedctl import migrate
    from schedctl.config import Settings

    assert migrate.migrate(Settings(), upto="0002_schedulers").migrations == MIGRATIONS[:2]
    result = empty_cli("migrate", "--dry-run", "--json")
    assert json.loads(result.stdout)["migrations"] == MIGRATIONS[2:]
    assert _applied(empty_conn) == MIGRATIONS[:2]
    assert json.loads(empty_cli("migrate", "--json").stdout)["migrations"] == MIGRATIONS[2:]
    assert _applied(empty_conn) == MIGRATIONS


# ------------------------------------------------------------------ on a host's schema

# The host application's own schema: more columns than schedctl knows, a generated column,
# tables that reference jobs, and the seed plan's schedulers table with a jobs.scheduler_id
# whose foreign key deletes jobs with their scheduler (ON DELETE CASCADE).
HOST_SCHEMA = """
CREATE TABLE organisations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL,
    billing_email TEXT NOT NULL DEFAULT 'billing@acme.invalid',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE domains (
    id SERIAL PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email TEXT NOT NULL
);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    user_id UUID NULL REFERENCES users (id),
    organisation_id UUID REFERENCES organisations (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    progress REAL NOT NULL,
    sitemap_tasks INTEGER NOT NULL DEFAULT 0,
    found_tasks INTEGER NOT NULL DEFAULT 0,
    total_tasks INTEGER NOT NULL DEFAULT 0,
    completed_tasks INTEGER NOT NULL DEFAULT 0,
    failed_tasks INTEGER NOT NULL DEFAULT 0,
    skipped_tasks INTEGER NOT NULL DEFAULT 0,
    running_tasks INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ NULL,
    completed_at TIMESTAMPTZ NULL,
    concurrency INTEGER NOT NULL,
    find_links BOOLEAN NOT NULL,
    max_pages INTEGER NOT NULL,
    include_paths TEXT,
    exclude_paths TEXT,
    required_workers INTEGER DEFAULT 0,
    error_message TEXT,
    source_type TEXT,
    source_detail TEXT,
    source_info TEXT,
    priority INTEGER NOT NULL DEFAULT 5,
    duration_seconds DOUBLE PRECISION
        GENERATED ALWAYS AS (extract(epoch FROM completed_at - started_at)) STORED,
    CONSTRAINT jobs_status_known CHECK (status IN
        ('pending', 'initializing', 'running', 'paused', 'completed', 'failed', 'cancelled'))
);
CREATE TABLE tasks (
    id BIGSERIAL PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    url TEXT NOT NULL
);
CREATE TABLE job_shares (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id),
    token TEXT NOT NULL
);
-- The seed plan's schedulers, created by the host before schedctl existed.
CREATE TABLE schedulers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    domain_id INTEGER NOT NULL REFERENCES domains (id),
    organisation_id UUID NOT NULL REFERENCES organisations (id),
    schedule_interval_hours INTEGER NOT NULL CHECK (schedule_interval_hours IN (6, 12, 24, 48)),
    next_run_at TIMESTAMPTZ NOT NULL,
    is_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    concurrency INTEGER NOT NULL DEFAULT 20,
    find_links BOOLEAN NOT NULL DEFAULT TRUE,
    max_pages INTEGER NOT NULL DEFAULT 0,
    include_paths TEXT,
    exclude_paths TEXT,
    required_workers INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT unique_domain_org UNIQUE (domain_id, organisation_id)
);
CREATE INDEX idx_schedulers_next_run ON schedulers (next_run_at) WHERE is_enabled = TRUE;
CREATE INDEX idx_schedulers_organisation ON schedulers (organisation_id);
ALTER TABLE jobs ADD COLUMN scheduler_id UUID REFERENCES schedulers (id) ON DELETE CASCADE;
CREATE INDEX idx_jobs_scheduler_id ON jobs (scheduler_id) WHERE scheduler_id IS NOT NULL;

INSERT INTO organisations (id, name) VALUES ('11111111-1111-4111-8111-111111111111', 'Acme');
INSERT INTO domains (id, name, verified) VALUES (1, 'acme.com', TRUE), (2, 'acme.org', FALSE);
SELECT setval('domains_id_seq', 2);
INSERT INTO users (id, email) VALUES ('22222222-2222-4222-8222-222222222222', 'ops@acme.com');
INSERT INTO schedulers (id, domain_id, organisation_id, schedule_interval_hours, next_run_at)
VALUES ('33333333-3333-4333-8333-333333333333', 1, '11111111-1111-4111-8111-111111111111', 6,
        now() + interval '2 hours');
INSERT INTO jobs (id, domain_id, user_id, organisation_id, status, progress, created_at,
                  started_at, completed_at, concurrency, find_links, max_pages, source_type,
                  source_detail, scheduler_id, priority)
VALUES ('job-manual-1', 2, '22222222-2222-4222-8222-222222222222',
        '11111111-1111-4111-8111-111111111111', 'completed', 1, '2025-01-01T00:00:00Z',
        '2025-01-01T00:00:00Z', '2025-01-01T00:10:00Z', 10, TRUE, 50, 'dashboard', NULL, NULL, 1),
       ('job-seeded-1', 1, NULL, '11111111-1111-4111-8111-111111111111', 'completed', 1,
        '2025-01-02T00:00:00Z', '2025-01-02T00:00:00Z', '2025-01-02T01:00:00Z', 20, TRUE, 0,
        'scheduler', '33333333-3333-4333-8333-333333333333',
        '33333333-3333-4333-8333-333333333333', 5);
INSERT INTO tasks (job_id, url) VALUES ('job-manual-1', 'https://acme.org/'),
                                       ('job-seeded-1', 'https://acme.com/');
INSERT INTO job_shares (job_id, token) VALUES ('job-manual-1', 'tok');
"""

SEED_SCHEDULER = "33333333-3333-4333-8333-333333333333"
HOST_ORG = "11111111-1111-4111-8111-111111111111"

# The host's data as the host's own columns show it; must read the same after migrate.
HOST_DATA = """
SELECT (SELECT md5(string_agg(o::text, '|' ORDER BY o.id)) FROM organisations o),
       (SELECT md5(string_agg(d::text, '|' ORDER BY d.id)) FROM domains d),
       (SELECT md5(string_agg(u::text, '|' ORDER BY u.id)) FROM users u),
       (SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM tasks t),
       (SELECT md5(string_agg(s::text, '|' ORDER BY s.job_id)) FROM job_shares s),
       (SELECT md5(string_agg(concat_ws(',', id, domain_id, user_id, organisation_id, status,
               progress, created_at, started_at, completed_at, concurrency, find_links,
               max_pages, source_type, source_detail, scheduler_id, priority,
               duration_seconds), '|' ORDER BY id)) FROM jobs)
"""


def _scheduler_fks(conn: Conn) -> list[tuple[str, str]]:
    rows = conn.execute(
        """
        SELECT c.conname, c.confdeltype::text
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.contype = 'f' AND c.conrelid = 'jobs'::regclass
          AND c.confrelid = 'schedulers'::regclass AND a.attname = 'scheduler_id'
        """
    ).fetchall()
    return [(str(name), str(rule)) for name, rule in rows]


def test_install_on_a_host_schema_keeps_its_data_and_its_foreign_key(
    empty_cli: Cli, empty_conn: Conn
) -> None:
    empty_conn.execute(HOST_SCHEMA)
    assert [rule for _, rule in _scheduler_fks(empty_conn)] == ["c"]
    host_data = empty_conn.execute(HOST_DATA).fetchone()

    result = empty_cli("migrate")
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == [f"applied {name}" for name in MIGRATIONS]

    # The host's foreign key is left as it is (delete detaches the jobs itself).
    assert [rule for _, rule in _scheduler_fks(empty_conn)] == ["c"]
    assert empty_conn.execute(HOST_DATA).fetchone() == host_data
    # Host columns were neither dropped nor changed.
    columns = {
        str(row[0])
        for row in empty_conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs'"
        ).fetchall()
    }
    assert {"priority", "duration_seconds", "scheduler_id"} <= columns
    assert "scheduler_slot" not in columns
    # The host's own scheduler has schedctl's defaults.
    shown = json.loads(empty_cli("show", SEED_SCHEDULER, "--json").stdout)
    assert (shown["overlap_policy"], shown["pause_reason"]) == ("replace", None)
    # A second run is a no-op here too.
    again = _report(empty_cli("migrate", "--json").stdout)
    assert again == {"dry_run": False, "migrations": []} | QUIET


def test_the_whole_flow_works_on_a_host_schema(empty_cli: Cli, empty_conn: Conn) -> None:
    empty_conn.execute(HOST_SCHEMA)
    assert empty_cli("migrate").code == 0

    # The seed's scheduler, written by the host, is listed and ticked like any other.
    listed = json.loads(empty_cli("list", "--json").stdout)
    assert [(d["id"], d["domain"], d["overlap_policy"]) for d in listed] == [
        (SEED_SCHEDULER, "acme.com", "replace")
    ]
    created = empty_cli("create", "acme.org", "--every", "12h", "--include", "/blog", "--json")
    assert created.code == 0, created.stderr
    new = json.loads(created.stdout)
    assert new["organisation_id"] == HOST_ORG
    # An existing host domain is reused, not duplicated.
    assert empty_conn.execute("SELECT count(*) FROM domains").fetchone() == (2,)

    # The host inserts a scheduler knowing only the seed's columns.
    empty_conn.execute(
        """
        WITH d AS (INSERT INTO domains (name) VALUES ('acme.net') RETURNING id)
        INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours, next_run_at)
        SELECT id, %s, 24, now() - interval '1 minute' FROM d
        """,
        [HOST_ORG],
    )
    make_due(empty_conn, SEED_SCHEDULER)
    make_due(empty_conn, new["id"])
    ticked = empty_cli("tick", "--json")
    assert ticked.code == 0, ticked.stderr
    summary = json.loads(ticked.stdout)
    assert (summary["due"], summary["created"], summary["failed"]) == (3, 3, 0)
    jobs = empty_conn.execute(
        """
        SELECT d.name, j.status, j.priority, j.duration_seconds, j.include_paths,
               j.source_type, j.source_detail = j.scheduler_id::text
        FROM jobs j JOIN domains d ON d.id = j.domain_id
        WHERE j.id = ANY(%s) ORDER BY d.name
        """,
        [[job["job_id"] for job in summary["jobs"]]],
    ).fetchall()
    assert jobs == [
        ("acme.com", "pending", 5, None, None, "scheduler", True),
        ("acme.net", "pending", 5, None, None, "scheduler", True),
        ("acme.org", "pending", 5, None, '["/blog"]', "scheduler", True),
    ]

    # Deleting the seed's scheduler keeps its jobs (SET NULL, not the old CASCADE).
    deleted = empty_cli("delete", SEED_SCHEDULER, "--yes", "--json")
    assert deleted.code == 0, deleted.stderr
    kept = empty_conn.execute(
        "SELECT id, scheduler_id, source_detail FROM jobs WHERE source_detail = %s ORDER BY id",
        [SEED_SCHEDULER],
    ).fetchall()
    assert len(kept) == 2
    assert "job-seeded-1" in [row[0] for row in kept]
    assert all(row[1] is None for row in kept)
    assert empty_conn.execute("SELECT count(*) FROM tasks").fetchone() == (2,)


def test_a_set_null_foreign_key_already_in_place_is_kept(empty_cli: Cli, empty_conn: Conn) -> None:
    schema = HOST_SCHEMA.replace(
        "REFERENCES schedulers (id) ON DELETE CASCADE",
        "REFERENCES schedulers (id) ON DELETE SET NULL",
    )
    empty_conn.execute(schema)
    before = _scheduler_fks(empty_conn)
    assert [rule for _, rule in before] == ["n"]
    assert empty_cli("migrate").code == 0
    assert _scheduler_fks(empty_conn) == before


def test_a_host_with_the_tables_but_no_scheduler_id_gets_one(
    empty_cli: Cli, empty_conn: Conn
) -> None:
    schema = HOST_SCHEMA.split("-- The seed plan's schedulers")[0]
    empty_conn.execute(schema)
    empty_conn.execute(
        "INSERT INTO organisations (name) VALUES ('Acme');"
        "INSERT INTO domains (name) VALUES ('acme.com');"
    )
    assert empty_cli("migrate").code == 0
    # Added as the seed adds it: no delete rule (delete detaches the jobs itself).
    assert [rule for _, rule in _scheduler_fks(empty_conn)] == ["a"]
    created = empty_cli("create", "acme.com", "--every", "6h", "--start-at", "now", "--json")
    assert created.code == 0, created.stderr
    summary = json.loads(empty_cli("tick", "--json").stdout)
    assert summary["created"] == 1
