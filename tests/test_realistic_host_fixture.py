"""The realistic host fixture (fixtures/realistic_host.sql, realistic_host.py) is what it
claims to be: it loads into any empty database, its tables are under row-level security,
Supabase's default privileges expose new tables in public, its triggers fire, and
add_history makes the rows it is asked for."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from tests.helpers import NewDatabase
from tests.realistic_host import TYPED_DOMAINS, add_history, load_realistic_host

RLS_TABLES = (
    "organisations",
    "organisation_members",
    "domains",
    "schedulers",
    "jobs",
    "tasks",
)
HOST_TABLES = (*RLS_TABLES, "plans", "users", "notifications")


@pytest.fixture
def host_url(empty_database_url: str) -> str:
    load_realistic_host(empty_database_url)
    return empty_database_url


@pytest.fixture
def host(host_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(host_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def more_empty_databases(new_database: NewDatabase) -> list[str]:
    """Three more empty databases on the same server (dropped in the background after the
    test: a drop waits for a checkpoint of the whole server)."""
    return [new_database() for _ in range(3)]


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {name for (name,) in rows}


def test_loads_again_where_the_roles_exist_even_at_the_same_time(
    host_url: str, more_empty_databases: list[str]
) -> None:
    first, *together = more_empty_databases
    load_realistic_host(first)
    with ThreadPoolExecutor(len(together)) as pool:
        list(pool.map(load_realistic_host, together))
    for url in (host_url, *more_empty_databases):
        assert set(HOST_TABLES) <= _tables(url)
    with psycopg.connect(host_url) as conn:
        roles = dict(
            (name, (login, bypass))
            for name, login, bypass in conn.execute(
                "SELECT rolname, rolcanlogin, rolbypassrls FROM pg_roles "
                "WHERE rolname IN ('anon', 'authenticated', 'service_role')"
            ).fetchall()
        )
    assert roles == {
        "anon": (False, False),
        "authenticated": (False, False),
        "service_role": (False, True),
    }


def test_row_level_security_is_enabled_not_forced(host: psycopg.Connection[Any]) -> None:
    rows = host.execute(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relname = ANY (%s)",
        [list(RLS_TABLES)],
    ).fetchall()
    assert {name: (enabled, forced) for name, enabled, forced in rows} == {
        name: (True, False) for name in RLS_TABLES
    }


def test_policies_limit_a_signed_in_user_to_their_organisation(
    host: psycopg.Connection[Any], host_url: str
) -> None:
    add_history(host_url, schedulers=20, jobs_per_scheduler=2, organisations=2)
    user, organisation = host.execute(
        "SELECT user_id, organisation_id FROM organisation_members LIMIT 1"
    ).fetchone() or (None, None)
    with host.transaction(force_rollback=True):
        host.execute("SET LOCAL ROLE authenticated")
        host.execute("SELECT set_config('request.jwt.claim.sub', %s, true)", [str(user)])
        seen = host.execute("SELECT DISTINCT organisation_id FROM schedulers").fetchall()
        jobs = host.execute("SELECT DISTINCT organisation_id FROM jobs").fetchall()
        domains = host.execute("SELECT count(*) FROM domains").fetchone()
        refused = host.execute("UPDATE domains SET crawl_delay_seconds = 1").rowcount
    assert seen == [(organisation,)] and jobs == [(organisation,)]
    assert domains == (10,)  # the ones its jobs crawled
    assert refused == 0  # no update policy on domains
    with host.transaction(force_rollback=True):
        host.execute("SET LOCAL ROLE anon")
        assert host.execute("SELECT count(*) FROM jobs").fetchone() == (0,)


def test_anon_can_read_a_table_created_later_in_public(host: psycopg.Connection[Any]) -> None:
    """Supabase's default privileges: what anything created in public after the host
    (schedctl's tables included) is exposed to, unless it is protected on purpose."""
    host.execute("CREATE TABLE public.created_later (secret text)")
    host.execute("INSERT INTO public.created_later VALUES ('visible')")
    host.execute("CREATE SEQUENCE public.created_later_seq")
    with host.transaction(force_rollback=True):
        host.execute("SET LOCAL ROLE anon")
        assert host.execute("SELECT secret FROM public.created_later").fetchall() == [("visible",)]
        host.execute("INSERT INTO public.created_later VALUES ('written by anyone')")
        host.execute("SELECT nextval('public.created_later_seq')")


def _job(host: psycopg.Connection[Any]) -> str:
    organisation = host.execute(
        "INSERT INTO organisations (name) VALUES ('Acme') RETURNING id"
    ).fetchone()
    domain = host.execute(
        "INSERT INTO domains (name) VALUES ('Mixed-Case.com') RETURNING id"
    ).fetchone()
    job_id = str(uuid.uuid4())
    host.execute(
        "INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at, "
        "concurrency, find_links, max_pages) "
        "VALUES (%s, %s, %s, 'pending', 0, now(), 20, true, 0)",
        [job_id, domain[0] if domain else None, organisation[0] if organisation else None],
    )
    return job_id


def test_job_triggers_set_times_compute_stats_and_notify(host: psycopg.Connection[Any]) -> None:
    job_id = _job(host)
    host.execute("UPDATE jobs SET status = 'running' WHERE id = %s", [job_id])
    started, completed = host.execute(
        "SELECT started_at, completed_at FROM jobs WHERE id = %s", [job_id]
    ).fetchone() or (None, None)
    assert started is not None and completed is None
    host.execute("UPDATE jobs SET status = 'completed' WHERE id = %s", [job_id])
    row = host.execute(
        "SELECT completed_at, stats, duration_seconds FROM jobs WHERE id = %s", [job_id]
    ).fetchone()
    assert row is not None and row[0] is not None and row[1] is not None and row[2] is not None
    notes = host.execute("SELECT type, title FROM notifications WHERE job_id = %s", [job_id])
    assert notes.fetchall() == [("job_completed", "Crawl completed: Mixed-Case.com")]

    # Cancelling (what `replace` does) notifies nobody; failing does.
    second, third = _second_job(host, job_id), _second_job(host, job_id)
    host.execute("UPDATE jobs SET status = 'cancelled' WHERE id = %s", [second])
    host.execute("UPDATE jobs SET status = 'failed' WHERE id = %s", [third])
    kinds = host.execute(
        "SELECT j.id, j.completed_at IS NOT NULL, n.type FROM jobs j "
        "LEFT JOIN notifications n ON n.job_id = j.id WHERE j.id IN (%s, %s)",
        [second, third],
    ).fetchall()
    assert sorted(kinds) == sorted([(second, True, None), (third, True, "job_failed")])


def _second_job(host: psycopg.Connection[Any], like: str) -> str:
    job_id = str(uuid.uuid4())
    host.execute(
        "INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at, "
        "concurrency, find_links, max_pages) "
        "SELECT %s, domain_id, organisation_id, 'running', 0, now(), 20, true, 0 "
        "FROM jobs WHERE id = %s",
        [job_id, like],
    )
    return job_id


def test_task_triggers_keep_the_job_up_to_date(host: psycopg.Connection[Any]) -> None:
    job_id = _job(host)
    host.execute(
        "INSERT INTO tasks (job_id, path, source_type) VALUES (%s, '/', 'root'), "
        "(%s, '/blog', 'sitemap'), (%s, '/about', 'link')",
        [job_id, job_id, job_id],
    )

    def job() -> tuple[Any, ...] | None:
        return host.execute(
            "SELECT status, total_tasks, pending_tasks, running_tasks, completed_tasks, "
            "sitemap_tasks, found_tasks, round(progress) FROM jobs WHERE id = %s",
            [job_id],
        ).fetchone()

    assert job() == ("pending", 3, 3, 0, 0, 1, 1, 0)
    host.execute("UPDATE tasks SET status = 'running' WHERE job_id = %s AND path = '/'", [job_id])
    assert job() == ("running", 3, 2, 1, 0, 1, 1, 0)
    host.execute(
        "UPDATE tasks SET status = 'completed', response_time_ms = 120 WHERE job_id = %s",
        [job_id],
    )
    assert job() == ("completed", 3, 0, 0, 3, 1, 1, 100)
    stats = host.execute("SELECT stats FROM jobs WHERE id = %s", [job_id]).fetchone()
    assert stats is not None and stats[0]["avg_response_ms"] == 120
    notes = host.execute("SELECT count(*) FROM notifications WHERE job_id = %s", [job_id])
    assert notes.fetchone() == (1,)
    host.execute("DELETE FROM tasks WHERE job_id = %s AND path = '/about'", [job_id])
    assert job() == ("completed", 2, 0, 0, 2, 1, 1, 100)


def _schema(host: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Every index, constraint and trigger of the host's tables, as definitions."""
    return host.execute(
        """
        SELECT 'index', indexrelid::regclass::text, pg_get_indexdef(indexrelid)
        FROM pg_index WHERE indrelid IN ('jobs'::regclass, 'tasks'::regclass,
                                         'notifications'::regclass)
        UNION ALL
        SELECT 'constraint', conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        UNION ALL
        SELECT 'trigger', tgname, pg_get_triggerdef(oid) || tgenabled::text
        FROM pg_trigger WHERE NOT tgisinternal
        ORDER BY 1, 2
        """
    ).fetchall()


def test_add_history_makes_the_rows_asked_for(host: psycopg.Connection[Any], host_url: str) -> None:
    before = _schema(host)
    made = add_history(host_url, schedulers=60, jobs_per_scheduler=10, active_fraction=0.5, due=21)
    assert _schema(host) == before  # the bulk load put every index, key and trigger back
    assert (made.schedulers, made.due, made.finished_jobs, made.active_jobs) == (60, 21, 600, 10)

    def one(query: str) -> Any:
        row = host.execute(query.encode()).fetchone()
        assert row is not None
        return row[0] if len(row) == 1 else row

    assert one("SELECT count(*) FROM organisations") == 1
    assert one("SELECT count(*) FROM schedulers WHERE next_run_at <= now()") == 21
    assert one(
        "SELECT count(*) FROM domains WHERE name = ANY (ARRAY['Mixed-Case.com', "
        "'mixed-case.com', 'bücher.de', 'Café-Crème.fr'])"
    ) == len(TYPED_DOMAINS)
    assert one(
        "SELECT count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled') "
        "AND completed_at IS NOT NULL), count(*) FILTER (WHERE scheduler_id IS NULL) "
        "FROM jobs"
    ) == (600, 60)
    # Each active job belongs to a due scheduler's domain and organisation, one at most.
    assert one(
        "SELECT count(*), count(DISTINCT (j.domain_id, j.organisation_id)), "
        "count(*) FILTER (WHERE s.next_run_at <= now()) "
        "FROM jobs j JOIN schedulers s USING (domain_id, organisation_id) "
        "WHERE j.status IN ('pending', 'initializing', 'running', 'paused')"
    ) == (10, 10, 10)
    # The schedulers carry the seed's defaults, written as the host's code writes them.
    assert one("SELECT count(*) FROM schedulers WHERE required_workers = 1 AND is_enabled") == 60
