"""Output: JSON documents for scripts, tables on a terminal, plain text otherwise."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from schedctl.validation import display_domain, paths_from_db

SCHEDULER_FIELDS = (
    "id",
    "organisation_id",
    "domain",
    "schedule_interval_hours",
    "next_run_at",
    "is_enabled",
    "pause_reason",
    "overlap_policy",
    "concurrency",
    "find_links",
    "max_pages",
    "include_paths",
    "exclude_paths",
    "required_workers",
    "created_at",
    "updated_at",
)
JOB_FIELDS = (
    "id",
    "scheduler_id",
    "domain",
    "status",
    "progress",
    "created_at",
    "started_at",
    "completed_at",
    "total_tasks",
    "completed_tasks",
    "failed_tasks",
    "skipped_tasks",
)
AUDIT_FIELDS = (
    "id",
    "at",
    "actor",
    "action",
    "scheduler_id",
    "organisation_id",
    "domain",
    "changes",
    "reason",
)


def rfc3339(moment: datetime) -> str:
    """A time as an RFC 3339 string in UTC."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """A value as JSON holds it: times in RFC 3339 UTC, UUIDs as strings."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def scheduler_doc(row: dict[str, Any]) -> dict[str, Any]:
    """A scheduler in the JSON shape of SPEC §5."""
    doc = {name: plain(row[name]) for name in SCHEDULER_FIELDS}
    doc["include_paths"] = paths_from_db(row["include_paths"])
    doc["exclude_paths"] = paths_from_db(row["exclude_paths"])
    return doc


def job_doc(row: dict[str, Any]) -> dict[str, Any]:
    """A job in the history shape."""
    return {name: plain(row[name]) for name in JOB_FIELDS}


def audit_doc(row: dict[str, Any]) -> dict[str, Any]:
    """An audit entry."""
    return {name: plain(row[name]) for name in AUDIT_FIELDS}


def print_json(doc: Any, out: IO[str] | None = None) -> None:
    """Exactly one JSON document on stdout."""
    stream = out or sys.stdout
    stream.write(json.dumps(doc, ensure_ascii=False) + "\n")


def relative(moment: datetime, now: datetime) -> str:
    """`moment` against `now` for people: "in 5h 12m", "3m overdue", "now"."""
    delta = moment - now
    seconds = abs(delta.total_seconds())
    if seconds < 60:
        return "now"
    text = _span(timedelta(seconds=seconds))
    return f"in {text}" if delta.total_seconds() > 0 else f"{text} overdue"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if not days:
        parts.append(f"{minutes}m")
    return " ".join(parts)


def short_time(moment: datetime | None) -> str:
    """A time for a table cell: UTC, to the minute."""
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def domain_label(a_label: str) -> str:
    """The domain as stored, with its Unicode form beside it when that differs."""
    unicode_form = display_domain(a_label)
    return a_label if unicode_form == a_label else f"{a_label} ({unicode_form})"


def status_label(row: dict[str, Any]) -> str:
    if row["is_enabled"]:
        return "enabled"
    reason = row.get("pause_reason")
    return f"paused: {reason}" if reason else "paused"


def is_terminal() -> bool:
    return sys.stdout.isatty()


