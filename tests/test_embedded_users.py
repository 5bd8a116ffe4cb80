"""The embedded default on a machine with several users: root, then two ordinary users one
after the other, each with the server in their own data directory, and a user without a
home folder. Real users (made with useradd, removed after), real processes."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.helpers import ENV_VARS, Result, assert_error

pytestmark = [
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("useradd") is None,
        reason="needs root and useradd to make throwaway users",
    ),
    pytest.mark.slow,
]


@dataclass
class User:
    name: str
    home: Path


def _useradd(name: str, home: Path, *, create_home: bool) -> None:
    subprocess.run(
        [
            "useradd",
            "--home-dir",
            str(home),
            "--create-home" if create_home else "--no-create-home",
            "--shell",
            "/bin/sh",
            "--user-group",
            name,
        ],
        check=True,
        capture_output=True,
    )


def _userdel(name: str) -> None:
    for proc in psutil.process_iter(["username"]):  # a server left behind would block it
        if proc.info["username"] == name:
            proc.kill()
    subprocess.run(["userdel", "--force", "--remove", name], capture_output=True)


@pytest.fixture
def homes() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="schedctl-test-users-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def make_user(homes: Path) -> Iterator[type[User] | object]:
    made: list[str] = []

    def make(*, with_home: bool = True) -> User:
        name = f"sct{uuid.uuid4().hex[:8]}"
        home = homes / name if with_home else Path("/nonexistent") / name
        _useradd(name, home, create_home=with_home)
        made.append(name)
        return User(name, home)

    yield make
    for name in made:
        _userdel(name)


def _open_to_everyone(path: Path) -> bool:
    """Whether any user may run `path` (every folder above it may be entered)."""
    real = path.resolve()
    return all(os.stat(p).st_mode & 0o001 for p in [real, *real.parents])


@functools.cache
def _python() -> tuple[str, dict[str, str]]:
    """An interpreter any user may run, with schedctl and its dependencies importable: this
    one, or (when it lives in root's home) the system's of the same version."""
    if _open_to_everyone(Path(sys.executable)):
        return sys.executable, {}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/local/bin:/usr/bin")
    if system is None or not _open_to_everyone(Path(system)):
        pytest.skip(f"no {version} that other users may run")
    import schedctl

    paths = [str(Path(schedctl.__file__).parents[1]), sysconfig.get_paths()["purelib"]]
    return system, {"PYTHONPATH": os.pathsep.join(paths)}


def _run_as(user: User | None, args: list[str], extra: dict[str, str] | None = None) -> Result:
    """schedctl as a real process, as `user` (root when None), in cron's bare environment."""
    python, python_env = _python()
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS and k != "XDG_RUNTIME_DIR"}
    env.update({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"} | python_env | (extra or {}))
    kwargs: dict[str, object] = {}
    if user is not None:
        env.update({"HOME": str(user.home), "USER": user.name, "LOGNAME": user.name})
        kwargs = {"user": user.name, "group": user.name, "extra_groups": [], "cwd": "/"}
    proc = subprocess.run(
        [python, "-m", "schedctl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        **kwargs,  # type: ignore[call-overload]
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _postgres_of(owner_dir: Path) -> list[psutil.Process]:
    deadline = time.monotonic() + 20
    while True:
        left = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if str(owner_dir) in " ".join(proc.info["cmdline"] or []):
                    left.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def test_root_then_two_users_each_run_their_own_embedded_server(
    make_user: object, homes: Path
) -> None:
    make = make_user
    assert callable(make)
    root_data = homes / "root-data"
    first = _run_as(None, ["migrate"], {"SCHEDCTL_DATA_DIR": str(root_data)})
    assert first.code == 0, first.stderr
    assert _postgres_of(root_data) == []

    for _ in range(2):
        user: User = make()
        for args in (["migrate"], ["org", "create", "Acme"], ["list", "--json"]):
            result = _run_as(user, args)
            assert result.code == 0, (user.name, args, result.stderr)
            assert "Traceback" not in result.stderr
            # The notice, and for migrate the line naming the database it migrated.
            notice = result.stderr.splitlines()
            assert len(notice) == (2 if args == ["migrate"] else 1), result.stderr
            assert str(user.home / ".local/share/schedctl/pgdata") in notice[0]
        assert result.stdout.strip() == "[]"
        assert _postgres_of(user.home) == []

    # Without a terminal, tick says it fell back to the embedded server, even with --quiet.
    quiet = _run_as(user, ["tick", "--quiet"])
    assert quiet.code == 0, quiet.stderr
    assert quiet.stdout == ""
    assert "no database configured" in quiet.stderr


def test_a_user_without_a_home_is_told_no_database_is_configured(make_user: object) -> None:
    make = make_user
    assert callable(make)
    user: User = make(with_home=False)
    for args in (["list"], ["tick", "--quiet"]):
        message = assert_error(_run_as(user, args), 5)
        assert message.startswith("no database configured"), message
        assert "SCHEDCTL_DATABASE_URL" in message


def test_a_server_that_cannot_start_is_one_error_line(make_user: object, homes: Path) -> None:
    """A data directory the server cannot use (a file where PostgreSQL's data belongs):
    exit 5, one line, no traceback from the clean-up at exit."""
    make = make_user
    assert callable(make)
    user: User = make()
    data = user.home / "data"
    data.mkdir()
    (data / "pgdata").write_text("not a folder")
    shutil.chown(data, user.name, user.name)
    message = assert_error(_run_as(user, ["list"], {"SCHEDCTL_DATA_DIR": str(data)}), 5)
    assert "embedded PostgreSQL server" in message and "SCHEDCTL_DATABASE_URL" in message
