"""Real servers for tests that need more than the suite's own database: a private PostgreSQL
cluster with settings of its choosing, a hot standby of one, and a PgBouncer in front of any
server. Each starts in a fresh temporary folder on a free port of 127.0.0.1, runs as an
unprivileged user (a system user `schedctl-test`, created when running as root), and is
stopped and removed when its `with` block ends.

    with postgres_cluster({"max_connections": 5}) as cluster:
        with pgbouncer(cluster.url(), pool_mode="transaction", default_pool_size=2) as bouncer:
            psycopg.connect(bouncer.url())

Missing binaries raise `ServerUnavailable` before anything is created. In a test, wrap the
context manager in `running(...)`, or use the fixtures of `conftest_servers.py`: either skips
the test then (fails it under CI)."""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn, Protocol, TypedDict, TypeVar
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

HOST = "127.0.0.1"
# The unprivileged user that runs the servers when the tests run as root: PostgreSQL and
# PgBouncer both refuse to run as root.
SYSTEM_USER = "schedctl-test"
POSTGRES_ROOT = Path("/usr/lib/postgresql")
PGBOUNCER_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
START_ATTEMPTS = 5  # a free port can be taken by someone else before the server binds it
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

Setting = str | int | float | bool
PoolMode = Literal["session", "transaction", "statement"]
T = TypeVar("T")


class ServerUnavailable(RuntimeError):
    """The binaries a server needs are not installed on this machine."""


class ServerStartError(RuntimeError):
    """A server did not start; the message ends with the tail of its log."""


@dataclass(frozen=True)
class PostgresCluster:
    """A running private cluster: superuser `postgres`, trust authentication."""

    folder: Path
    port: int
    bin_dir: Path
    host: str = HOST
    user: str = "postgres"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "postgresql.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{quote(self.user)}@{self.host}:{self.port}/{quote(dbname)}"

    def log(self) -> str:
        return _read(self.log_file)


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer. Every database name is passed through to the server it fronts;
    `user` and `dbname` are the server URL's, the defaults of `url()`."""

    folder: Path
    port: int
    pool_mode: PoolMode
    default_pool_size: int
    user: str
    dbname: str
    host: str = HOST

    @property
    def config_file(self) -> Path:
        return self.folder / "pgbouncer.ini"

    @property
    def log_file(self) -> Path:
        return self.folder / "pgbouncer.log"

    def url(self, dbname: str | None = None, user: str | None = None) -> str:
        """`postgresql://user@127.0.0.1:PORT/dbname` through this bouncer."""
        user = self.user if user is None else user
        dbname = self.dbname if dbname is None else dbname
        return f"postgresql://{quote(user)}@{self.host}:{self.port}/{quote(dbname)}"

    def url_for(self, server_url: str) -> str:
        """`server_url` (a URI or key=value conninfo of the fronted server) with its host and
        port replaced by this bouncer's: same user, database, password and parameters."""
        params = conninfo_to_dict(server_url)
        params.update(host=self.host, port=str(self.port))
        return make_conninfo("", **params)

    @property
    def admin_url(self) -> str:
        """The admin console (`SHOW POOLS`, `SHOW SERVERS`, ...)."""
        return self.url(dbname="pgbouncer")

    def log(self) -> str:
        return _read(self.log_file)


def postgres_bin_dir(major: int | None = None) -> Path:
    """The distribution's PostgreSQL server binaries: /usr/lib/postgresql/<major>/bin, the
    newest major version installed unless `major` is given."""
    needed = ("initdb", "pg_ctl", "postgres", "pg_basebackup")
    found: list[tuple[int, Path]] = []
    if POSTGRES_ROOT.is_dir():
        for entry in POSTGRES_ROOT.iterdir():
            bin_dir = entry / "bin"
            if entry.name.isdigit() and all((bin_dir / name).is_file() for name in needed):
                found.append((int(entry.name), bin_dir))
    if major is not None:
        found = [item for item in found if item[0] == major]
    if not found:
        wanted = f"PostgreSQL {major}" if major is not None else "PostgreSQL"
        raise ServerUnavailable(
            f"{wanted} server binaries ({', '.join(needed)}) not found under "
            f"{POSTGRES_ROOT}/<major>/bin; install the distribution's postgresql package"
        )
    return max(found)[1]


