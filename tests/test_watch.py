"""`--watch [SECONDS]` of status, list and timeline: redrawn in place on a terminal until
Ctrl-C (exit 0), through a real process on a pseudo-terminal; refused with --json or when
stdout is not a terminal (exit 2)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import (
    Cli,
    assert_error,
    cli_env,
    make_org,
    make_scheduler,
    run_cli_subprocess,
    sigint_as_at_a_terminal,
)

REDRAW = b"\x1b[H\x1b[2J"


@pytest.mark.parametrize("command", ["status", "list", "timeline"])
def test_watch_is_refused_with_json(cli: Cli, command: str) -> None:
    make_org(cli, "acme")
    assert "--json" in assert_error(cli(command, "--watch", "--json"), 2)
    assert_error(cli(command, "--json", "--watch", "3"), 2)


@pytest.mark.parametrize("command", ["status", "list", "timeline"])
def test_watch_is_refused_when_stdout_is_not_a_terminal(database_url: str, command: str) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url, "SCHEDCTL_ORG": "acme"}
    assert run_cli_subprocess(["org", "create", "acme"], env).code == 0
    message = assert_error(run_cli_subprocess([command, "--watch"], env), 2)
    assert "terminal" in message


@pytest.mark.parametrize("command", ["status", "list", "timeline"])
def test_watch_redraws_in_place_until_ctrl_c(cli: Cli, database_url: str, command: str) -> None:
    make_org(cli, "acme")
    make_scheduler(cli, "a.com")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "schedctl", command, "--watch", "0.5"],
        env=cli_env({"SCHEDCTL_DATABASE_URL": database_url, "COLUMNS": "100"}),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        preexec_fn=sigint_as_at_a_terminal,
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 120
    try:
        while output.count(REDRAW) < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                try:
                    output += os.read(leader, 65536)
                except OSError:
                    break
        assert output.count(REDRAW) >= 3, output[-2000:]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    assert proc.returncode == 0, err
    shown = output.split(REDRAW)[-2].decode()
    assert ("a.com" in shown) if command == "list" else shown.strip()
