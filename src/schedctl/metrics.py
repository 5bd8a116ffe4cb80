"""Prometheus gauges in the text exposition format: one tick pass (for node_exporter's
textfile collector, written atomically) and the whole database (`status --prometheus`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from schedctl.errors import InvalidInput

# What each count of a pass counts, for its help line.
_COUNTED = {
    "due": "Due schedulers",
    "created": "Jobs created",
    "skipped": "Due schedulers skipped by their overlap policy",
    "failed": "Due schedulers whose job could not be made",
    "missed": "Slots passed over (later than the catch-up window, or older than the one served)",
}


def _number(value: float) -> str:
    """A sample's value as the parser reads it back exactly: a count in full, any other number
    by the shortest text that gives the same float (`:g` would keep six digits)."""
    if isinstance(value, int):
        return str(int(value))  # int() too: a bool would print as True
    return repr(float(value))


def _gauge(name: str, help_text: str, value: float, labels: str = "") -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} gauge\n{name}{labels} {_number(value)}\n"


def _scheduler_gauges(schedulers: dict[str, Any]) -> str:
    """Enabled and paused schedulers, due now, and the worst lag."""
    return (
        "# HELP schedctl_schedulers Schedulers, by state.\n"
        "# TYPE schedctl_schedulers gauge\n"
        f'schedctl_schedulers{{state="enabled"}} {_number(schedulers["enabled"])}\n'
        f'schedctl_schedulers{{state="paused"}} {_number(schedulers["paused"])}\n'
        + _gauge("schedctl_schedulers_due", "Enabled schedulers due now.", schedulers["due"])
        + _gauge(
            "schedctl_worst_lag_seconds",
            "How long the most overdue enabled scheduler has waited (0 when none is due).",
            float(schedulers["worst_lag_seconds"]),
        )
    )


def _pass_gauges(prefix: str, what: str, counts: dict[str, int], ok: bool, at: float) -> str:
    """A pass's gauges: when it ended, whether it succeeded, and its counts (tick.COUNTS)."""
    text = _gauge(
        f"{prefix}_timestamp_seconds", f"When {what} ended, in seconds since the epoch.", at
    )
    text += _gauge(f"{prefix}_success", f"1 when {what} succeeded, 0 when it failed.", int(ok))
    for count, value in counts.items():
        text += _gauge(f"{prefix}_{count}", f"{_COUNTED[count]} in {what}.", value)
    return text


def tick_text(
    counts: dict[str, int],
    *,
    ok: bool,
    ended_at: float,
    duration: float,
    schedulers: dict[str, Any] | None,
) -> str:
    """The gauges of one tick pass (its counts, tick.COUNTS); `schedulers` (counted after
    the pass) is None when the pass broke off before they could be read."""
    text = _pass_gauges("schedctl_tick_last", "the last tick pass", counts, ok, ended_at)
    text += _gauge(
        "schedctl_tick_last_duration_seconds", "How long the last tick pass took.", duration
    )
    if schedulers is not None:
        text += _scheduler_gauges(schedulers)
    return text


def status_text(report: dict[str, Any]) -> str:
    """The gauges of `status` for the whole database: schedulers, lag, and the newest tick
    pass of any host (from its heartbeat)."""
    text = _gauge("schedctl_up", "1: the database answered and its schema is migrated.", 1)
    text += _scheduler_gauges(report)
    last = report["last_tick"]
    if last is not None:
        from datetime import datetime

        from schedctl.tick import COUNTS

        ended = datetime.fromisoformat(last["ticked_at"].replace("Z", "+00:00")).timestamp()
        counts = {count: last[count] for count in COUNTS}
        text += _pass_gauges(
            "schedctl_tick_last", "the newest tick pass", counts, last["ok"], ended
        )
    cron = report.get("pg_cron")
    if cron is not None and cron["last_run"] is not None:
        # A pg_cron run that failed as a whole (a privilege missing) leaves no heartbeat.
        text += _gauge(
            "schedctl_pg_cron_last_run_success",
            "1 when the pg_cron job's latest run succeeded, 0 when it failed.",
            int(cron["last_run"]["status"] == "succeeded"),
        )
    return text


def down_text() -> str:
    """The gauge `status --prometheus` prints when the database did not answer (or is not
    migrated): a scrape tells "down" from "no data"."""
    return _gauge("schedctl_up", "1: the database answered and its schema is migrated.", 0)


def check_target(path: Path) -> Path:
    """A metrics file's folder must exist and be writable: checked before any work."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InvalidInput(f"--metrics-file {path} is a folder; give a file's path")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidInput(f"--metrics-file: folder {folder} does not exist or is not writable")
    return path


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename, so
    that a collector reading it never sees half a file."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # the collector runs as another user
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
