"""What the tests share: running schedctl (in this process or as a real one), making
organisations, schedulers and jobs, reading rows back, fingerprinting every table a command
could write, the checks every result must pass, and a small fixed world for hostile input."""

from __future__ import annotations

import fcntl
import functools
import io
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from unittest import mock
from urllib.parse import quote, urlencode

import psycopg
import pytest
import typer
import typer.main
from psycopg import sql
from psycopg.abc import Params
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# Every migration schedctl ships, in the order yoyo applies them, and the newest.
MIGRATIONS = sorted(
    path.stem
    for path in (Path(__file__).parent.parent / "src" / "schedctl" / "migrations").glob("*.sql")
)
HEAD_MIGRATION = MIGRATIONS[-1]

# A connection the tests set up and check with (autocommit, rows as tuples).
Conn = psycopg.Connection[tuple[Any, ...]]

# The settings schedctl reads; none may leak in from the machine running the tests.
ENV_VARS = (
    "SCHEDCTL_DATABASE_URL",
    "DATABASE_URL",
    "SCHEDCTL_ORG",
    "SCHEDCTL_CONNECT_TIMEOUT",
    "SCHEDCTL_LOCK_TIMEOUT",
    "SCHEDCTL_ACTOR",
    "SCHEDCTL_DATA_DIR",
    "SCHEDCTL_MIGRATE_DATABASE_URL",
    "SCHEDCTL_TICK_CONNECTIONS",
)

# Every table a schedctl command may write (the host's and schedctl's own); a refused
# command must leave them all as they were.
WRITABLE_TABLES = (
    "organisations",
    "domains",
    "schedulers",
    "jobs",
    "schedctl.audit",
    "schedctl.tick_heartbeats",
    "schedctl.scheduler_settings",
    "schedctl.served_slots",
    "schedctl.hooks",
)

# The keys of the JSON documents of the command-line contract (SPEC §5), written out here
# rather than taken from schedctl, so that a change to them fails a test.
SCHEDULER_KEYS = {
    "id",
    "organisation_id",
    "domain",
    "schedule_interval_hours",
    "next_run_at",
    "is_enabled",
    "pause_reason",
    "overlap_policy",
    "concurrency",
    "find_links",
    "max_pages",
    "include_paths",
    "exclude_paths",
    "required_workers",
    "created_at",
    "updated_at",
    # schedules in a time zone, spread, catch-up window, pause until (issue 12)
    "at",
    "time_zone",
    "spread_seconds",
    "spread_offset_seconds",
    "catchup_window_seconds",
    "paused_until",
}

# `list` adds each scheduler's last run to the scheduler's keys.
LIST_KEYS = SCHEDULER_KEYS | {"last_run"}

JOB_KEYS = {
    "id",
    "scheduler_id",
    "domain",
    "status",
    "progress",
    "created_at",
    "started_at",
    "completed_at",
    "total_tasks",
    "completed_tasks",
    "failed_tasks",
    "skipped_tasks",
    "slot",
    "trigger",
}

EXIT_CODES = frozenset({0, 1, 2, 3, 4, 5})


# ---------------------------------------------------------------- connection strings


