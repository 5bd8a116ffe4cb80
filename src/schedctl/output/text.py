"""Output for people: tables on a terminal, plain text otherwise, and the tick report."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import IO, TYPE_CHECKING, Any

from schedctl.domains import display_domain
from schedctl.durations import duration, span
from schedctl.models import AuditEntry, Job, Scheduler, describe, rfc3339
from schedctl.output import json as documents
from schedctl.output.tables import SHORT_ID, Cell

# The table machinery, for the commands that print with `render.table`, `render.fields` and
# `render.short_ids`.
from schedctl.output.tables import fields as fields
from schedctl.output.tables import short_ids as short_ids
from schedctl.output.tables import table as table

if TYPE_CHECKING:
    from schedctl.hooks import Hooks
    from schedctl.pgcron import Removed, Report


def whole_seconds(moment: datetime) -> str:
    """A time for people: RFC 3339 UTC to the second (JSON keeps the microseconds), so that
    the times of one record line up."""
    return rfc3339(moment.replace(microsecond=0))


def relative(moment: datetime, now: datetime) -> str:
    """A due time against `now` for people: "in 5h 12m", "3m overdue", "now"."""
    delta = moment - now
    seconds = abs(delta.total_seconds())
    if seconds < 60:
        return "now"
    text = span(timedelta(seconds=seconds))
    return f"in {text}" if delta.total_seconds() > 0 else f"{text} overdue"


def ago(moment: datetime, now: datetime) -> str:
    """A past event against `now` for people: "5h 12m ago", "just now"."""
    delta = now - moment
    if delta.total_seconds() < 60:
        return "just now"
    return f"{span(delta)} ago"


def short_time(moment: datetime | None) -> str:
    """A time for a table cell: UTC, to the minute."""
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def domain_label(a_label: str) -> str:
    """The domain as stored, with its Unicode form beside it when that differs."""
    unicode_form = display_domain(a_label)
    return a_label if unicode_form == a_label else f"{a_label} ({unicode_form})"


def status_label(scheduler: Scheduler, *, table: bool = False) -> str:
    """ "enabled", or "paused", until when and why; in a table, the time to the minute (its
    words short enough for a narrow column)."""
    if scheduler.is_enabled:
        return "enabled"
    reason = scheduler.pause_reason
    paused = "paused"
    if scheduler.paused_until is not None:
        until = short_time(scheduler.paused_until) if table else rfc3339(scheduler.paused_until)
        paused += f" until {until}"
    return f"{paused}: {reason}" if reason else paused


def every_text(scheduler: Scheduler) -> str:
    """The schedule for people: "24h at 03:00 Europe/London, spread 1h, catch-up 2h"."""
    text = f"{scheduler.schedule_interval_hours}h"
    if scheduler.at is not None:
        text += f" at {scheduler.at} {scheduler.time_zone}"
    if scheduler.spread_seconds:
        text += f", spread {duration(scheduler.spread_seconds)}"
    if scheduler.catchup_window_seconds is not None:
        text += f", catch-up {duration(scheduler.catchup_window_seconds)}"
    return text


def _status_cell(scheduler: Scheduler) -> Cell:
    return (status_label(scheduler, table=True), "green" if scheduler.is_enabled else "yellow")


def scheduler_lines(scheduler: Scheduler, *, terminal: bool) -> list[tuple[str, str]]:
    """The fields of one scheduler for people."""
    next_run = whole_seconds(scheduler.next_run_at)
    if terminal:
        next_run += f"  ({relative(scheduler.next_run_at, scheduler.db_now)})"
    include, exclude = scheduler.include_paths, scheduler.exclude_paths
    return [
        ("id", str(scheduler.id)),
        ("domain", domain_label(scheduler.domain)),
        ("organisation", str(scheduler.organisation_id)),
        ("every", f"{scheduler.schedule_interval_hours}h"),
        ("at", f"{scheduler.at} {scheduler.time_zone}" if scheduler.at else "-"),
        ("time zone", scheduler.time_zone),
        (
            "spread",
            f"{duration(scheduler.spread_seconds)} "
            f"(this scheduler: +{duration(scheduler.spread_offset_seconds)})"
            if scheduler.spread_seconds
            else "-",
        ),
        (
            "catch-up window",
            duration(scheduler.catchup_window_seconds)
            if scheduler.catchup_window_seconds is not None
            else "-",
        ),
        ("next run", next_run),
        ("status", status_label(scheduler)),
        ("overlap", scheduler.overlap_policy),
        ("concurrency", str(scheduler.concurrency)),
        ("find links", "yes" if scheduler.find_links else "no"),
        ("max pages", str(scheduler.max_pages) if scheduler.max_pages else "no limit"),
        ("include", " ".join(include) if include else "-"),
        ("exclude", " ".join(exclude) if exclude else "-"),
        ("required workers", str(scheduler.required_workers)),
        ("created", whole_seconds(scheduler.created_at)),
        ("updated", whole_seconds(scheduler.updated_at)),
    ]


def scheduler_headers(*, terminal: bool, organisations: bool = False) -> tuple[str, ...]:
    """The columns of `list`: on a terminal the organisation first (when shown); in plain
    output the columns of earlier versions keep their places and new ones follow."""
    if terminal:
        head = ("Organisation",) if organisations else ()
        return (*head, *SCHEDULER_HEADERS, "Last run")
    tail = ("Organisation",) if organisations else ()
    return (*SCHEDULER_HEADERS, "Last run", "Last status", *tail)


def organisation_label(name: str | None, org_id: uuid.UUID | None) -> str:
    """An organisation for a table: its name, or its id where it has none (deleted)."""
    if name is not None:
        return name
    return str(org_id) if org_id is not None else "-"


def scheduler_rows(
    schedulers: Sequence[Scheduler], *, terminal: bool, organisations: bool = False
) -> list[list[Cell]]:
    """Table rows for `list`: relative times on a terminal, absolute ones always; the newest
    job schedctl made (time and status); the organisation when `organisations`."""
    if not terminal:
        return [
            [
                s.domain,
                every_text(s),
                rfc3339(s.next_run_at),
                status_label(s),
                s.overlap_policy,
                str(s.id),
                rfc3339(s.last_run.created_at) if s.last_run else "-",
                s.last_run.status if s.last_run else "-",
                *([organisation_label(s.organisation_name, s.organisation_id)] * organisations),
            ]
            for s in schedulers
        ]
    shown_ids = short_ids(str(s.id) for s in schedulers)
    out: list[list[Cell]] = []
    for s in schedulers:
        last: Cell = "-"
        if s.last_run is not None:
            last = (
                f"{short_time(s.last_run.created_at)}\n"
                f"{ago(s.last_run.created_at, s.db_now)}, {s.last_run.status}",
                _JOB_STATUS_STYLES.get(s.last_run.status, ""),
            )
        overdue = s.is_enabled and s.next_run_at <= s.db_now
        when: Cell = (
            f"{short_time(s.next_run_at)}\n{relative(s.next_run_at, s.db_now)}",
            "red" if overdue else "",
        )
        out.append(
            [
                *([organisation_label(s.organisation_name, s.organisation_id)] * organisations),
                domain_label(s.domain),
                every_text(s),
                when,
                _status_cell(s),
                s.overlap_policy,
                shown_ids[str(s.id)],
                last,
            ]
        )
    return out


SCHEDULER_HEADERS = ("Domain", "Every", "Next run", "Status", "Overlap", "Id")


_JOB_STATUS_STYLES = {
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "initializing": "cyan",
}


def job_rows(jobs: Sequence[Job], now: datetime, *, terminal: bool) -> list[list[Cell]]:
    """Table rows for `history`; on a terminal, times also relative to `now` and ids cut
    short; each job's slot and whether the schedule or an operator's `run` made it."""
    if not terminal:
        return [
            [
                job.id,
                job.status,
                f"{job.progress:g}",
                rfc3339(job.created_at),
                rfc3339(job.completed_at) if job.completed_at else "-",
                f"{job.completed_tasks}/{job.total_tasks}",
                str(job.failed_tasks),
                rfc3339(job.slot) if job.slot else "-",
                job.trigger,
            ]
            for job in jobs
        ]
    shown_ids = short_ids(job.id for job in jobs)

    def stamp(moment: datetime | None) -> str:
        return "-" if moment is None else f"{short_time(moment)}\n{ago(moment, now)}"

    return [
        [
            shown_ids[job.id],
            (job.status, _JOB_STATUS_STYLES.get(job.status, "")),
            f"{job.progress:g}",
            stamp(job.created_at),
            stamp(job.completed_at),
            f"{job.completed_tasks}/{job.total_tasks}",
            str(job.failed_tasks),
            short_time(job.slot),
            job.trigger,
        ]
        for job in jobs
    ]


JOB_HEADERS = (
    "Job",
    "Status",
    "Progress",
    "Created",
    "Completed",
    "Done",
    "Failed",
    "Slot",
    "Trigger",
)

# How the audit trail names a scheduler's fields for people.
_FIELD_LABELS = {
    "schedule_interval_hours": "every",
    "next_run_at": "next run",
    "is_enabled": "enabled",
    "pause_reason": "pause reason",
    "overlap_policy": "overlap",
    "concurrency": "concurrency",
    "find_links": "find links",
    "max_pages": "max pages",
    "include_paths": "include",
    "exclude_paths": "exclude",
    "required_workers": "required workers",
    "job_id": "job",
    "slot": "slot",
    "name": "name",
    "schedulers": "schedulers",
    "jobs": "jobs",
    "at": "at",
    "time_zone": "time zone",
    "spread_seconds": "spread (s)",
    "catchup_window_seconds": "catch-up window (s)",
    "paused_until": "paused until",
    "missed": "missed",
}


# A time as the audit trail stores it (RFC 3339, UTC).
_AUDIT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _audit_value_text(name: str, value: Any, *, terminal: bool = False) -> str:
    if value is None or value == []:
        return "-"
    if terminal and isinstance(value, str):
        # In a table cell: a time to the second, a job by the first characters of its id.
        if name == "job_id" and len(value) > SHORT_ID:
            return value[:SHORT_ID]
        if _AUDIT_TIME.match(value):
            return whole_seconds(datetime.fromisoformat(value.replace("Z", "+00:00")))
    if name == "schedule_interval_hours":
        return f"{value}h"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return str(value)


def changes_text(changes: dict[str, Any], *, terminal: bool = False) -> str:
    """An audit entry's changes for people: "every 6h -> 12h; concurrency 5 -> 9" (in a
    table on a terminal, times to the second and job ids cut short)."""
    parts = []
    order = list(_FIELD_LABELS)  # JSONB keeps keys in its own order, not the fields'
    for name, value in sorted(
        changes.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)
    ):
        label = _FIELD_LABELS.get(name, name)
        if not (isinstance(value, list) and len(value) == 2):  # a plain value: tick's slot
            parts.append(f"{label} {_audit_value_text(name, value, terminal=terminal)}")
            continue
        old, new = (_audit_value_text(name, item, terminal=terminal) for item in value)
        if value[0] is None:  # created
            parts.append(f"{label} {new}")
        elif value[1] is None:  # deleted
            parts.append(f"{label} was {old}")
        else:
            parts.append(f"{label} {old} -> {new}")
    return "; ".join(parts)


AUDIT_HEADERS = ("At", "Actor", "Action", "Domain", "Changes", "Reason")


def audit_headers(*, terminal: bool, organisations: bool = False) -> tuple[str, ...]:
    """The columns of `log`; with `organisations`, the organisation's (first on a terminal,
    last in plain output, where the earlier columns keep their places)."""
    if not organisations:
        return AUDIT_HEADERS
    return ("Organisation", *AUDIT_HEADERS) if terminal else (*AUDIT_HEADERS, "Organisation")


def audit_rows(
    entries: Sequence[AuditEntry], *, terminal: bool, organisations: bool = False
) -> list[list[Cell]]:
    """Table rows for `log`, newest first; on a terminal, times also relative to now. An
    entry about no scheduler (an organisation's) has "-" for its domain."""
    rows: list[list[Cell]] = []
    for e in entries:
        domain = "-" if e.domain is None else domain_label(e.domain) if terminal else e.domain
        row: list[Cell] = [
            f"{short_time(e.at)}\n{ago(e.at, e.db_now)}" if terminal else rfc3339(e.at),
            e.actor,
            e.action,
            domain,
            changes_text(e.changes, terminal=terminal),
            e.reason or "",
        ]
        if organisations:
            org = organisation_label(e.organisation_name, e.organisation_id)
            row = [org, *row] if terminal else [*row, org]
        rows.append(row)
    return rows


def last_job_text(job: Job | None, now: datetime, *, terminal: bool) -> str:
    """`show`'s last job: id, status, and when it was made."""
    if job is None:
        return "-"
    created = whole_seconds(job.created_at)
    if terminal:
        created += f" ({ago(job.created_at, now)})"
    return f"{job.id} {job.status} {created}"


def next_runs_text(runs: Sequence[datetime], now: datetime, *, terminal: bool) -> str:
    """`show`'s next run times, one a line; on a terminal, also relative to `now`."""
    return "\n".join(
        whole_seconds(run) + (f"  ({relative(run, now)})" if terminal else "") for run in runs
    )


def local_runs_text(runs: Sequence[Any], time_zone: str, now: datetime, *, terminal: bool) -> str:
    """`show`'s next run times on a wall-clock grid: UTC, the time in the scheduler's zone
    with its UTC offset, and a mark on the days the zone's offset changes."""
    lines = []
    for run in runs:
        minutes = run.utc_offset_seconds // 60
        sign = "-" if minutes < 0 else "+"
        offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        local = run.local_time.strftime("%Y-%m-%d %H:%M")
        line = f"{whole_seconds(run.at)}  {local} {offset} {time_zone}"
        if run.dst_day:
            line += "  (DST change that day)"
        if terminal:
            line += f"  ({relative(run.at, now)})"
        lines.append(line)
    return "\n".join(lines)


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
        # Lines gathered before they go to the spool in one write (a write per job costs more
        # than formatting it).
        self._pending: list[str] = []
        self._count = 0

    def job(self, entry: dict[str, Any]) -> None:
        if self.as_json:
            self._pending.append((", " if self._count else "") + documents.tick_job(entry))
        elif not self.quiet:
            verb = "would create a job" if self.dry_run else f"created job {entry['job_id']}"
            self._pending.append(
                f"{verb} for {entry['domain']} (scheduler {entry['scheduler_id']}, "
                f"slot {rfc3339(entry['slot'])}, next {rfc3339(entry['next_run_at'])})\n"
            )
        self._count += 1
        if len(self._pending) >= 1000:
            self._flush()

    def _flush(self) -> None:
        self._spool.write("".join(self._pending))
        self._pending.clear()

    def finish(self, summary: Any) -> None:
        counts = {**summary.counts(), "resumed": summary.resumed}
        self._flush()
        self._spool.seek(0)
        out = sys.stdout
        if self.as_json:
            out.write(documents.tick_head(counts))
            _copy(self._spool, out)
            out.write(documents.tick_tail(summary.errors))
        else:
            if not self.quiet:
                _copy(self._spool, out)
                prefix = "tick (dry run)" if self.dry_run else "tick"
                resumed = counts.pop("resumed")
                line = prefix + ": " + ", ".join(f"{v} {k}" for k, v in counts.items())
                if resumed:  # paused until a time that has come
                    line += f", {resumed} {'to resume' if self.dry_run else 'resumed'}"
                out.write(line + "\n")
            # An error of the pass itself (no scheduler) is the command's own error line.
            for error in summary.errors:
                if error["scheduler_id"] is not None:
                    from schedctl import journal

                    journal.error(f"scheduler {error['scheduler_id']}: {error['message']}")
        out.flush()
        self._spool.close()


def _copy(source: IO[str], target: IO[str]) -> None:
    while chunk := source.read(1 << 16):
        target.write(chunk)


def status_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The report for people."""
    last = report["last_tick"]
    lag = duration(report["worst_lag_seconds"])
    last_text = (
        f"{whole_seconds(datetime.fromisoformat(last['ticked_at'].replace('Z', '+00:00')))} "
        f"({duration(report['last_tick_age_seconds'])} ago) "
        f"on {last['host']}: "
        + ("ok" if last["ok"] else f"FAILED ({last['message']})")
        + f", {last['created']} created, {last['skipped']} skipped, {last['failed']} failed"
        if last
        else "never"
    )
    return [
        ("status", "ok" if report["ok"] else "PROBLEM: " + "; ".join(report["problems"])),
        ("database", f"{report['database']}: {describe(report['connection'])}"),
        ("schema", report["schema_version"]),
        ("enabled", str(report["enabled"])),
        ("paused", str(report["paused"])),
        ("due now", str(report["due"])),
        ("worst lag", f"{lag} (limit {duration(report['max_lag_seconds'])})"),
        ("last tick", last_text),
        *_pg_cron_status_lines(report.get("pg_cron")),
    ]


def _pg_cron_status_lines(cron: dict[str, Any] | None) -> list[tuple[str, str]]:
    """status: the pg_cron job's latest run, where pg_cron lives in this database."""
    if cron is None:
        return []
    run = cron["last_run"]
    text = f"{cron['name']} ({cron['schedule']}, as {cron['role']}): " + (
        f"{run['status']} at {run['start_time']}" if run else "no run yet"
    )
    return [("pg_cron", text)]


def pg_cron_lines(report: Report) -> list[tuple[str, str]]:
    """`pg-cron install` and `pg-cron show` for people."""
    doc = documents.pg_cron(report)
    job, runs, where = doc["job"], doc["runs"], doc["pg_cron"]
    run_lines = [
        f"{run['start_time'] or '-'}  {run['status']}"
        + (f"  {run['message']}" if run["message"] else "")
        for run in runs
    ]
    return [
        ("job", f"{job['name']} (id {job['jobid']})" + ("" if job["active"] else ", inactive")),
        ("schedule", job["schedule"]),
        ("command", job["command"]),
        ("database", job["database"]),
        ("role", job["role"]),
        ("pg_cron", f"{where['version']} in database {where['database']}"),
        ("runs", "\n".join(run_lines) if run_lines else "none yet"),
    ]


def pg_cron_removed_line(removed: Removed) -> str:
    """`pg-cron remove` for people."""
    return f"removed pg_cron job {removed.name} of database {removed.database}"


def hooks_lines(hooks: Hooks, defaults: dict[str, str]) -> list[tuple[str, str]]:
    """The database's hooks for people; a hook not set says what happens instead."""
    settings = hooks.settings()
    lines = [
        (key.replace("_", "-"), settings[key] or f"not set: {defaults[key]}")
        for key in ("create_job", "create_jobs", "cancel_job", "notify")
        if key != "create_jobs" or settings[key] is not None  # shown where it is set
    ]
    if hooks.updated_at is not None:
        lines.append(("changed", f"{rfc3339(hooks.updated_at)} by {hooks.updated_by}"))
    return lines
