"""`migrate` as a host's database sees it: a migrate waiting its turn gives up after
SCHEDCTL_LOCK_TIMEOUT whatever the role's statement timeout, naming the migrate that holds
the lock; and where the host's jobs lack scheduler_id, migrate adds it, its foreign key and
its index without blocking the host's inserts, and finishes the job after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schedctl.config import Settings
from schedctl.migrate import _ADVISORY_KEY, migrate
from tests.helpers import (
    HEAD_MIGRATION,
    Conn,
    NewDatabase,
    assert_error,
    fetch_one,
    finish_cli_process,
    run_cli_subprocess,
    start_cli_process,
)

pytestmark = pytest.mark.slow

LOCK_TIMEOUT = 2.0


def _as_role(url: str, role: str) -> str:
    params = conninfo_to_dict(url)
    params["user"] = role
    params.pop("password", None)
    return make_conninfo("", **params)


@pytest.fixture
def short_statement_role(database_url: str) -> Iterator[str]:
    """A role that may migrate, whose statements are cancelled after 200 ms (as in a
    production-limits setting); dropped after the test."""
    role = "schedctl_st_" + os.urandom(4).hex()
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN SUPERUSER")
        admin.execute(f"ALTER ROLE {role} SET statement_timeout = '200ms'")
    try:
        yield role
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def _migrate_env(url: str, **extra: str) -> dict[str, str]:
    return {"SCHEDCTL_DATABASE_URL": url, **extra}


# ---------------------------------------------------------------- waiting for another migrate


@pytest.mark.parametrize("statement_timeout", [None, "200ms"])
def test_migrates_against_a_held_lock_give_up_after_the_lock_timeout(
    database_url: str, short_statement_role: str, statement_timeout: str | None
) -> None:
    """Two migrates started while another session holds the migrate lock (for as long as
    the test lasts) each exit 4 before it is released, naming the holder, having waited
    their turn for SCHEDCTL_LOCK_TIMEOUT; also as a role with a 200 ms statement timeout."""
    url = (
        database_url if statement_timeout is None else _as_role(database_url, short_statement_role)
    )
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_KEY])
        holder_pid = holder.info.backend_pid
        started = time.monotonic()
        procs = [
            start_cli_process(
                ["migrate"], _migrate_env(url, SCHEDCTL_LOCK_TIMEOUT=f"{LOCK_TIMEOUT:g}")
            )
            for _ in range(2)
        ]
        results = [finish_cli_process(proc, timeout=60) for proc in procs]
        elapsed = time.monotonic() - started
        # Still held: neither waited for it to be released.
        assert (
            fetch_one(
                holder,
                "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"
                " AND locktype = 'advisory' AND granted",
            )[0]
            == 1
        )
    for result in results:
        message = assert_error(result, 4)
        assert message.startswith(f"another migrate is running (pid {holder_pid}, since "), message
        assert "SCHEDCTL_LOCK_TIMEOUT" in message
    # They waited their turn rather than giving up at once (a lower bound only).
    assert elapsed >= LOCK_TIMEOUT
    print(f"two migrates against a held lock exited 4 after {elapsed:.2f} s in all")


def test_a_migrate_waiting_its_turn_outlives_a_short_statement_timeout(
    database_url: str, short_statement_role: str
) -> None:
    """As a role whose statements are cancelled after 200 ms, a migrate that waits longer
    than that for the lock is not cancelled: it runs once the lock is released."""
    url = _as_role(database_url, short_statement_role)
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_KEY])
        proc = start_cli_process(["migrate"], _migrate_env(url, SCHEDCTL_LOCK_TIMEOUT="60"))
        deadline = time.monotonic() + 30
        while not fetch_one(
            holder,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE usename = %s AND datname = current_database()",
            [short_statement_role],
        )[0]:
            assert proc.poll() is None, finish_cli_process(proc)
            assert time.monotonic() < deadline, "the migrate never connected"
            time.sleep(0.05)
        time.sleep(1.5)  # several statement timeouts long
        assert proc.poll() is None, finish_cli_process(proc)
        holder.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_KEY])
        result = finish_cli_process(proc, timeout=60)
    assert result.code == 0, result.stderr
    assert result.stdout == "schema is up to date\n"


def test_a_role_with_a_short_statement_timeout_migrates_a_new_database(
    new_database: NewDatabase, server_url: str
) -> None:
    """Every migration (and the online completion of jobs.scheduler_id) runs as long as it
    needs, whatever the role's statement timeout."""
    url = new_database()
    role = "schedctl_st_" + os.urandom(4).hex()
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN SUPERUSER")
        admin.execute(f"ALTER ROLE {role} SET statement_timeout = '200ms'")
    try:
        result = run_cli_subprocess(["migrate"], _migrate_env(_as_role(url, role)))
        assert result.code == 0, result.stderr
        with psycopg.connect(url) as conn:
            assert fetch_one(conn, "SELECT max(migration_id) FROM schedctl._yoyo_migration")[0] == (
                HEAD_MIGRATION
            )
            _assert_scheduler_id_complete(conn)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