def with_database(url: str, dbname: str) -> str:
    """`url` pointing at another database of the same server."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def as_uri(conninfo: str) -> str:
    """A libpq URI for a key=value conninfo (what schedctl and yoyo are given)."""
    params = conninfo_to_dict(conninfo)
    user = quote(str(params.pop("user", "postgres")))
    password = params.pop("password", None)
    host = str(params.pop("host", ""))
    port = params.pop("port", None)
    dbname = quote(str(params.pop("dbname", "postgres")))
    auth = f"{user}:{quote(str(password))}@" if password else f"{user}@"
    if host.startswith("/"):
        params["host"] = host
        netloc = auth
    else:
        netloc = f"{auth}{host}" + (f":{port}" if port else "")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{netloc}/{dbname}{query}"


# ---------------------------------------------------------------- running schedctl


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


class NewDatabase(Protocol):
    """Makes a database for one test (dropped after it): empty, or a copy of `template`;
    returns its URL."""

    def __call__(self, template: str | None = None) -> str: ...


class Cli(Protocol):
    """schedctl run in this process against a test's database: cli("list", "--json");
    `env` sets more variables for the rest of the test."""

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result: ...


class _BuiltOnce:
    """schedctl's Typer app with its click command built once instead of on every call.

    Typer rebuilds the whole command tree from the function signatures each time the app is
    called (tens of milliseconds, most of an in-process command); a process calls it once,
    the tests thousands of times. Typer's own __call__ adds nothing else that main() relies
    on: it re-raises every error, and main() catches them all.
    """

    def __init__(self, app: typer.Typer) -> None:
        self.command = typer.main.get_command(app)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.command(*args, **kwargs)


@functools.cache
def _built_once(app: typer.Typer) -> _BuiltOnce:
    return _BuiltOnce(app)


def run_cli(args: list[str]) -> Result:
    """schedctl's main() in this process, with stdout and stderr captured apart."""
    import schedctl.cli

    # main() calls the `app` of its own module: the package's `app` is a re-export, and its
    # `main` the function, which hides the module of that name.
    main_module = sys.modules["schedctl.cli.main"]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with (
        mock.patch.object(main_module, "app", _built_once(schedctl.cli.app)),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        try:
            schedctl.cli.main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Result(code, out.getvalue(), err.getvalue())


def cli_against(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """schedctl in this process against `database_url` for the rest of the test."""
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        return run_cli(list(args))

    return invoke


@dataclass
class SharedWorld:
    """A migrated database shared by the tests of one module that each check that a command
    changes nothing in it (conftest's shared_worlds makes one): its setup ran once, before
    the first of them; each test runs schedctl against it with `cli_for(monkeypatch)`."""

    url: str

    def cli_for(self, monkeypatch: pytest.MonkeyPatch) -> Cli:
        return cli_against(self.url, monkeypatch)


class WorldSetup(Protocol):
    """Sets a shared world up: schedctl in-process against it, a connection, a folder."""

    def __call__(self, cli: Cli, conn: Conn, folder: Path) -> None: ...


class SharedWorlds(Protocol):
    def __call__(self, folder: Path, setup: WorldSetup) -> AbstractContextManager[SharedWorld]: ...


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


def sigint_as_at_a_terminal() -> None:
    """A child's preexec_fn: SIGINT handled by default, as Ctrl-C at a terminal reaches it.
    A shell that runs the suite in the background (`&`, nohup) starts it with SIGINT
    ignored, and every child would inherit that; the tests that send SIGINT want the
    terminal's case."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """schedctl started as a real process, not waited for; see finish_cli_process."""
    return subprocess.Popen(
        [sys.executable, "-m", "schedctl", *args],
        env=cli_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )


def finish_cli_process(proc: subprocess.Popen[str], timeout: float = 120) -> Result:
    """Wait for a process (killing it past `timeout`) and return its result."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"still running after {timeout} s: {proc.args!r}")
    return Result(proc.returncode, out, err)


def messages(stderr: str) -> str:
    """stderr without the line `migrate` prints to name the database it acted on."""
    return "".join(
        line
        for line in stderr.splitlines(keepends=True)
        if not line.startswith("schedctl: database ")
    )


def ok_json(result: Result) -> Any:
    """The JSON document a command that succeeded printed."""
    assert result.code == 0, (result.code, result.stdout, result.stderr)
    return json.loads(result.stdout)


def assert_error(result: Result, code: int) -> str:
    """The command failed with `code`, one `error:` line on stderr and nothing on stdout;
    return the message."""
    assert result.code == code, (result.code, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0][len("error: ") :]


_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \"", re.MULTILINE)


def check_result(result: Result, *, verbose: bool = False) -> None:
    """What every result of schedctl must be: a contract exit code, no traceback unless
    -v, and on failure nothing on stdout and one `error:` line, the last on stderr (the
    only one, but for a command group given no command, which shows its help first)."""
    context = (
        f"exit {result.code}\nstdout: {result.stdout[:500]!r}\nstderr: {result.stderr[:2000]!r}"
    )
    assert result.code in EXIT_CODES, context
    if not verbose:
        assert not _TRACEBACK.search(result.stderr), context
    if result.code >= 2:
        assert result.stdout == "", context
        lines = result.stderr.splitlines()
        assert [line for line in lines if line.startswith("error: ")] == lines[-1:], context
        if not verbose and not lines[-1].startswith("error: missing command"):
            assert len(lines) == 1, context


# ---------------------------------------------------------------- making and reading rows


def parse_time(text: str) -> datetime:
    """An RFC 3339 string from schedctl's JSON as an aware datetime (Python 3.10 safe)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def db_now(conn: Conn) -> datetime:
    """The database's clock."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


def fetch_one(
    conn: Conn, query: str | sql.SQL | sql.Composed, params: Params | None = None
) -> tuple[Any, ...]:
    """The first row a query returns; there must be one."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row


def make_org(cli: Cli, name: str) -> str:
    """Create an organisation through the CLI and return its id."""
    result = cli("org", "create", name, "--json")
    assert result.code == 0, result.stderr
    org_id: str = json.loads(result.stdout)["id"]
    return org_id


def make_scheduler(cli: Cli, domain: str, *options: str) -> dict[str, Any]:
    """Create a scheduler through the CLI (`--every 6h` unless given) and return its JSON."""
    args = ["create", domain, *options, "--json"]
    if "--every" not in options:
        args += ["--every", "6h"]
    result = cli(*args)
    assert result.code == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def make_due(conn: Conn, scheduler_id: str, ago: str = "1 minute") -> datetime:
    """Move a scheduler's next run into the past (by the database clock); return it. The
    scheduler then existed at that time: its creation moves back too, where it was later
    (slots from before a scheduler existed are not counted as missed)."""
    row = conn.execute(
        "UPDATE schedulers SET next_run_at = now() - %s::interval,"
        " created_at = LEAST(created_at, now() - %s::interval) WHERE id = %s "
        "RETURNING next_run_at",
        [ago, ago, scheduler_id],
    ).fetchone()
    assert row is not None, scheduler_id
    value: datetime = row[0]
    return value


def insert_active_job(
    conn: Conn, scheduler_id: str, status: str = "running", org: str | None = None
) -> str:
    """A job the host made itself (no scheduler), started an hour ago, for the scheduler's
    domain and organisation (or for `org`); return its id."""
    row = conn.execute(
        """
        INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                          started_at, concurrency, find_links, max_pages, source_type)
        SELECT gen_random_uuid()::text, domain_id, COALESCE(%s::uuid, organisation_id), %s,
               0.5, now() - interval '1 hour', now() - interval '1 hour', 5, TRUE, 0,
               'dashboard'
        FROM schedulers WHERE id = %s
        RETURNING id
        """,
        [org, status, scheduler_id],
    ).fetchone()
    assert row is not None, scheduler_id
    job_id: str = row[0]
    return job_id


def _row_as_dict(conn: Conn, query: str, row_id: str) -> dict[str, Any]:
    cur = conn.execute(query, [row_id])
    values = cur.fetchone()
    assert values is not None, (query, row_id)
    assert cur.description is not None
    return dict(zip([column.name for column in cur.description], values, strict=True))


def scheduler_row(conn: Conn, scheduler_id: str) -> dict[str, Any]:
    """The scheduler's row, column by column, with what schedctl keeps beside it (the
    overlap policy and pause reason, as schedctl reads them when there is no row)."""
    return _row_as_dict(
        conn,
        "SELECT s.*, coalesce(st.overlap_policy, 'replace') AS overlap_policy, st.pause_reason"
        " FROM schedulers s LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id"
        " WHERE s.id = %s",
        scheduler_id,
    )


def job_row(conn: Conn, job_id: str) -> dict[str, Any]:
    """The job's row, column by column, with the slot it was made for (None when it was
    not made by tick)."""
    return _row_as_dict(
        conn,
        "SELECT j.*, ss.slot AS scheduler_slot FROM jobs j"
        " LEFT JOIN schedctl.served_slots ss ON ss.job_id = j.id WHERE j.id = %s",
        job_id,
    )


def seed_due(conn: Conn, count: int, prefix: str = "site", orgs: int = 10) -> dict[str, datetime]:
    """`count` due schedulers over `orgs` organisations, set-based, every interval, slots from
    one minute to a few hours ago; returns each one's slot."""
    conn.execute(
        """
        WITH new_orgs AS (
            INSERT INTO organisations (name)
            SELECT %(prefix)s || ' org ' || g FROM generate_series(1, %(orgs)s) g
            RETURNING id
        ),
        orgs AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM new_orgs),
        new_domains AS (
            INSERT INTO domains (name)
            SELECT %(prefix)s || '-' || g || '.com' FROM generate_series(1, %(n)s) g
            RETURNING id
        ),
        doms AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM new_domains)
        INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours, next_run_at)
        SELECT doms.id, orgs.id, (ARRAY[6, 12, 24, 48])[1 + doms.k %% 4],
               now() - interval '1 minute' - doms.k * interval '197 milliseconds'
        FROM doms JOIN orgs ON orgs.k = doms.k %% %(orgs)s
        """,
        {"n": count, "orgs": orgs, "prefix": prefix},
    )
    return dict(
        conn.execute(
            "SELECT s.id::text, s.next_run_at FROM schedulers s"
            " JOIN domains d ON d.id = s.domain_id WHERE d.name LIKE %s",
            [f"{prefix}-%"],
        ).fetchall()
    )