def table(title: str | None, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A rich table on a terminal (fitted to its width); tab-separated lines otherwise."""
    if not is_terminal():
        print("\t".join(h.lower().replace(" ", "_") for h in headers))
        for row in rows:
            print("\t".join(row))
        return
    from rich.console import Console
    from rich.table import Table

    grid = Table(title=title, header_style="bold", expand=False)
    for header in headers:
        grid.add_column(header, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    Console(no_color="NO_COLOR" in os.environ).print(grid)


def fields(pairs: Sequence[tuple[str, str]]) -> None:
    """A record as aligned "key: value" lines (plain on any output)."""
    width = max((len(key) for key, _ in pairs), default=0)
    for key, value in pairs:
        print(f"{key.ljust(width)}  {value}")


def scheduler_lines(row: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields of one scheduler for people."""
    now = row.get("db_now")
    next_run = rfc3339(row["next_run_at"])
    if now is not None and is_terminal():
        next_run += f"  ({relative(row['next_run_at'], now)})"
    include = paths_from_db(row["include_paths"])
    exclude = paths_from_db(row["exclude_paths"])
    return [
        ("id", str(row["id"])),
        ("domain", domain_label(row["domain"])),
        ("organisation", str(row["organisation_id"])),
        ("every", f"{row['schedule_interval_hours']}h"),
        ("next run", next_run),
        ("status", status_label(row)),
        ("overlap", row["overlap_policy"]),
        ("concurrency", str(row["concurrency"])),
        ("find links", "yes" if row["find_links"] else "no"),
        ("max pages", str(row["max_pages"]) if row["max_pages"] else "no limit"),
        ("include", " ".join(include) if include else "-"),
        ("exclude", " ".join(exclude) if exclude else "-"),
        ("required workers", str(row["required_workers"])),
        ("created", rfc3339(row["created_at"])),
        ("updated", rfc3339(row["updated_at"])),
    ]


def scheduler_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Table rows for `list`: relative times on a terminal, absolute ones always."""
    terminal = is_terminal()
    out = []
    for row in rows:
        when = rfc3339(row["next_run_at"]) if not terminal else short_time(row["next_run_at"])
        if terminal and row.get("db_now") is not None:
            when += f"\n{relative(row['next_run_at'], row['db_now'])}"
        out.append(
            [
                row["domain"] if not terminal else domain_label(row["domain"]),
                f"{row['schedule_interval_hours']}h",
                when,
                status_label(row),
                row["overlap_policy"],
                str(row["id"]),
            ]
        )
    return out


SCHEDULER_HEADERS = ("Domain", "Every", "Next run", "Status", "Overlap", "Id")


def job_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Table rows for `history`."""
    terminal = is_terminal()
    stamp = short_time if terminal else (lambda t: rfc3339(t) if t else "-")
    return [
        [
            str(row["id"]),
            row["status"],
            f"{row['progress']:g}",
            stamp(row["created_at"]),
            stamp(row["completed_at"]),
            f"{row['completed_tasks']}/{row['total_tasks']}",
            str(row["failed_tasks"]),
        ]
        for row in rows
    ]


JOB_HEADERS = ("Job", "Status", "Progress", "Created", "Completed", "Done", "Failed")


def warn(message: str) -> None:
    """A message for people, on stderr."""
    print(message, file=sys.stderr)


class TickReport:
    """Streams tick's jobs to a spool file as they are made, so memory stays flat however
    many are due, then prints the summary: JSON, one line per job, or (quiet) failures only."""

    def __init__(self, *, as_json: bool, quiet: bool, dry_run: bool) -> None:
        import tempfile

        self.as_json = as_json
        self.quiet = quiet
        self.dry_run = dry_run
        # Closed in finish(); kept open across the pass, so no context manager.
        self._spool = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+", encoding="utf-8")  # noqa: SIM115
        self._count = 0

    def job(self, entry: dict[str, Any]) -> None:
        if self.as_json:
            if self._count:
                self._spool.write(", ")
            self._spool.write(json.dumps(plain(entry)))
        elif not self.quiet:
            verb = "would create a job" if self.dry_run else f"created job {entry['job_id']}"
            self._spool.write(
                f"{verb} for {entry['domain']} (scheduler {entry['scheduler_id']}, "
                f"slot {rfc3339(entry['slot'])}, next {rfc3339(entry['next_run_at'])})\n"
            )
        self._count += 1

    def finish(self, summary: Any) -> None:
        counts = {
            "due": summary.due,
            "created": summary.created,
            "skipped": summary.skipped,
            "failed": summary.failed,
            "missed": summary.missed,
        }
        self._spool.seek(0)
        out = sys.stdout
        if self.as_json:
            head = json.dumps(counts)[:-1]
            out.write(f'{head}, "jobs": [')
            _copy(self._spool, out)
            out.write(f'], "errors": {json.dumps(summary.errors)}}}\n')
        else:
            if not self.quiet:
                _copy(self._spool, out)
                prefix = "tick (dry run)" if self.dry_run else "tick"
                out.write(prefix + ": " + ", ".join(f"{v} {k}" for k, v in counts.items()) + "\n")
            for error in summary.errors:
                print(
                    f"error: scheduler {error['scheduler_id']}: {error['message']}", file=sys.stderr
                )
        out.flush()
        self._spool.close()


def _copy(source: IO[str], target: IO[str]) -> None:
    while chunk := source.read(1 << 16):
        target.write(chunk)
