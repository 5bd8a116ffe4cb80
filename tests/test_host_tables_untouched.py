"""A host that already has its tables, shaped as the real service's are (more columns, its own
indexes, triggers, row-level security, a tasks table, a scheduler_id foreign key without a
delete rule): `migrate` leaves every one of them exactly as it was, and schedctl works with
them as they are."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.helpers import (
    HEAD_MIGRATION,
    Result,
    assert_error,
    make_due,
    make_org,
    make_scheduler,
    run_cli,
)

Conn = psycopg.Connection[tuple[Any, ...]]
Cli = Callable[..., Result]

# The host's schema, as its own migrations made it before schedctl arrived: the seed's columns
# and more, its own indexes and triggers, RLS enabled (not forced) on domains, column and
# table grants, a comment, and tables schedctl knows nothing of.
HOST_SCHEMA = """
CREATE TABLE public.organisations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    plan_id TEXT NOT NULL DEFAULT 'free',
    quota_reset_at TIMESTAMPTZ DEFAULT (date_trunc('month', now()) + interval '1 month')
);
CREATE TABLE public.organisation_members (
    organisation_id UUID NOT NULL REFERENCES public.organisations (id) ON DELETE CASCADE,
    user_id UUID NOT NULL,
    PRIMARY KEY (organisation_id, user_id)
);

CREATE TABLE public.domains (
    id SERIAL PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    crawl_delay_seconds INTEGER NOT NULL DEFAULT 0,
    adaptive_delay_seconds INTEGER NOT NULL DEFAULT 0,
    robots_checked_at TIMESTAMPTZ
);
ALTER TABLE public.domains ENABLE ROW LEVEL SECURITY;
CREATE POLICY domains_insert ON public.domains FOR INSERT TO PUBLIC WITH CHECK (true);
GRANT SELECT (id, name) ON public.domains TO PUBLIC;

CREATE TABLE public.schedulers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    domain_id INTEGER NOT NULL REFERENCES public.domains (id) ON DELETE CASCADE,
    organisation_id UUID NOT NULL REFERENCES public.organisations (id) ON DELETE CASCADE,
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
CREATE INDEX idx_schedulers_next_run ON public.schedulers (next_run_at) WHERE is_enabled = TRUE;
CREATE INDEX idx_schedulers_organisation ON public.schedulers (organisation_id);