# ---------------------------------------------------------------- jobs.scheduler_id, online

_INSERT_JOB = (
    "INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,"
    " concurrency, find_links, max_pages) SELECT gen_random_uuid()::text, d.id, o.id,"
    " 'completed', 1, now(), 20, true, 0 FROM domains d, organisations o LIMIT 1"
)

_INSERT_JOB_OF_NO_SCHEDULER = (
    "INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,"
    " concurrency, find_links, max_pages, scheduler_id) SELECT gen_random_uuid()::text, d.id,"
    " o.id, 'pending', 0, now(), 20, true, 0, gen_random_uuid()"
    " FROM domains d, organisations o LIMIT 1"
)


def _host_without_scheduler_id(new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database whose host tables exist, with jobs lacking scheduler_id and holding rows."""
    url = new_database()
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", url)
    migrate(Settings(), upto="0001_host_tables")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO organisations (name) VALUES ('Acme')")
        conn.execute("INSERT INTO domains (name) VALUES ('example.com')")
        conn.execute(
            "INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,"
            " concurrency, find_links, max_pages) SELECT gen_random_uuid()::text, d.id, o.id,"
            " 'completed', 1, now(), 20, true, 0"
            " FROM domains d, organisations o, generate_series(1, 5000)"
        )
    return url


def _scheduler_id_state(conn: Conn) -> tuple[str | None, ...]:
    row = conn.execute(
        "SELECT"
        " (SELECT format_type(atttypid, atttypmod) || ' ' || attnotnull::text FROM pg_attribute"
        "  WHERE attrelid = 'public.jobs'::regclass AND attname = 'scheduler_id'),"
        " (SELECT convalidated::text || ' ' || confrelid::regclass::text FROM pg_constraint"
        "  WHERE conrelid = 'public.jobs'::regclass"
        "  AND conname = 'schedctl_jobs_scheduler_id_fkey'),"
        " (SELECT indisvalid::text || ' ' || pg_get_indexdef(indexrelid) FROM pg_index"
        "  WHERE indexrelid = to_regclass('public.schedctl_jobs_scheduler_id_idx'))"
    ).fetchone()
    assert row is not None
    return tuple(row)


def _assert_scheduler_id_complete(conn: Conn) -> None:
    assert _scheduler_id_state(conn) == (
        "uuid false",
        "true schedulers",
        "true CREATE INDEX schedctl_jobs_scheduler_id_idx ON public.jobs USING btree"
        " (scheduler_id) WHERE (scheduler_id IS NOT NULL)",
    )


def test_a_host_jobs_without_scheduler_id_gets_the_column_a_valid_foreign_key_and_index(
    new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _host_without_scheduler_id(new_database, monkeypatch)
    result = run_cli_subprocess(["migrate"], _migrate_env(url))
    assert result.code == 0, result.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        _assert_scheduler_id_complete(conn)
        # The foreign key holds: a job of no scheduler is refused.
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(_INSERT_JOB_OF_NO_SCHEDULER)
    again = run_cli_subprocess(["migrate"], _migrate_env(url))
    assert (again.code, again.stdout) == (0, "schema is up to date\n"), again.stderr


def _wait_for_index_build(watcher: Conn, proc: subprocess.Popen[str]) -> int:
    """The backend pid of the migrate building the index, once it waits for the host's
    open transaction."""
    deadline = time.monotonic() + 60
    while True:
        row = watcher.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND query LIKE '%%CREATE INDEX%%schedctl_jobs_scheduler_id_idx%%'"
            " AND wait_event_type = 'Lock'"
        ).fetchone()
        if row is not None:
            return int(row[0])
        assert proc.poll() is None, finish_cli_process(proc)
        assert time.monotonic() < deadline, "migrate never reached the index build"
        time.sleep(0.05)


def test_the_hosts_inserts_go_on_while_the_index_builds_and_a_killed_build_is_redone(
    new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that stopped before the index (its state is made by hand: the column and the
    validated foreign key, no index) builds it CONCURRENTLY: while the build waits for a
    host transaction, the migrate session holds no lock on jobs stronger than SHARE UPDATE
    EXCLUSIVE and another host session inserts at once. Killed there, the build leaves an
    invalid index, which the next migrate drops and builds again."""
    url = _host_without_scheduler_id(new_database, monkeypatch)
    assert run_cli_subprocess(["migrate"], _migrate_env(url)).code == 0
    with psycopg.connect(url, autocommit=True) as watcher, psycopg.connect(url) as open_txn:
        watcher.execute("DROP INDEX schedctl_jobs_scheduler_id_idx")
        open_txn.execute(_INSERT_JOB)  # a host transaction left open on jobs
        proc = start_cli_process(["migrate"], _migrate_env(url, SCHEDCTL_LOCK_TIMEOUT="120"))
        pid = _wait_for_index_build(watcher, proc)
        modes = {
            mode
            for (mode,) in watcher.execute(
                "SELECT mode FROM pg_locks WHERE pid = %s AND relation = 'public.jobs'::regclass",
                [pid],
            )
        }
        assert modes == {"ShareUpdateExclusiveLock"}, modes
        with psycopg.connect(url, autocommit=True) as host:
            host.execute("SET lock_timeout = '5s'")
            host.execute(_INSERT_JOB)  # not blocked by the build
        # Killed: the client, and its session with it.
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        watcher.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 30
        while watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert str(_scheduler_id_state(watcher)[2]).startswith("false "), _scheduler_id_state(
            watcher
        )
        open_txn.commit()
    result = run_cli_subprocess(["migrate"], _migrate_env(url))
    assert result.code == 0, result.stderr
    with psycopg.connect(url) as conn:
        _assert_scheduler_id_complete(conn)


def test_a_foreign_key_left_not_valid_by_a_killed_run_is_validated_by_the_next(
    new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _host_without_scheduler_id(new_database, monkeypatch)
    assert run_cli_subprocess(["migrate"], _migrate_env(url)).code == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE jobs DROP CONSTRAINT schedctl_jobs_scheduler_id_fkey,"
            " ADD CONSTRAINT schedctl_jobs_scheduler_id_fkey FOREIGN KEY (scheduler_id)"
            " REFERENCES schedulers (id) NOT VALID"
        )
        conn.execute("DROP INDEX schedctl_jobs_scheduler_id_idx")
        assert _scheduler_id_state(conn)[1] == "false schedulers"
    result = run_cli_subprocess(["migrate"], _migrate_env(url))
    assert result.code == 0, result.stderr
    with psycopg.connect(url) as conn:
        _assert_scheduler_id_complete(conn)