def pgbouncer_binary() -> Path:
    """The distribution's pgbouncer executable."""
    on_path = shutil.which("pgbouncer")
    for candidate in (on_path, *PGBOUNCER_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ServerUnavailable("pgbouncer not found; install the distribution's pgbouncer package")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def postgres_cluster(
    settings: Mapping[str, Setting] | None = None, *, major: int | None = None
) -> Iterator[PostgresCluster]:
    """A private cluster started with `settings` (e.g. `{"max_connections": 10}`), stopped
    (`-m fast`, or `-m immediate` when the block raised) and deleted afterwards. It runs
    with `fsync = off` unless `settings` say otherwise."""
    bin_dir = postgres_bin_dir(major)
    owner = _server_owner()
    with _folder("schedctl-pg-", owner) as folder:
        # A copy of this process's one initdb (owners and modes kept): a tenth of the time.
        template = _initialised(bin_dir, owner)
        _run(["cp", "-a", str(template), str(folder / "data")], None, folder, what="cp")
        _append_settings(folder, settings)
        with _running_cluster(bin_dir, folder, owner) as cluster:
            yield cluster


_INITIALISED: dict[Path, Path] = {}


def _initialised(bin_dir: Path, owner: pwd.struct_passwd | None) -> Path:
    """A data folder made by `initdb` of `bin_dir` once in this process, kept until it ends,
    for postgres_cluster to copy."""
    if bin_dir not in _INITIALISED:
        stack = ExitStack()
        atexit.register(stack.close)
        folder = stack.enter_context(_folder("schedctl-initdb-", owner))
        _run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(folder / "data"),
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            owner,
            folder,
            what="initdb",
        )
        _INITIALISED[bin_dir] = folder / "data"
    return _INITIALISED[bin_dir]