CREATE TABLE public.jobs (
    id TEXT PRIMARY KEY,
    domain_id INTEGER NOT NULL REFERENCES public.domains (id) ON DELETE CASCADE,
    user_id UUID,
    organisation_id UUID REFERENCES public.organisations (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    progress REAL NOT NULL,
    sitemap_tasks INTEGER NOT NULL DEFAULT 0,
    found_tasks INTEGER NOT NULL DEFAULT 0,
    total_tasks INTEGER NOT NULL DEFAULT 0,
    completed_tasks INTEGER NOT NULL DEFAULT 0,
    failed_tasks INTEGER NOT NULL DEFAULT 0,
    skipped_tasks INTEGER NOT NULL DEFAULT 0,
    running_tasks INTEGER NOT NULL DEFAULT 0 CHECK (running_tasks >= 0),
    pending_tasks INTEGER NOT NULL DEFAULT 0,
    waiting_tasks INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
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
    stats JSONB,
    scheduler_id UUID REFERENCES public.schedulers (id),
    duration_seconds INTEGER
        GENERATED ALWAYS AS (extract(epoch FROM completed_at - started_at)::integer) STORED,
    avg_time_per_task_seconds NUMERIC GENERATED ALWAYS AS (
        CASE WHEN completed_tasks > 0
             THEN extract(epoch FROM completed_at - started_at) / completed_tasks END
    ) STORED
);
COMMENT ON TABLE public.jobs IS 'crawl jobs, manual and scheduled';
CREATE INDEX idx_jobs_domain_id ON public.jobs (domain_id);
CREATE INDEX idx_jobs_organisation_id ON public.jobs (organisation_id);
CREATE INDEX idx_jobs_org_status_created ON public.jobs (organisation_id, status, created_at DESC);
CREATE INDEX idx_jobs_status_created ON public.jobs (status, created_at DESC);
CREATE INDEX idx_jobs_scheduler_id ON public.jobs (scheduler_id) WHERE scheduler_id IS NOT NULL;
CREATE INDEX idx_jobs_running ON public.jobs (started_at) WHERE status = 'running';
GRANT SELECT ON public.jobs TO PUBLIC;

CREATE FUNCTION public.set_job_timestamps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'running' AND NEW.started_at IS NULL THEN
        NEW.started_at := now();
    END IF;
    IF NEW.status IN ('completed', 'failed', 'cancelled') AND NEW.completed_at IS NULL THEN
        NEW.completed_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER set_job_timestamps BEFORE INSERT OR UPDATE ON public.jobs
    FOR EACH ROW EXECUTE FUNCTION public.set_job_timestamps();

CREATE TABLE public.job_notifications (
    id BIGSERIAL PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES public.jobs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE FUNCTION public.notify_job_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('completed', 'failed') AND NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO public.job_notifications (job_id, kind) VALUES (NEW.id, NEW.status);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER notify_job_finished AFTER UPDATE OF status ON public.jobs
    FOR EACH ROW EXECUTE FUNCTION public.notify_job_finished();

CREATE TABLE public.tasks (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id TEXT NOT NULL REFERENCES public.jobs (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped', 'waiting'))
);
CREATE INDEX idx_tasks_job_status ON public.tasks (job_id, status);
CREATE FUNCTION public.count_job_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE public.jobs SET total_tasks = total_tasks + 1 WHERE id = NEW.job_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER count_job_tasks AFTER INSERT ON public.tasks
    FOR EACH ROW EXECUTE FUNCTION public.count_job_tasks();
"""

# Rows the host already has: an organisation, a domain, a finished job with its tasks.
HOST_ROWS = """
INSERT INTO public.organisations (id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'Host');
INSERT INTO public.domains (name) VALUES ('host-site.com');
INSERT INTO public.jobs (id, domain_id, organisation_id, status, progress, created_at,
                         concurrency, find_links, max_pages, source_type)
SELECT 'host-job-1', id, '00000000-0000-4000-8000-000000000001', 'completed', 1, now(),
       5, TRUE, 0, 'manual'
FROM public.domains;
INSERT INTO public.tasks (job_id, path, status) VALUES ('host-job-1', '/', 'completed');
"""

# What makes up the definition of the relations of schema public, each read from the catalog
# in a form that does not depend on the server's version or on what the planner estimates.
_CATALOG = {
    "schema": """
        SELECT nspname, pg_get_userbyid(nspowner), nspacl::text
        FROM pg_namespace WHERE nspname = 'public'
    """,
    "relations": """
        SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text,
               c.relrowsecurity, c.relforcerowsecurity, c.relpersistence, c.reloptions::text,
               c.relreplident, obj_description(c.oid, 'pg_class')
        FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
        ORDER BY c.relname
    """,
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
               a.attisdropped, a.attacl::text, a.attcollation, col_description(c.oid, a.attnum)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0
        ORDER BY c.relname, a.attnum
    """,
    # The host's own constraints, and any constraint elsewhere that references its tables.
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid),
               condeferrable, condeferred, convalidated, connamespace::regnamespace::text
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
           OR confrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
        ORDER BY 1, 2
    """,
    "indexes": """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisvalid,
               i.indisready, i.indisunique, i.indisprimary, i.indisreplident, i.indisclustered
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        WHERE c.relnamespace = 'public'::regnamespace
        ORDER BY 1
    """,
    # Internal triggers too: a foreign key to a host table adds two of them to that table.
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled,
               t.tgisinternal
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'public'::regnamespace
        ORDER BY 1, 2
    """,
    "policies": """
        SELECT p.polrelid::regclass::text, p.polname, p.polcmd, p.polpermissive,
               p.polroles::regrole[]::text, pg_get_expr(p.polqual, p.polrelid),
               pg_get_expr(p.polwithcheck, p.polrelid)
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.relnamespace = 'public'::regnamespace
        ORDER BY 1, 2
    """,
    "rules": """
        SELECT tablename, rulename, definition FROM pg_rules WHERE schemaname = 'public'
        ORDER BY 1, 2
    """,
    "sequences": """
        SELECT s.seqrelid::regclass::text, s.seqtypid::regtype::text, s.seqstart,
               s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        WHERE c.relnamespace = 'public'::regnamespace
        ORDER BY 1
    """,
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.proacl::text,
               md5(p.prosrc), p.provolatile, p.prosecdef, p.proconfig::text
        FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
        ORDER BY 1
    """,
    "default_privileges": """
        SELECT defaclrole::regrole::text, defaclnamespace, defaclobjtype, defaclacl::text
        FROM pg_default_acl ORDER BY 1, 2, 3
    """,
}


def catalog_snapshot(conn: Conn) -> dict[str, list[tuple[Any, ...]]]:
    """The definition of everything in schema public, from the catalog."""
    return {name: conn.execute(statement).fetchall() for name, statement in _CATALOG.items()}


def rows_snapshot(conn: Conn) -> dict[str, tuple[Any, ...]]:
    """Row count and a digest of the contents of every table in schema public."""
    tables = [
        str(row[0])
        for row in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind = 'r' ORDER BY relname"
        ).fetchall()
    ]
    out: dict[str, tuple[Any, ...]] = {}
    for table in tables:
        row = conn.execute(
            f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM public.{table} t"
        ).fetchone()
        assert row is not None
        out[table] = tuple(row)
    return out


@pytest.fixture
def host_url(empty_database_url: str) -> str:
    """A database holding the host's own schema and a few of its rows; not migrated."""
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(HOST_SCHEMA)
        conn.execute(HOST_ROWS)
    return empty_database_url


@pytest.fixture
def host_conn(host_url: str) -> Iterator[Conn]:
    with psycopg.connect(host_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def schedctl(host_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """schedctl in this process against the host's database."""
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", host_url)

    def invoke(*args: str) -> Result:
        return run_cli(list(args))

    return invoke


@pytest.fixture
def migrated(schedctl: Cli) -> Cli:
    """The host's database after `schedctl migrate`."""
    result = schedctl("migrate")
    assert result.code == 0, result.stderr
    return schedctl


def test_migrate_leaves_every_host_table_as_it_was(schedctl: Cli, host_conn: Conn) -> None:
    definitions, rows = catalog_snapshot(host_conn), rows_snapshot(host_conn)

    first = schedctl("migrate")
    assert first.code == 0, first.stderr
    assert f"applied {HEAD_MIGRATION}" in first.stdout.splitlines()
    assert host_conn.execute("SELECT to_regclass('schedctl.served_slots')").fetchone() != (None,)
    assert catalog_snapshot(host_conn) == definitions
    assert rows_snapshot(host_conn) == rows

    again = schedctl("migrate")
    assert (again.code, again.stdout) == (0, "schema is up to date\n"), again.stderr
    assert catalog_snapshot(host_conn) == definitions
    assert rows_snapshot(host_conn) == rows


def test_the_snapshot_sees_a_change_of_each_kind(host_conn: Conn) -> None:
    """The comparison above is only as good as the snapshot: each kind of change shows."""
    changes = [
        "ALTER TABLE public.jobs ALTER COLUMN required_workers SET DEFAULT 1",
        "ALTER TABLE public.jobs ADD COLUMN scheduler_slot TIMESTAMPTZ",
        "CREATE INDEX ON public.jobs (domain_id, organisation_id)",
        "ALTER TABLE public.jobs DROP CONSTRAINT jobs_scheduler_id_fkey, ADD FOREIGN KEY "
        "(scheduler_id) REFERENCES public.schedulers (id) ON DELETE SET NULL",
        "CREATE TABLE public.elsewhere (s UUID REFERENCES public.schedulers (id))",
        "ALTER TABLE public.jobs DISABLE TRIGGER set_job_timestamps",
        "ALTER TABLE public.schedulers ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE public.domains FORCE ROW LEVEL SECURITY",
        "DROP POLICY domains_insert ON public.domains",
        "REVOKE SELECT ON public.jobs FROM PUBLIC",
        "REVOKE SELECT (name) ON public.domains FROM PUBLIC",
        "ALTER TABLE public.jobs ALTER COLUMN organisation_id SET NOT NULL",
    ]
    for change in changes:
        with host_conn.transaction(force_rollback=True):
            before = catalog_snapshot(host_conn)
            host_conn.execute(change)
            assert catalog_snapshot(host_conn) != before, change


def test_migrate_adds_no_foreign_key_or_trigger_to_the_hosts_tables(
    migrated: Cli, host_conn: Conn
) -> None:
    referencing = host_conn.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint "
        "WHERE connamespace = 'schedctl'::regnamespace AND contype = 'f'"
    ).fetchall()
    assert referencing == []
    # The host's jobs.scheduler_id keeps its "no action" rule.
    assert host_conn.execute(
        "SELECT confdeltype FROM pg_constraint WHERE conname = 'jobs_scheduler_id_fkey'"
    ).fetchone() == ("a",)


def test_delete_keeps_the_jobs_although_the_hosts_foreign_key_has_no_delete_rule(
    migrated: Cli, host_conn: Conn
) -> None:
    org = make_org(migrated, "Acme")
    doc = make_scheduler(migrated, "example.com", "--org", org)
    make_due(host_conn, doc["id"])
    ticked = migrated("tick", "--json")
    assert ticked.code == 0, ticked.stderr
    [made] = json.loads(ticked.stdout)["jobs"]
    # A job the host itself linked to the scheduler, with a task of its own.
    host_conn.execute(
        """
        INSERT INTO public.jobs (id, domain_id, organisation_id, status, progress, created_at,
                                 concurrency, find_links, max_pages, source_type, source_detail,
                                 scheduler_id)
        SELECT 'host-linked', domain_id, organisation_id, 'completed', 1, now(), 20, TRUE, 0,
               'scheduler', id::text, id
        FROM public.schedulers WHERE id = %s
        """,
        [doc["id"]],
    )
    host_conn.execute("INSERT INTO public.tasks (job_id, path) VALUES ('host-linked', '/a')")

    result = migrated("delete", "example.com", "--yes", "--json", "--org", org)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"id": doc["id"], "deleted": True}

    assert host_conn.execute(
        "SELECT count(*) FROM public.schedulers WHERE id = %s", [doc["id"]]
    ).fetchone() == (0,)
    kept = host_conn.execute(
        "SELECT id, scheduler_id, source_detail FROM public.jobs "
        "WHERE id IN (%s, 'host-linked') ORDER BY id",
        [made["job_id"]],
    ).fetchall()
    assert sorted(kept) == sorted(
        [(made["job_id"], None, doc["id"]), ("host-linked", None, doc["id"])]
    )
    assert host_conn.execute(
        "SELECT count(*) FROM public.tasks WHERE job_id = 'host-linked'"
    ).fetchone() == (1,)
    # Nothing else of the host's went with it.
    assert host_conn.execute("SELECT count(*) FROM public.jobs").fetchone() == (3,)
    assert host_conn.execute(
        "SELECT confdeltype FROM pg_constraint WHERE conname = 'jobs_scheduler_id_fkey'"
    ).fetchone() == ("a",)


def test_a_scheduler_the_host_inserted_with_the_seeds_columns_is_ticked_with_defaults(
    migrated: Cli, host_conn: Conn
) -> None:
    org = "00000000-0000-4000-8000-000000000001"
    row = host_conn.execute(
        """
        INSERT INTO public.schedulers (domain_id, organisation_id, schedule_interval_hours,
                                       next_run_at)
        SELECT id, %s, 6, now() - interval '1 minute' FROM public.domains
        WHERE name = 'host-site.com'
        RETURNING id::text, domain_id, next_run_at
        """,
        [org],
    ).fetchone()
    assert row is not None
    scheduler_id, domain_id, slot = row
    # The host's own active job of that domain, started by its create-job flow.
    host_conn.execute(
        """
        INSERT INTO public.jobs (id, domain_id, organisation_id, status, progress, created_at,
                                 concurrency, find_links, max_pages, source_type)
        VALUES ('host-running', %s, %s, 'running', 0.4, now(), 5, TRUE, 0, 'manual')
        """,
        [domain_id, org],
    )

    shown = migrated("show", scheduler_id, "--json", "--org", org)
    assert shown.code == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert (doc["overlap_policy"], doc["pause_reason"], doc["domain"]) == (
        "replace",
        None,
        "host-site.com",
    )
    listed = migrated("list", "--json", "--org", org)
    assert listed.code == 0, listed.stderr
    assert [s["id"] for s in json.loads(listed.stdout)] == [scheduler_id]

    ticked = migrated("tick", "--json")
    assert ticked.code == 0, ticked.stderr
    summary = json.loads(ticked.stdout)
    assert (summary["due"], summary["created"], summary["skipped"], summary["failed"]) == (
        1,
        1,
        0,
        0,
    )
    [made] = summary["jobs"]
    assert made["scheduler_id"] == scheduler_id
    job = host_conn.execute(
        """
        SELECT status, progress, concurrency, find_links, max_pages, required_workers,
               include_paths, exclude_paths, source_type, source_detail, source_info,
               scheduler_id::text, domain_id, organisation_id::text
        FROM public.jobs WHERE id = %s
        """,
        [made["job_id"]],
    ).fetchone()
    assert job == (
        "pending",
        0,
        20,
        True,
        0,
        1,
        None,
        None,
        "scheduler",
        scheduler_id,
        None,
        scheduler_id,
        domain_id,
        org,
    )
    assert host_conn.execute(
        "SELECT status, completed_at IS NOT NULL FROM public.jobs WHERE id = 'host-running'"
    ).fetchone() == ("cancelled", True)
    assert host_conn.execute(
        "SELECT count(*) FROM public.jobs WHERE domain_id = %s AND organisation_id = %s "
        "AND status IN ('pending', 'initializing', 'running', 'paused')",
        [domain_id, org],
    ).fetchone() == (1,)
    moved = host_conn.execute(
        "SELECT next_run_at > now(), next_run_at - %s FROM public.schedulers WHERE id = %s",
        [slot, scheduler_id],
    ).fetchone()
    assert moved is not None and moved[0] is True
    assert moved[1].total_seconds() == 6 * 3600


# Objects of the host's own that bear the names of what schedctl 0.1 added to the host's
# tables (a column the host added itself gets PostgreSQL's default check constraint name).
HOST_LOOKALIKES = {
    "index": "CREATE INDEX idx_jobs_active_domain_org ON public.jobs (domain_id, organisation_id) "
    "WHERE status = 'running'",
    "jobs column": "ALTER TABLE public.jobs ADD COLUMN scheduler_slot TIMESTAMPTZ;"
    "UPDATE public.jobs SET scheduler_slot = now()",
    "schedulers columns": "ALTER TABLE public.schedulers"
    " ADD COLUMN overlap_policy TEXT NOT NULL DEFAULT 'skip'"
    " CHECK (overlap_policy IN ('replace', 'skip')),"
    " ADD COLUMN pause_reason TEXT",
    "schedulers column": "ALTER TABLE public.schedulers"
    " ADD COLUMN overlap_policy TEXT NOT NULL DEFAULT 'skip'"
    " CHECK (overlap_policy IN ('replace', 'skip'))",
}


@pytest.mark.parametrize("lookalike", sorted(HOST_LOOKALIKES))
def test_host_objects_named_like_schedctl_0_1s_are_kept(
    schedctl: Cli, host_conn: Conn, lookalike: str
) -> None:
    """schedctl 0.1 never migrated this database: objects of the host's own that happen to
    bear the names of 0.1's are the host's, and stay as they are, with their data."""
    host_conn.execute(HOST_LOOKALIKES[lookalike])
    host_conn.execute(
        "INSERT INTO public.schedulers (domain_id, organisation_id, schedule_interval_hours, "
        "next_run_at) SELECT id, '00000000-0000-4000-8000-000000000001', 6, now() "
        "FROM public.domains"
    )
    definitions, rows = catalog_snapshot(host_conn), rows_snapshot(host_conn)
    result = schedctl("migrate")
    assert result.code == 0, result.stderr
    assert catalog_snapshot(host_conn) == definitions
    assert rows_snapshot(host_conn) == rows


def test_a_migration_the_hosts_schema_refuses_fails_on_one_error_line(
    schedctl: Cli, host_conn: Conn
) -> None:
    """A host whose schedulers table has an integer id and whose jobs lack scheduler_id:
    0002 cannot add the foreign key. migrate fails (exit 1) with one error line, and the
    host's tables are as they were."""
    host_conn.execute(
        """
        ALTER TABLE public.jobs DROP COLUMN scheduler_id;
        DROP TABLE public.schedulers;
        CREATE TABLE public.schedulers (
            id SERIAL PRIMARY KEY,
            domain_id INTEGER NOT NULL REFERENCES public.domains (id),
            organisation_id UUID NOT NULL REFERENCES public.organisations (id)
        );
        """
    )
    definitions = catalog_snapshot(host_conn)
    result = schedctl("migrate")
    message = assert_error(result, 1)
    assert "migration failed" in message
    assert catalog_snapshot(host_conn) == definitions
