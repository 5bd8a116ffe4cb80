"""The embedded default: with no database configured, real schedctl processes run their own
PostgreSQL under SCHEDCTL_DATA_DIR, say so in one line, keep the data, and leave no server
running once they exit."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import messages, run_cli_subprocess


def _servers_for(data_dir: Path) -> list[psutil.Process]:
    """Running processes whose command line names the data directory (postgres -D ...)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(data_dir) in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait_until_gone(data_dir: Path, seconds: float = 20) -> list[psutil.Process]:
    """The servers still running after up to `seconds` (a stop is asynchronous)."""
    deadline = time.monotonic() + seconds
    left = _servers_for(data_dir)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    return left


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory outside pytest's own temporary folder, which any pytest session
    starting on the machine makes private again (the server runs as another user as root)."""
    base = Path(tempfile.mkdtemp(prefix="schedctl-test-embedded-"))
    yield base / "schedctl-data"
    shutil.rmtree(base, ignore_errors=True)


def test_embedded_default_runs_keeps_data_and_stops(data_dir: Path) -> None:
    env = {"SCHEDCTL_DATA_DIR": str(data_dir)}
    commands = [
        ["migrate"],
        ["org", "create", "Acme"],
        ["create", "example.com", "--every", "12h", "--include", "/blog"],
        ["list", "--json"],
        ["migrate", "--json"],
    ]
    results = []
    for args in commands:
        result = run_cli_subprocess(args, env)
        assert result.code == 0, (args, result.stdout, result.stderr)
        notice = messages(result.stderr).splitlines()
        assert len(notice) == 1, (args, result.stderr)
        assert "embedded PostgreSQL server" in notice[0]
        assert str(data_dir) in notice[0]
        results.append(result)
        assert _wait_until_gone(data_dir) == [], f"a server is still running after {args}"

    assert results[0].stdout.splitlines()[0] == "applied 0001_host_tables"
    listed = json.loads(results[3].stdout)
    assert [(d["domain"], d["schedule_interval_hours"], d["include_paths"]) for d in listed] == [
        ("example.com", 12, ["/blog"])
    ]
    assert json.loads(results[4].stdout)["migrations"] == []  # the schema persisted too
    assert (data_dir / "pgdata" / "PG_VERSION").is_file()

    # tick --quiet is what cron runs: a tick that falls back to the embedded server was
    # most likely meant for a configured database, so it says so even then (cron mails
    # it); the job is still made.
    create = run_cli_subprocess(["create", "shop.co.uk", "--every", "6h", "--start-at", "now"], env)
    assert create.code == 0, create.stderr
    quiet = run_cli_subprocess(["tick", "--quiet"], env)
    assert (quiet.code, quiet.stdout) == (0, "")
    assert quiet.stderr.splitlines() == [
        f"schedctl: no database configured; using the embedded PostgreSQL server in "
        f"{data_dir / 'pgdata'}"
    ]
    history = run_cli_subprocess(["history", "shop.co.uk", "--json"], env)
    assert history.code == 0, history.stderr
    assert [job["status"] for job in json.loads(history.stdout)] == ["pending"]
    assert _wait_until_gone(data_dir) == []
