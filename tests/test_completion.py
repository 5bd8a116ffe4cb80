"""Shell completion, through real processes: what the shell asks, what schedctl answers,
and the script `--install-completion` writes doing it in a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli_subprocess


def _complete_bash(words: str, cword: int) -> list[str]:
    result = run_cli_subprocess(
        [],
        {"_SCHEDCTL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
    )
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.split()


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("schedctl sh", 1, ["show"]),
        ("schedctl re", 1, ["resume"]),
        ("schedctl org c", 2, ["create"]),
        ("schedctl tick --d", 2, ["--dry-run"]),
        ("schedctl status --max", 2, ["--max-lag"]),
    ],
)
def test_bash_completes_commands_and_options(words: str, cword: int, expected: list[str]) -> None:
    assert _complete_bash(words, cword) == expected


def test_bash_lists_every_command_for_an_empty_word() -> None:
    offered = set(_complete_bash("schedctl ", 1))
    assert {
        "migrate",
        "org",
        "create",
        "list",
        "show",
        "update",
        "delete",
        "history",
        "pause",
        "resume",
        "run",
        "log",
        "tick",
        "status",
    } <= offered


def test_zsh_completes_a_partial_command() -> None:
    result = run_cli_subprocess(
        [], {"_SCHEDCTL_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "schedctl pa"}
    )
    assert result.code == 0, result.stderr
    assert '"pause":' in result.stdout
    assert '"show":' not in result.stdout


def _in_bash(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`command` run by a real bash (so schedctl detects bash as its shell), with the
    schedctl of this environment first on PATH and `home` as HOME."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    assert shutil.which("schedctl", path=path) is not None
    return subprocess.run(
        # ": " after the command keeps bash from replacing itself with schedctl.
        ["bash", "--norc", "--noprofile", "-c", f"{command}; :"],
        env={k: v for k, v in os.environ.items() if not k.startswith("SCHEDCTL_")}
        | {"HOME": str(home), "PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@needs_bash
def test_show_completion_prints_the_script_for_the_shell_it_runs_in(tmp_path: Path) -> None:
    proc = _in_bash("schedctl --show-completion", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "_SCHEDCTL_COMPLETE=complete_bash" in proc.stdout
    assert "complete -o default -F _schedctl_completion schedctl" in proc.stdout


@needs_bash
def test_install_completion_works_in_a_real_bash(tmp_path: Path) -> None:
    installed = _in_bash("schedctl --install-completion", tmp_path)
    assert installed.returncode == 0, installed.stderr
    assert "bash completion installed" in installed.stdout
    script = tmp_path / ".bash_completions" / "schedctl.sh"
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    # What bash does on TAB after `schedctl lo`: the installed function asks schedctl.
    proc = _in_bash(
        f"source '{script}'; COMP_WORDS=(schedctl lo); COMP_CWORD=1; "
        '_schedctl_completion schedctl; printf "%s\\n" "${COMPREPLY[@]}"',
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["log"]