def fingerprint(conn: Conn) -> dict[str, tuple[int, str | None]]:
    """Row count and an md5 of the full contents of every writable table, in a stable order
    (one statement: the property tests take thousands of fingerprints)."""
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL(
            "SELECT {}, count(*), md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {} t"
        ).format(sql.Literal(table), sql.Identifier(*table.split(".")))
        for table in WRITABLE_TABLES
    )
    return {table: (count, digest) for table, count, digest in conn.execute(query)}


# ---------------------------------------------------------------- a hung server


@contextmanager
def silent_server() -> Iterator[int]:
    """A local port that accepts connections and never says a word (a hung server)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for sock in accepted:
            sock.close()
        listener.close()


# ---------------------------------------------------------------- a world for hostile input

# Two organisations (plus a second one named "Other", so that `--org Other` is ambiguous),
# each with schedulers, one of them with jobs.
ACME = "00000000-0000-4000-8000-00000000a001"
OTHER = "00000000-0000-4000-8000-00000000b001"
OTHER_TWIN = "00000000-0000-4000-8000-00000000b002"
ALPHA = "00000000-0000-4000-8000-0000000000a1"  # Acme, alpha.com, 6 h, enabled, has jobs
BETA = "00000000-0000-4000-8000-0000000000b1"  # Acme, beta.org, 24 h, paused, skip policy
GAMMA = "00000000-0000-4000-8000-0000000000c1"  # Other, gamma.net
SHARED = "00000000-0000-4000-8000-0000000000d1"  # Other, alpha.com (same domain as ALPHA)

_WORLD = f"""
INSERT INTO organisations (id, name) VALUES
    ('{ACME}', 'Acme'), ('{OTHER}', 'Other'), ('{OTHER_TWIN}', 'Other')
