"""pytest fixtures that start servers of a test's own (see servers.py): private PostgreSQL
clusters, hot standbys and PgBouncers, each stopped and removed when the test ends.

A test module loads them with `pytest_plugins = ("tests.conftest_servers",)`. When pgbouncer or
the PostgreSQL server binaries are not installed, a test that starts one is skipped with the
reason; under CI (the `CI` environment variable set, and not `0` or `false`) it fails."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack

import pytest

from tests.servers import (
    PgBouncer,
    PoolMode,
    PostgresCluster,
    Setting,
    StartCluster,
    StartPgBouncer,
    StartStandby,
    enter_or_skip,
    hot_standby,
    pgbouncer,
    postgres_cluster,
)


@pytest.fixture
def start_cluster() -> Iterator[StartCluster]:
    """start_cluster({"max_connections": 10}) -> a running private cluster."""
    with ExitStack() as stack:

        def start(
            settings: Mapping[str, Setting] | None = None, *, major: int | None = None
        ) -> PostgresCluster:
            return enter_or_skip(stack, postgres_cluster(settings, major=major))

        yield start


# start_standby and start_pgbouncer depend on start_cluster so that they are torn down first:
# a standby or a bouncer stops before the cluster it is attached to.


@pytest.fixture
def start_standby(start_cluster: StartCluster) -> Iterator[StartStandby]:
    """start_standby(primary) -> a running hot standby of a cluster from start_cluster."""
    with ExitStack() as stack:

        def start(
            primary: PostgresCluster, settings: Mapping[str, Setting] | None = None
        ) -> PostgresCluster:
            return enter_or_skip(stack, hot_standby(primary, settings))

        yield start


@pytest.fixture
def start_pgbouncer(start_cluster: StartCluster) -> Iterator[StartPgBouncer]:
    """start_pgbouncer(server_url, pool_mode="transaction", default_pool_size=1) -> a
    running PgBouncer in front of that server."""
    with ExitStack() as stack:

        def start(
            server_url: str,
            *,
            pool_mode: PoolMode = "transaction",
            default_pool_size: int = 20,
            users: Sequence[str] = (),
            settings: Mapping[str, Setting] | None = None,
        ) -> PgBouncer:
            return enter_or_skip(
                stack,
                pgbouncer(
                    server_url,
                    pool_mode=pool_mode,
                    default_pool_size=default_pool_size,
                    users=users,
                    settings=settings,
                ),
            )

        yield start
