"""The index of active jobs on jobs. On the host's own table it is opt-in: `migrate
--active-jobs-index` builds it without blocking writes (replacing an invalid leftover of a
killed build), and a plain `migrate` suggests it when jobs is large and has no index that serves
the same look-up. On a jobs table that schedctl makes itself, the host having none, migrate
builds it with the table."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.helpers import Result, messages
from tests.test_host_tables_untouched import catalog_snapshot

Conn = psycopg.Connection[tuple[Any, ...]]
Cli = Callable[..., Result]

INDEX = "schedctl_jobs_active_idx"
# The index as PostgreSQL prints it back (the same from version 13 to 18).
EXPECTED_DEFINITION = (
    "CREATE INDEX schedctl_jobs_active_idx ON public.jobs USING btree (domain_id, organisation_id) "
    "WHERE (status = ANY (ARRAY['pending'::text, 'initializing'::text, 'running'::text, "
    "'paused'::text]))"
)
ADVICE_ROWS = 100_000


@pytest.fixture
def conn(conn: Conn) -> Conn:
    """The test's database, its jobs standing for a host's own table: schedctl made it (the
    database was new), and with it the index, which is dropped here, as a host's jobs table
    made before schedctl's migrations has none."""
    conn.execute(f"DROP INDEX public.{INDEX}")
    return conn


def index_state(conn: Conn) -> tuple[Any, ...] | None:
    """The opt-in index's oid, definition, and whether it is valid, ready and unique."""
    row = conn.execute(
        """
        SELECT i.indexrelid::oid, pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisready,
               i.indisunique
        FROM pg_index i
        WHERE i.indexrelid = to_regclass('public.schedctl_jobs_active_idx')
        """
    ).fetchone()
    return tuple(row) if row is not None else None


def without_the_index(snapshot: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[Any]]:
    """A catalog snapshot leaving out every row that concerns the opt-in index."""
    return {
        kind: [row for row in rows if not any(INDEX in str(value) for value in row)]
        for kind, rows in snapshot.items()
    }


def fill_jobs(conn: Conn, rows: int) -> None:
    """`rows` finished jobs of one domain and organisation, then fresh planner statistics."""
    conn.execute(
        """
        WITH org AS (
            INSERT INTO public.organisations (name) VALUES ('History') RETURNING id
        ), dom AS (
            INSERT INTO public.domains (name) VALUES ('history.com') RETURNING id
        )
        INSERT INTO public.jobs (id, domain_id, organisation_id, status, progress, created_at,
                                 concurrency, find_links, max_pages)
        SELECT 'old-' || n, dom.id, org.id, 'completed', 1,
               now() - make_interval(mins => n), 5, TRUE, 0
        FROM generate_series(1, %s) AS n, org, dom
        """,
        [rows],
    )
    conn.execute("ANALYZE public.jobs")


def jobs_estimate(conn: Conn) -> int:
    row = conn.execute(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = 'public.jobs'::regclass"
    ).fetchone()
    assert row is not None
    return int(row[0])


def assert_hint(result: Result) -> None:
    """Exit 0 and exactly one stderr line: the hint, naming the option that builds the index."""
    assert result.code == 0, result.stderr
    lines = messages(result.stderr).splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hint: "), result.stderr
    assert "--active-jobs-index" in lines[0], result.stderr


def assert_no_hint(result: Result) -> None:
    assert result.code == 0, result.stderr
    assert messages(result.stderr) == "", result.stderr


# ---------------------------------------------------------------- building it


def test_the_option_builds_a_valid_index_and_changes_nothing_else(cli: Cli, conn: Conn) -> None:
    before = catalog_snapshot(conn)
    assert index_state(conn) is None
    dry = cli("migrate", "--dry-run", "--active-jobs-index", "--json")
    assert dry.code == 0, dry.stderr
    assert json.loads(dry.stdout)["active_jobs_index_created"] is False
    assert catalog_snapshot(conn) == before

    result = cli("migrate", "--active-jobs-index", "--json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["active_jobs_index_created"], doc["active_jobs_index_advised"]) == (True, False)
    state = index_state(conn)
    assert state is not None
    assert state[1:] == (EXPECTED_DEFINITION, True, True, False)
    assert without_the_index(catalog_snapshot(conn)) == without_the_index(before)

    again = cli("migrate", "--active-jobs-index", "--json")
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)["active_jobs_index_created"] is False
    assert index_state(conn) == state
    plain = cli("migrate", "--active-jobs-index")
    assert (plain.code, plain.stdout, messages(plain.stderr)) == (0, "schema is up to date\n", "")
    assert index_state(conn) == state


def test_the_text_output_says_the_index_was_built(cli: Cli, conn: Conn) -> None:
    result = cli("migrate", "--active-jobs-index")
    assert result.code == 0, result.stderr
    assert result.stdout == f"built index {INDEX} on jobs\n"
    assert messages(result.stderr) == ""


def test_an_invalid_leftover_is_replaced_by_a_valid_index(cli: Cli, conn: Conn) -> None:
    """A build killed part-way leaves an invalid index of that name: the option drops it and
    builds the real one."""
    fill_jobs(conn, 2)  # two jobs of one domain: a unique index on domain_id cannot be built
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {INDEX} ON public.jobs (domain_id)")
    leftover = index_state(conn)
    assert leftover is not None and leftover[2] is False
    before = without_the_index(catalog_snapshot(conn))

    # A plain migrate does not count the invalid index as one that serves the look-up.
    plain = cli("migrate", "--json")
    assert plain.code == 0, plain.stderr
    assert index_state(conn) == leftover

    result = cli("migrate", "--active-jobs-index", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["active_jobs_index_created"] is True
    state = index_state(conn)
    assert state is not None
    assert state[1:] == (EXPECTED_DEFINITION, True, True, False)
    assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = %s", [INDEX]).fetchone() == (
        1,
    )
    assert without_the_index(catalog_snapshot(conn)) == before


