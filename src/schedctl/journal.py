"""Error and warning lines on stderr, with the syslog priority prefix that journald reads
(`<3>` error, `<4>` warning) when stderr is the journal, so `journalctl -p err` finds them."""

from __future__ import annotations

import os
import sys

ERROR = 3
WARNING = 4


def _stderr_is_the_journal() -> bool:
    """Whether stderr is the stream systemd connected to the journal: JOURNAL_STREAM holds
    its device and inode (set for stdout or stderr; a child process may inherit it while
    its stderr goes elsewhere, so the stream itself is compared)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = stream.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        found = os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # not a file (captured, closed)
        return False
    return (found.st_dev, found.st_ino) == (int(device), int(inode))


def prefix(priority: int) -> str:
    """`<N>` when stderr is the journal, else nothing."""
    return f"<{priority}>" if _stderr_is_the_journal() else ""


def error(message: str) -> None:
    """One `error:` line on stderr."""
    print(f"{prefix(ERROR)}error: {message}", file=sys.stderr)


def warning(message: str) -> None:
    """One `warning:` line on stderr."""
    print(f"{prefix(WARNING)}warning: {message}", file=sys.stderr)
