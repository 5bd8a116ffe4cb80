"""What an operator sees when something around schedctl is wrong: a misspelt or foreign
setting, a database that is down, a shell without completion, Ctrl-C, the journal. Each
is one line that says what happened, and a defined exit code."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import (
    Cli,
    Conn,
    assert_error,
    cli_against,
    cli_env,
    fingerprint,
    make_org,
    make_scheduler,
    run_cli_subprocess,
    sigint_as_at_a_terminal,
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------- settings


def test_an_unknown_schedctl_variable_is_one_warning_line(cli: Cli) -> None:
    make_org(cli, "Acme")
    result = cli("list", "--json", env={"SCHEDCTL_DATABSE_URL": "postgresql://x@y/z"})
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert result.stderr.splitlines() == [
        "warning: SCHEDCTL_DATABSE_URL is not a schedctl setting and is ignored "
        "(did you mean SCHEDCTL_DATABASE_URL?)"
    ]


def test_an_unknown_name_in_dotenv_is_warned_about_too(cli: Cli, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    (tmp_path / ".env").write_text("SCHEDCTL_ORGANISATION=Acme\nOTHER_APP_SECRET=1\n")
    result = cli("list", "--json")
    assert result.code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: SCHEDCTL_ORGANISATION is not a schedctl setting and is ignored"
        " (did you mean SCHEDCTL_ORG?)"
    ]


@pytest.mark.parametrize(
    ("misspelt", "meant", "command", "fallback"),
    [
        ("SCHEDCTL_DATABSE_URL", "SCHEDCTL_DATABASE_URL", "status", None),
        ("SCHEDCTL_DB_URL", "SCHEDCTL_DATABASE_URL", "list", None),
        ("SCHEDCTL_DATABASE_URI", "SCHEDCTL_DATABASE_URL", "tick", "DATABASE_URL"),
        ("SCHEDCTL_DATABSE_URL", "SCHEDCTL_DATABASE_URL", "migrate", None),
        ("SCHEDCTL_MIGRATE_DATABSE_URL", "SCHEDCTL_MIGRATE_DATABASE_URL", "migrate", "main"),
    ],
)
def test_a_misspelt_database_variable_is_refused_and_nothing_is_started(
    database_url: str,
    conn: Conn,
    scratch_dir: Path,
    misspelt: str,
    meant: str,
    command: str,
    fallback: str | None,
) -> None:
    """With a near miss of a database variable set and the variable itself not set,
    schedctl neither starts the embedded server (no data folder is made) nor falls back to
    DATABASE_URL or the main URL: exit 5, naming both names."""
    data_dir = scratch_dir / "embedded"
    env = {misspelt: database_url, "SCHEDCTL_DATA_DIR": str(data_dir)}
    if fallback == "DATABASE_URL":
        env["DATABASE_URL"] = database_url
    elif fallback == "main":
        env["SCHEDCTL_DATABASE_URL"] = database_url
    before = fingerprint(conn)
    result = run_cli_subprocess([command], env)
    assert result.code == 5, (result.code, result.stdout, result.stderr)
    assert result.stdout == ""
    error = result.stderr.splitlines()[-1]
    assert error.startswith("error: ") and misspelt in error and meant in error, result.stderr
    assert not data_dir.exists()
    assert fingerprint(conn) == before


def test_the_right_name_beside_a_misspelt_one_is_used(cli: Cli) -> None:
    """The refusal is for a near miss set instead of the name, not beside it."""
    make_org(cli, "Acme")
    result = cli("status", "--json", env={"SCHEDCTL_DATABSE_URL": "postgresql://x@y/z"})
    assert result.code == 0, result.stderr


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A folder outside pytest's own (the embedded server may run as another user)."""
    path = Path(tempfile.mkdtemp(prefix="schedctl-test-dotenv-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_dotenv_of_another_application_does_not_choose_the_database(
    database_url: str, tmp_path: Path, scratch_dir: Path
) -> None:
    """A .env with DATABASE_URL (another application's) is not read; its SCHEDCTL_* names
    are. DATABASE_URL in the real environment still counts."""
    data_dir = scratch_dir
    (tmp_path / ".env").write_text(
        f"DATABASE_URL={database_url}\nSCHEDCTL_DATA_DIR={data_dir}\nSCHEDCTL_CONNECT_TIMEOUT=1\n"
    )
    env = cli_env({})
    env.pop("SCHEDCTL_TEST_DATABASE_URL", None)
    # As root the embedded server would need a system user; point it at a file instead, so
    # that using it fails at once: what matters is that it was chosen, not the .env's URL.
    (data_dir / "pgdata").write_text("not a folder")
    proc = subprocess.run(
        [sys.executable, "-m", "schedctl", "status", "--all-orgs", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 5, proc.stderr
    assert "embedded PostgreSQL server" in proc.stderr and str(data_dir) in proc.stderr

    env["DATABASE_URL"] = database_url
    real = subprocess.run(
        [sys.executable, "-m", "schedctl", "status", "--all-orgs", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert real.returncode == 0, real.stderr
    assert (
        json.loads(real.stdout)["connection"]["database"]
        == conninfo_to_dict(database_url)["dbname"]
    )


def test_migrate_and_status_name_the_database_without_the_password(
    database_url: str, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = conninfo_to_dict(database_url)
    role = "schedctl_named_" + os.urandom(4).hex()
    password = "Sekr1t-" + os.urandom(4).hex()
    conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
    try:
        host = str(params.get("host", "127.0.0.1"))
        port = int(str(params.get("port", 5432)))
        if host.startswith("/"):  # the embedded server's socket folder
            url = (
                f"postgresql://{role}:{password}@/{params['dbname']}"
                f"?host={quote(host, safe='')}&port={port}"
            )
        else:
            url = f"postgresql://{role}:{password}@{host}:{port}/{params['dbname']}"
        cli = cli_against(url, monkeypatch)
        expected = {
            "host": host,
            "port": port,
            "database": params["dbname"],
            "user": role,
        }
        migrate = cli("migrate")
        assert migrate.code == 0, migrate.stderr
        assert migrate.stderr.splitlines() == [
            f"schedctl: database {params['dbname']} on {host}:{expected['port']} as {role}"
        ]
        as_json = cli("migrate", "--json")
        assert json.loads(as_json.stdout)["connection"] == expected
        status = cli("status", "--all-orgs", "--json")
        assert status.code == 0, status.stderr
        assert json.loads(status.stdout)["connection"] == expected
        plain = cli("status", "--all-orgs")
        assert (
            f"reachable: {params['dbname']} on {host}:{expected['port']} as {role}" in plain.stdout
        )
        for result in (migrate, as_json, status, plain):
            assert password not in result.stdout + result.stderr
    finally:
        conn.execute(f"DROP ROLE {role}")


# ---------------------------------------------------------------- before connecting


def test_invalid_input_is_exit_2_with_the_database_down() -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres?connect_timeout=2"
    message = assert_error(
        run_cli_subprocess(
            ["create", "localhost", "--every", "7h"], {"SCHEDCTL_DATABASE_URL": url}
        ),
        2,
    )
    assert "localhost" in message


def test_invalid_input_starts_no_embedded_server() -> None:
    base = Path(tempfile.mkdtemp(prefix="schedctl-test-noserver-"))
    data_dir = base / "data"
    result = run_cli_subprocess(
        ["create", "localhost", "--every", "7h"], {"SCHEDCTL_DATA_DIR": str(data_dir)}
    )
    assert_error(result, 2)
    assert not data_dir.exists()  # not even its folder was made
    base.rmdir()


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_is_exit_130_with_one_line_and_nothing_written(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    """A pause waiting for a row another session holds, interrupted with SIGINT."""
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    before = fingerprint(conn)
    with psycopg.connect(database_url) as holder:  # a transaction holding the row
        holder.execute("SELECT 1 FROM schedulers WHERE id = %s FOR UPDATE", [doc["id"]])
        proc = subprocess.Popen(
            [sys.executable, "-m", "schedctl", "pause", "example.com", "--json"],
            env=cli_env({"SCHEDCTL_DATABASE_URL": database_url, "SCHEDCTL_LOCK_TIMEOUT": "120"}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=sigint_as_at_a_terminal,
        )
        try:
            deadline = time.monotonic() + 60
            while not conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'schedctl'"
                " AND wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "pause never waited for the lock"
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        holder.rollback()
    assert proc.returncode == 130, (out, err)
    assert out == ""
    assert err.splitlines() == ["error: interrupted; what was not yet committed was rolled back"], (
        err
    )
    assert fingerprint(conn) == before


# ---------------------------------------------------------------- one error line


def test_bare_schedctl_is_one_error_line() -> None:
    message = assert_error(run_cli_subprocess([], {}), 2)
    assert message == "missing command (see `schedctl --help`)"


def test_completion_in_an_unsupported_shell_is_one_error_line(tmp_path: Path) -> None:
    """Run from sh, which Typer has no completion script for; nothing is installed."""
    env = cli_env({"HOME": str(tmp_path)})
    for flag in ("--install-completion", "--show-completion"):
        proc = subprocess.run(
            ["sh", "-c", f'"{sys.executable}" -m schedctl {flag}'],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (proc.returncode, proc.stdout) == (2, ""), proc
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: shell completion is available")
    assert list(tmp_path.iterdir()) == []


def test_a_tick_cut_short_prints_its_error_once(capsys: pytest.CaptureFixture[str]) -> None:
    """The cut is the command's own error line; the summary does not print it again."""
    from schedctl.output import text as render
    from schedctl.tick import Summary

    report = render.TickReport(as_json=False, quiet=False, dry_run=False)
    report.finish(Summary(errors=[{"scheduler_id": None, "message": "connection lost"}]))
    quiet = render.TickReport(as_json=False, quiet=True, dry_run=False)
    quiet.finish(Summary(errors=[{"scheduler_id": None, "message": "connection lost"}]))
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "None" not in captured.out


# ---------------------------------------------------------------- journald


def test_error_lines_carry_the_syslog_priority_when_stderr_is_the_journal(
    database_url: str,
) -> None:
    """JOURNAL_STREAM names stderr's device and inode: error lines start `<3>`, warnings
    `<4>`. When it names another stream (a child of a unit), nothing is added."""
    read_end, write_end = os.pipe()
    info = os.fstat(write_end)
    env = cli_env(
        {
            "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}",
            "SCHEDCTL_DATABASE_URL": database_url,
            "SCHEDCTL_ORGG": "x",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "schedctl", "show", "nowhere.com", "--org", "nobody"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=write_end,
        timeout=60,
    )
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        lines = pipe.read().splitlines()
    assert proc.returncode == 3
    assert len(lines) == 2, lines
    assert lines[0].startswith("<4>warning: SCHEDCTL_ORGG is not a schedctl setting"), lines
    assert lines[1].startswith("<3>error: "), lines

    elsewhere = subprocess.run(
        [sys.executable, "-m", "schedctl", "show", "nowhere.com", "--org", "nobody"],
        env=env | {"JOURNAL_STREAM": "1:1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert elsewhere.stderr.splitlines()[1].startswith("error: "), elsewhere.stderr