# ---------------------------------------------------------------- the hint


def test_a_large_jobs_table_without_the_index_gets_the_hint(cli: Cli, conn: Conn) -> None:
    fill_jobs(conn, ADVICE_ROWS + 500)
    assert jobs_estimate(conn) >= ADVICE_ROWS
    before = catalog_snapshot(conn)

    text = cli("migrate")
    assert_hint(text)
    assert text.stdout == "schema is up to date\n"
    as_json = cli("migrate", "--json")
    assert_hint(as_json)
    doc = json.loads(as_json.stdout)
    assert (doc["active_jobs_index_advised"], doc["active_jobs_index_created"]) == (True, False)
    # The hint is advice only: nothing was built.
    assert catalog_snapshot(conn) == before

    built = cli("migrate", "--active-jobs-index", "--json")
    assert_no_hint(built)
    doc = json.loads(built.stdout)
    assert (doc["active_jobs_index_advised"], doc["active_jobs_index_created"]) == (False, True)
    assert_no_hint(cli("migrate"))
    after = cli("migrate", "--json")
    assert_no_hint(after)
    assert json.loads(after.stdout)["active_jobs_index_advised"] is False


# Indexes the host may have made itself, and whether the hint is still given with each.
HOST_INDEXES = [
    ("CREATE INDEX host_active ON public.jobs (organisation_id, domain_id, status)", False),
    ("CREATE INDEX host_active ON public.jobs (domain_id, organisation_id)", False),
    ("CREATE INDEX host_active ON public.jobs (domain_id)", True),
    ("CREATE INDEX host_active ON public.jobs (domain_id, status, organisation_id)", True),
    ("CREATE INDEX host_active ON public.jobs (organisation_id, status, created_at DESC)", True),
]


def test_a_hosts_own_index_leading_with_domain_and_organisation_counts(
    cli: Cli, conn: Conn
) -> None:
    fill_jobs(conn, ADVICE_ROWS + 500)
    for statement, advised in HOST_INDEXES:
        conn.execute(statement)
        result = cli("migrate", "--json")
        if advised:
            assert_hint(result)
        else:
            assert_no_hint(result)
        assert json.loads(result.stdout)["active_jobs_index_advised"] is advised, statement
        conn.execute("DROP INDEX public.host_active")


def test_a_hosts_index_partial_to_finished_jobs_does_not_count(cli: Cli, conn: Conn) -> None:
    fill_jobs(conn, ADVICE_ROWS + 500)
    conn.execute(
        "CREATE INDEX host_finished ON public.jobs (domain_id, organisation_id) "
        "WHERE status IN ('completed', 'failed')"
    )
    assert_hint(cli("migrate"))
    built = cli("migrate", "--active-jobs-index", "--json")
    assert built.code == 0, built.stderr
    assert json.loads(built.stdout)["active_jobs_index_created"] is True
    state = index_state(conn)
    assert state is not None
    assert state[1:] == (EXPECTED_DEFINITION, True, True, False)


def test_a_small_jobs_table_gets_no_hint(cli: Cli, conn: Conn) -> None:
    fill_jobs(conn, 5_000)
    text = cli("migrate")
    assert_no_hint(text)
    as_json = cli("migrate", "--json")
    assert_no_hint(as_json)
    assert json.loads(as_json.stdout)["active_jobs_index_advised"] is False


# ---------------------------------------------------------------- schedctl's own jobs table


def test_a_jobs_table_migrate_makes_itself_gets_the_index_with_it(empty_database_url: str) -> None:
    from tests.helpers import run_cli_subprocess

    result = run_cli_subprocess(
        ["migrate", "--json"], {"SCHEDCTL_DATABASE_URL": empty_database_url}
    )
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    # Part of the new table, like its primary key: not reported as an opt-in build.
    assert (doc["active_jobs_index_created"], doc["active_jobs_index_advised"]) == (False, False)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        state = index_state(conn)
        assert state is not None
        assert state[1:] == (EXPECTED_DEFINITION, True, True, False)
        again = run_cli_subprocess(
            ["migrate", "--active-jobs-index", "--json"],
            {"SCHEDCTL_DATABASE_URL": empty_database_url},
        )
        assert again.code == 0, again.stderr
        assert json.loads(again.stdout)["active_jobs_index_created"] is False
        assert index_state(conn) == state


JOBS_INDEXES = "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'jobs'"


def test_a_hosts_own_jobs_table_gets_no_index_without_the_option(empty_database_url: str) -> None:
    from tests.helpers import run_cli_subprocess
    from tests.test_host_tables_untouched import HOST_ROWS, HOST_SCHEMA

    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(HOST_SCHEMA)
        conn.execute(HOST_ROWS)
        before = {row[0] for row in conn.execute(JOBS_INDEXES)}
        result = run_cli_subprocess(["migrate"], {"SCHEDCTL_DATABASE_URL": empty_database_url})
        assert result.code == 0, result.stderr
        assert index_state(conn) is None
        added = {row[0] for row in conn.execute(JOBS_INDEXES)} - before
    # At most the index of jobs.scheduler_id, where migrate added that column.
    assert all("scheduler_id" in name for name in added), added
