"""The test servers themselves: a private cluster runs with its settings and leaves nothing
behind; a hot standby is read-only and follows its primary; PgBouncer forwards queries,
refuses startup options, and in transaction mode shares one server session between its
clients (in session mode it does not)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from tests import servers
from tests.servers import (
    StartCluster,
    StartPgBouncer,
    StartStandby,
    pgbouncer,
    port_is_open,
    postgres_cluster,
    running,
)

pytest_plugins = ("tests.conftest_servers",)

Connection = psycopg.Connection[tuple[Any, ...]]
BACKEND_PID = "SELECT pg_backend_pid()"


def connect(url: str, **params: Any) -> Connection:
    return psycopg.connect(url, autocommit=True, connect_timeout=10, **params)


def one(conn: Connection, query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_private_cluster_runs_with_its_settings_and_leaves_nothing_behind() -> None:
    settings = {"max_connections": 5, "default_transaction_read_only": True}
    with running(postgres_cluster(settings)) as cluster:
        assert cluster.data_dir.stat().st_uid == cluster.folder.stat().st_uid
        conns = [connect(cluster.url()) for _ in range(5)]
        try:
            assert one(conns[0], "SHOW max_connections") == "5"
            assert one(conns[0], "SHOW default_transaction_read_only") == "on"
            assert one(conns[0], "SHOW listen_addresses") == "127.0.0.1"
            with pytest.raises(psycopg.OperationalError, match="too many clients"):
                connect(cluster.url())
        finally:
            for conn in conns:
                conn.close()
        assert port_is_open(cluster.port)
    assert not cluster.folder.exists()
    assert not port_is_open(cluster.port)


def test_private_cluster_is_removed_when_its_block_raises() -> None:
    with pytest.raises(RuntimeError, match="test failed"), running(postgres_cluster()) as cluster:
        with connect(cluster.url()) as conn:
            assert one(conn, "SELECT 1") == 1
        raise RuntimeError("test failed")
    assert not cluster.folder.exists()
    assert not port_is_open(cluster.port)


def test_hot_standby_is_read_only_and_follows_its_primary(
    start_cluster: StartCluster, start_standby: StartStandby
) -> None:
    primary = start_cluster({"max_connections": 5})
    standby = start_standby(primary)
    with connect(primary.url()) as conn:
        conn.execute("CREATE TABLE replicated AS SELECT 42 AS answer")
        lsn = one(conn, "SELECT pg_current_wal_lsn()::text")
    with connect(standby.url()) as conn:
        assert one(conn, "SELECT pg_is_in_recovery()") is True
        assert one(conn, "SHOW max_connections") == "5"
        deadline = time.monotonic() + 10
        while not one(conn, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"):
            assert time.monotonic() < deadline, "the standby did not replay the primary's WAL"
            time.sleep(0.02)
        assert one(conn, "SELECT answer FROM replicated") == 42
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE refused ()")


def test_pgbouncer_forwards_queries_and_refuses_startup_options(
    start_pgbouncer: StartPgBouncer, server_url: str
) -> None:
    for pool_mode in ("transaction", "session"):
        bouncer = start_pgbouncer(server_url, pool_mode=pool_mode, default_pool_size=1)
        with connect(bouncer.url()) as conn:
            assert one(conn, "SELECT current_database()") == bouncer.dbname
        with connect(bouncer.url_for(server_url)) as conn:
            assert one(conn, "SELECT current_user") == bouncer.user
        with pytest.raises(
            psycopg.OperationalError, match="unsupported startup parameter: options"
        ):
            connect(bouncer.url(), options="-c lock_timeout=1000")
        assert "unsupported startup parameter: options" in bouncer.log()


def test_pgbouncer_transaction_mode_shares_one_server_session_between_clients(
    start_pgbouncer: StartPgBouncer, server_url: str
) -> None:
    # A pool of one server connection: every transaction of either client runs on it.
    bouncer = start_pgbouncer(server_url, pool_mode="transaction", default_pool_size=1)
    with connect(bouncer.url()) as first, connect(bouncer.url()) as second:
        assert one(first, BACKEND_PID) == one(second, BACKEND_PID)
        first.execute("SET lock_timeout = '1234ms'")
        assert one(second, "SHOW lock_timeout") == "1234ms"  # one client's SET reaches another
        second.execute("SET lock_timeout = '5678ms'")
        assert one(first, "SHOW lock_timeout") == "5678ms"  # and is lost to the one that made it


def test_pgbouncer_transaction_mode_holds_a_server_connection_per_open_transaction(
    start_pgbouncer: StartPgBouncer, server_url: str
) -> None:
    bouncer = start_pgbouncer(server_url, pool_mode="transaction", default_pool_size=2)
    with (
        connect(bouncer.url()) as first,
        connect(bouncer.url()) as second,
        first.transaction(),
        second.transaction(),
    ):
        assert one(first, BACKEND_PID) != one(second, BACKEND_PID)


def test_pgbouncer_session_mode_keeps_a_server_session_per_client(
    start_pgbouncer: StartPgBouncer, server_url: str
) -> None:
    bouncer = start_pgbouncer(server_url, pool_mode="session", default_pool_size=2)
    with connect(bouncer.url()) as first, connect(bouncer.url()) as second:
        first_pid = one(first, BACKEND_PID)
        first.execute("SET lock_timeout = '1234ms'")
        assert one(second, "SHOW lock_timeout") != "1234ms"
        assert one(first, "SHOW lock_timeout") == "1234ms"
        assert one(first, BACKEND_PID) == first_pid != one(second, BACKEND_PID)


def test_pgbouncer_lets_more_clients_in_than_the_server_allows(
    start_cluster: StartCluster, start_pgbouncer: StartPgBouncer
) -> None:
    cluster = start_cluster({"max_connections": 5})
    bouncer = start_pgbouncer(cluster.url(), pool_mode="transaction", default_pool_size=2)
    clients = [connect(bouncer.url()) for _ in range(8)]
    try:
        assert [one(client, "SELECT 1") for client in clients] == [1] * 8
    finally:
        for client in clients:
            client.close()
    with connect(cluster.url()) as conn:
        from_bouncer = one(
            conn,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
    assert 1 <= from_bouncer <= 2


def test_missing_binaries_skip_outside_ci_and_fail_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(servers, "PGBOUNCER_CANDIDATES", ())
    monkeypatch.delenv("CI", raising=False)
    skipped, failed = pytest.skip.Exception, pytest.fail.Exception
    with (
        pytest.raises(skipped, match="PostgreSQL 1 server binaries"),
        running(postgres_cluster(major=1)),
    ):
        pass
    with (
        pytest.raises(skipped, match="pgbouncer not found"),
        running(pgbouncer("postgresql://postgres@127.0.0.1:1/postgres")),
    ):
        pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(failed, match="CI is set"), running(postgres_cluster(major=1)):
        pass