@contextmanager
def hot_standby(
    primary: PostgresCluster, settings: Mapping[str, Setting] | None = None
) -> Iterator[PostgresCluster]:
    """A read-only hot standby of `primary`, streaming from it (`pg_basebackup -R`). It starts
    with the primary's settings, then `settings`; it is stopped and deleted afterwards."""
    owner = _server_owner()
    with _folder("schedctl-standby-", owner) as folder:
        _run(
            [
                str(primary.bin_dir / "pg_basebackup"),
                "--pgdata",
                str(folder / "data"),
                "--host",
                primary.host,
                "--port",
                str(primary.port),
                "--username",
                primary.user,
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
            owner,
            folder,
            what="pg_basebackup",
        )
        _append_settings(folder, settings)
        with _running_cluster(primary.bin_dir, folder, owner) as cluster:
            yield cluster


@contextmanager
def pgbouncer(
    server_url: str,
    *,
    pool_mode: PoolMode = "transaction",
    default_pool_size: int = 20,
    users: Sequence[str] = (),
    settings: Mapping[str, Setting] | None = None,
) -> Iterator[PgBouncer]:
    """A PgBouncer with stock settings in front of the server of `server_url` (a URI or
    conninfo; host may be a Unix socket folder), with `auth_type = trust` for the URL's user
    and `users` (the URL's password, if any, is what it logs in to the server with), and
    `settings` added to its [pgbouncer] section. Every database name is passed through.
    Stopped afterwards (SIGTERM)."""
    binary = pgbouncer_binary()
    target = conninfo_to_dict(server_url)
    owner = _server_owner()
    socket_dir = str(target.get("host") or "")
    if owner is not None and socket_dir.startswith("/"):
        # A Unix socket folder is often private to the server's user (the embedded server's
        # is its data directory): run as that user, the one sure to get in.
        socket_owner = os.stat(socket_dir).st_uid
        if socket_owner != 0:
            owner = pwd.getpwuid(socket_owner)
    user = str(target.get("user") or "postgres")
    dbname = str(target.get("dbname") or user)
    password = target.get("password")
    with _folder("schedctl-pgbouncer-", owner) as folder:
        auth_lines = []
        for name in dict.fromkeys((user, *users)):
            secret = str(password) if password is not None and name == user else ""
            auth_lines.append(f"{_quote_auth(name)} {_quote_auth(secret)}\n")
        _write(folder / "userlist.txt", "".join(auth_lines), owner)
        server = f"host={target.get('host') or HOST} port={target.get('port') or 5432}"
        last_error = ""
        for _ in range(START_ATTEMPTS):
            port = free_port()
            base: dict[str, Setting] = {
                "listen_addr": HOST,
                "listen_port": port,
                "unix_socket_dir": str(folder),
                "auth_type": "trust",
                "auth_file": str(folder / "userlist.txt"),
                "admin_users": user,
                "pool_mode": pool_mode,
                "default_pool_size": default_pool_size,
                "logfile": str(folder / "pgbouncer.log"),
            }
            base.update(settings or {})
            body = "".join(f"{key} = {_bouncer_value(value)}\n" for key, value in base.items())
            config = f"[databases]\n* = {server}\n\n[pgbouncer]\n{body}"
            bouncer = PgBouncer(folder, port, pool_mode, default_pool_size, user, dbname)
            _write(bouncer.config_file, config, owner)
            started = _start_pgbouncer(binary, bouncer, owner)
            if isinstance(started, subprocess.Popen):
                try:
                    yield bouncer
                finally:
                    _stop_process(started)
                return
            last_error = started
            if "Address already in use" not in started:
                break
        raise ServerStartError(f"pgbouncer did not start:\n{last_error}")


def _start_pgbouncer(
    binary: Path, bouncer: PgBouncer, owner: pwd.struct_passwd | None
) -> subprocess.Popen[bytes] | str:
    """The running process once it listens, else the log that says why it stopped."""
    offset = _size(bouncer.log_file)
    stderr_file = bouncer.folder / "pgbouncer.stderr"
    with open(stderr_file, "ab") as stderr:
        proc = subprocess.Popen(
            [str(binary), "-q", str(bouncer.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            cwd=bouncer.folder,
            env=_clean_env(owner),
            start_new_session=True,
            **_as_owner(owner),
        )
    ready = f"listening on {bouncer.host}:{bouncer.port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        log = _read(bouncer.log_file)[offset:]
        if proc.poll() is not None:
            return log + _read(stderr_file)
        if ready in log and "process up" in log:
            return proc
        time.sleep(0.02)
    _stop_process(proc)
    return f"not listening after {START_TIMEOUT:.0f} s\n" + _read(bouncer.log_file)[offset:]


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (PgBouncer's immediate shutdown), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _running_cluster(
    bin_dir: Path, folder: Path, owner: pwd.struct_passwd | None
) -> Iterator[PostgresCluster]:
    """Start the cluster in `folder` on a free port; stop it when the block ends."""
    pg_ctl = str(bin_dir / "pg_ctl")
    data_dir = str(folder / "data")
    log_file = folder / "postgresql.log"
    last_error = ""
    for _ in range(START_ATTEMPTS):
        port = free_port()
        offset = _size(log_file)
        result = _run(
            [
                pg_ctl,
                "start",
                "--pgdata",
                data_dir,
                "--log",
                str(log_file),
                "--wait",
                "--timeout",
                str(int(START_TIMEOUT)),
                "--options",
                f"-p {port}",
            ],
            owner,
            folder,
            what="pg_ctl start",
            check=False,
        )
        if result.returncode == 0:
            break
        _stop_cluster(pg_ctl, data_dir, owner, "immediate")
        last_error = result.stdout + result.stderr + _read(log_file)[offset:]
        if "Address already in use" not in last_error:
            raise ServerStartError(f"PostgreSQL did not start:\n{_tail(last_error)}")
    else:
        raise ServerStartError(f"PostgreSQL did not start:\n{_tail(last_error)}")
    failed = True
    try:
        yield PostgresCluster(folder, port, bin_dir)
        failed = False
    finally:
        _stop_cluster(pg_ctl, data_dir, owner, "immediate" if failed else "fast")


def _stop_cluster(pg_ctl: str, data_dir: str, owner: pwd.struct_passwd | None, mode: str) -> None:
    """Stop the cluster: `mode` first, then `immediate`, then SIGKILL of the postmaster."""
    for attempt in dict.fromkeys((mode, "immediate")):
        result = _run(
            [
                pg_ctl,
                "stop",
                "--pgdata",
                data_dir,
                "--mode",
                attempt,
                "--wait",
                "--timeout",
                str(int(STOP_TIMEOUT)),
            ],
            owner,
            Path(data_dir).parent,
            what="pg_ctl stop",
            check=False,
        )
        if result.returncode == 0 or not (Path(data_dir) / "postmaster.pid").exists():
            return
    pid_line = _read(Path(data_dir) / "postmaster.pid").split("\n", 1)[0]
    if pid_line.isdigit():
        with suppress(ProcessLookupError):
            os.kill(int(pid_line), signal.SIGKILL)


def _append_settings(folder: Path, settings: Mapping[str, Setting] | None) -> None:
    """Listen on 127.0.0.1 only, keep the Unix socket in the folder, skip fsync (a test
    server's data need not survive a power cut; checkpoints get fast), then `settings`."""
    lines = {
        "listen_addresses": HOST,
        "unix_socket_directories": str(folder),
        "fsync": False,
        **(settings or {}),
    }
    text = "\n# Settings of this test server (later lines win).\n" + "".join(
        f"{_check_name(key)} = {_postgres_value(value)}\n" for key, value in lines.items()
    )
    with open(folder / "data" / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(text)


def _postgres_value(value: Setting) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _bouncer_value(value: Setting) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value)
    if "\n" in text:
        raise ValueError(f"a PgBouncer setting cannot span lines: {text!r}")
    return text


def _quote_auth(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
        raise ValueError(f"not a setting name: {name!r}")
    return name


def _server_owner() -> pwd.struct_passwd | None:
    """The user the servers run as: a system user when running as root, else nobody else."""
    if os.geteuid() != 0:
        return None
    for _ in range(50):
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            pass
        # Several test runs may get here at once: useradd locks the user database, and the
        # loser (already exists, or database locked) finds the user on the next pass.
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
                SYSTEM_USER,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            time.sleep(0.1)
    raise ServerStartError(f"could not create the system user {SYSTEM_USER!r} (useradd)")


class _Identity(TypedDict):
    user: int | None
    group: int | None
    extra_groups: list[int] | None


def _as_owner(owner: pwd.struct_passwd | None) -> _Identity:
    """subprocess arguments that run a child as `owner` (and only its own group)."""
    if owner is None:
        return {"user": None, "group": None, "extra_groups": None}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def _clean_env(owner: pwd.struct_passwd | None) -> dict[str, str]:
    """This environment without libpq's PG* variables (they would redirect the tools)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    if owner is not None:
        env.update(HOME=owner.pw_dir, USER=owner.pw_name, LOGNAME=owner.pw_name)
    return env


def _run(
    args: list[str],
    owner: pwd.struct_passwd | None,
    cwd: Path,
    *,
    what: str,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args,
        cwd=cwd,
        env=_clean_env(owner),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT * 2,
        check=False,
        **_as_owner(owner),
    )
    if check and result.returncode != 0:
        raise ServerStartError(f"{what} failed:\n{_tail(result.stdout + result.stderr)}")
    return result


@contextmanager
def _folder(prefix: str, owner: pwd.struct_passwd | None) -> Iterator[Path]:
    """A fresh folder under the system's temporary folder, owned by `owner`, then removed.
    Not pytest's tmp_path: as root that is private to root, and pytest sessions prune it."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write(path: Path, text: str, owner: pwd.struct_passwd | None) -> None:
    path.write_text(text, encoding="utf-8")
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _size(path: Path) -> int:
    return len(_read(path))


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# In tests: a server that cannot be started here (its binaries are missing) skips the test
# with the reason, except under CI, where it fails it.


def in_ci() -> bool:
    """Whether this run is CI's: the `CI` environment variable set, and not `0` or `false`."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def unavailable(exc: ServerUnavailable) -> NoReturn:
    """Skip the running test because a server cannot be started here; under CI, fail it."""
    if in_ci():
        pytest.fail(f"{exc} (CI is set: a missing server fails the test)", pytrace=False)
    pytest.skip(str(exc))


def enter_or_skip(stack: ExitStack, server: AbstractContextManager[T]) -> T:
    """Start `server` on `stack` (its exit then stops it), or skip / fail the test."""
    try:
        return stack.enter_context(server)
    except ServerUnavailable as exc:
        unavailable(exc)


@contextmanager
def running(server: AbstractContextManager[T]) -> Iterator[T]:
    """`with running(postgres_cluster(...)) as cluster:` — a server for one with block, or
    the test skipped (failed under CI) when it cannot be started here."""
    with ExitStack() as stack:
        yield enter_or_skip(stack, server)


class StartCluster(Protocol):
    """The `start_cluster` fixture's function."""

    def __call__(
        self, settings: Mapping[str, Setting] | None = None, *, major: int | None = None
    ) -> PostgresCluster: ...


class StartStandby(Protocol):
    """The `start_standby` fixture's function."""

    def __call__(
        self, primary: PostgresCluster, settings: Mapping[str, Setting] | None = None
    ) -> PostgresCluster: ...


class StartPgBouncer(Protocol):
    """The `start_pgbouncer` fixture's function."""

    def __call__(
        self,
        server_url: str,
        *,
        pool_mode: PoolMode = "transaction",
        default_pool_size: int = 20,
        users: Sequence[str] = (),
        settings: Mapping[str, Setting] | None = None,
    ) -> PgBouncer: ...