ON CONFLICT (id) DO NOTHING;
INSERT INTO domains (name) VALUES ('alpha.com'), ('beta.org'), ('gamma.net')
ON CONFLICT (name) DO NOTHING;
WITH world (id, domain, org, hours, wait, enabled, paths, policy, reason) AS (VALUES
    ('{ALPHA}', 'alpha.com', '{ACME}', 6, '2 hours', TRUE, '["/blog"]', 'replace', NULL),
    ('{BETA}', 'beta.org', '{ACME}', 24, '20 hours', FALSE, NULL, 'skip', 'maintenance'),
    ('{GAMMA}', 'gamma.net', '{OTHER}', 12, '5 hours', TRUE, NULL, 'allow', NULL),
    ('{SHARED}', 'alpha.com', '{OTHER}', 48, '1 hour', TRUE, NULL, 'replace', NULL)
),
added AS (
    INSERT INTO schedulers (id, domain_id, organisation_id, schedule_interval_hours,
                            next_run_at, is_enabled, include_paths)
    SELECT v.id::uuid, d.id, v.org::uuid, v.hours, now() + v.wait::interval, v.enabled, v.paths
    FROM world v
    JOIN domains d ON d.name = v.domain
    ON CONFLICT DO NOTHING
    RETURNING id
)
INSERT INTO schedctl.scheduler_settings (scheduler_id, overlap_policy, pause_reason)
SELECT v.id::uuid, v.policy, v.reason FROM world v JOIN added a ON a.id = v.id::uuid;
WITH made AS (
    INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                      concurrency, find_links, max_pages, source_type, source_detail,
                      scheduler_id)
    SELECT v.id, d.id, '{ACME}', v.status, 0, now() - v.age::interval, 20, TRUE, 0,
           'scheduler', '{ALPHA}', s.id
    FROM (VALUES ('job-alpha-1', 'completed', '12 hours'), ('job-alpha-2', 'pending', '6 hours'))
        AS v(id, status, age)
    JOIN domains d ON d.name = 'alpha.com'
    LEFT JOIN schedulers s ON s.id = '{ALPHA}'
    ON CONFLICT (id) DO NOTHING
    RETURNING id, scheduler_id, created_at
)
INSERT INTO schedctl.served_slots (scheduler_id, slot, job_id)
SELECT scheduler_id, created_at, id FROM made WHERE scheduler_id IS NOT NULL;
"""


def ensure_world(conn: Conn) -> None:
    """Create the little world where it is missing (a deleted scheduler comes back)."""
    conn.execute(_WORLD)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = re.compile(r"[\u2500-\u257f]")  # box-drawing characters
# Set on the machine, these would change what rich does; each test says what it wants.
_TERMINAL_VARS = ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")


def run_in_terminal(
    args: list[str],
    env: dict[str, str],
    columns: int,
    timeout: float = 60,
    *,
    columns_variable: bool = True,
) -> tuple[int, str]:
    """schedctl as a real process whose stdin, stdout and stderr are a pseudo-terminal
    `columns` wide; returns its exit code and everything it wrote. Without
    `columns_variable`, COLUMNS is not set: schedctl reads the terminal's size, as after
    `stty cols N`."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    child_env = {k: v for k, v in cli_env(env).items() if k not in _TERMINAL_VARS}
    size = {"COLUMNS": str(columns), "LINES": "50"} if columns_variable else {"LINES": "50"}
    child_env.update({"TERM": "xterm-256color"} | size | env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "schedctl", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=child_env,
        start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                proc.kill()
                pytest.fail(f"schedctl {' '.join(args)} did not finish in {timeout} s")
            ready, _, _ = select.select([master], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has gone
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    code = proc.wait(timeout=timeout)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")
