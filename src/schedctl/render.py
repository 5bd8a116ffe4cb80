"""Output: JSON documents for scripts, tables on a terminal, plain text otherwise."""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import IO, TYPE_CHECKING, Any

from schedctl.models import AuditEntry, Job, Organisation, Scheduler, public_fields
from schedctl.validation import display_domain

if TYPE_CHECKING:
    from schedctl.hooks import Hooks


def rfc3339(moment: datetime) -> str:
    """A time as an RFC 3339 string in UTC."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def whole_seconds(moment: datetime) -> str:
    """A time for people: RFC 3339 UTC to the second (JSON keeps the microseconds), so that
    the times of one record line up."""
    return rfc3339(moment.replace(microsecond=0))


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


def doc(record: Scheduler | Job | AuditEntry | Organisation) -> dict[str, Any]:
    """A record in the JSON shape of the command-line contract: its public fields."""
    return {name: plain(value) for name, value in public_fields(record).items()}


def print_json(doc: Any, out: IO[str] | None = None) -> None:
    """Exactly one JSON document on stdout."""
    stream = out or sys.stdout
    stream.write(json.dumps(doc, ensure_ascii=False) + "\n")


def relative(moment: datetime, now: datetime) -> str:
    """A due time against `now` for people: "in 5h 12m", "3m overdue", "now"."""
    delta = moment - now
    seconds = abs(delta.total_seconds())
    if seconds < 60:
        return "now"
    text = _span(timedelta(seconds=seconds))
    return f"in {text}" if delta.total_seconds() > 0 else f"{text} overdue"


def ago(moment: datetime, now: datetime) -> str:
    """A past event against `now` for people: "5h 12m ago", "just now"."""
    delta = now - moment
    if delta.total_seconds() < 60:
        return "just now"
    return f"{_span(delta)} ago"


def duration(seconds: float) -> str:
    """A span of time for people: "42s", "1m 30s", "5h 12m", "2d 4h"."""
    whole = int(seconds)
    if whole < 3600 and whole % 60:
        return f"{whole // 60}m {whole % 60}s" if whole >= 60 else f"{whole}s"
    return _span(timedelta(seconds=whole)) if whole else "0s"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    # Two units at most, and no zero ones: "2d 4h", "5h", "5h 12m", "12m", "0m".
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if (minutes and not days) or not parts:
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


# A table cell: its text, or its text and a rich style (a colour only a terminal shows).
Cell = str | tuple[str, str]


def _text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


# The fewest leading characters of an id a table shows on a terminal (REF accepts as few).
SHORT_ID = 8


def short_ids(ids: Iterable[str]) -> dict[str, str]:
    """Each id cut to the shortest prefix, SHORT_ID characters or more, that still tells the
    given ids apart (for a table on a terminal; plain and JSON output keep whole ids)."""
    unique = sorted(set(ids))
    length = SHORT_ID
    while length < max((len(i) for i in unique), default=0) and len(
        {i[:length] for i in unique}
    ) < len(unique):
        length += 1
    return {i: i[:length] for i in unique}


def fold_at_dots(name: str, width: int) -> str:
    """A domain broken into lines of at most `width` characters after its dots (a label
    longer than the width keeps a line of its own)."""
    if len(name) <= width:
        return name
    lines: list[str] = []
    line = ""
    labels = name.split(".")
    for index, label in enumerate(labels):
        piece = label + ("." if index < len(labels) - 1 else "")
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
    lines.append(line)
    return "\n".join(lines)


# When a table is wider than the terminal: headers shortened first, then whole columns
# left out, least useful first (the README lists this order). Ids, domains, times and
# statuses are never left out.
SHORT_HEADERS = {"Organisation": "Org", "Schedulers": "Scheds", "Completed": "Ended"}
DROP_ORDER = (
    "Overlap",
    "Progress",
    "Failed",
    "Done",
    "Last run",
    "Trigger",
    "Every",
    "Completed",
    "Reason",
    "Actor",
    "Action",
)
# A word longer than this share of the width may fold (a pasted URL in a pause reason).
_LONGEST_WORD_SHARE = 3


def _lines(cell: Cell) -> list[str]:
    return _text(cell).split("\n")


def _widest_line(texts: Iterable[str]) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for text in texts for line in text.split("\n")), default=0)


def _longest_word(texts: Iterable[str], *, dotted: bool = False) -> int:
    """The widest piece a column may not break: a word, or in a domain a label with its dot."""
    from rich.cells import cell_len

    longest = 0
    for text in texts:
        for word in text.split():
            pieces = [p + "." for p in word.split(".")] if dotted else [word]
            longest = max(longest, *(cell_len(piece) for piece in pieces))
    return longest


def fit_columns(
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    unbroken: Sequence[int] = (),
    dotted: int | None = None,
) -> tuple[list[int], list[str], list[int]]:
    """Which columns a table `width` characters wide shows, under which headers, and how
    wide each is: every column at least as wide as its widest word (its whole value for
    `unbroken` ones), headers shortened and columns dropped in DROP_ORDER until that fits,
    then the room left shared out towards each column's natural width."""
    cap = max(12, width // _LONGEST_WORD_SHARE)

    def measure(index: int, header: str) -> tuple[int, int]:
        texts = [_text(row[index]) for row in rows]
        natural = max(_widest_line(texts), _widest_line([header]))
        if index in unbroken:
            return natural, natural
        words = min(cap, _longest_word(texts, dotted=index == dotted))
        return max(words, _longest_word([header])), natural

    def overhead(count: int) -> int:
        return 3 * count + 1  # a space either side of each cell, and the borders

    shown = list(range(len(headers)))
    names = list(headers)
    sizes = {i: measure(i, names[i]) for i in shown}

    def too_wide() -> bool:
        return sum(sizes[i][0] for i in shown) + overhead(len(shown)) > width

    if too_wide():
        for i in shown:
            if names[i] in SHORT_HEADERS:
                names[i] = SHORT_HEADERS[names[i]]
                sizes[i] = measure(i, names[i])
    for name in DROP_ORDER:
        if not too_wide():
            break
        shown = [i for i in shown if headers[i] != name]
    widths = {i: sizes[i][0] for i in shown}
    room = width - overhead(len(shown)) - sum(widths.values())
    while room > 0:
        wanting = [i for i in shown if widths[i] < sizes[i][1]]
        if not wanting:
            break
        share = max(1, room // len(wanting))
        for i in wanting:
            extra = min(share, sizes[i][1] - widths[i], room)
            widths[i] += extra
            room -= extra
            if room <= 0:
                break
    return shown, [names[i] for i in shown], [widths[i] for i in shown]


def table(
    title: str | None,
    headers: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    terminal: bool,
    unbroken: Sequence[int] = (),
    dotted: int | None = None,
) -> None:
    """A rich table on a terminal, fitted to its width (fit_columns: no word split, no line
    wider than the terminal); tab-separated lines otherwise. On a terminal the columns in
    `unbroken` (short ids) never fold, and the cells of the `dotted` column (domains) fold
    after a dot rather than inside a label."""
    if not terminal:
        print("\t".join(h.lower().replace(" ", "_") for h in headers))
        for row in rows:
            # A cell's second line (a relative time) is for people at a terminal.
            print("\t".join(_text(cell).split("\n")[0] for cell in row))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # rich reads the terminal's width itself (COLUMNS overrides it).
    console = Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
    cells = [list(row) for row in rows]
    shown, names, widths = fit_columns(
        headers, cells, console.width, unbroken=unbroken, dotted=dotted
    )
    grid = Table(title=title, header_style="bold", expand=False)
    for index, name, width in zip(shown, names, widths, strict=True):
        grid.add_column(name, width=width, no_wrap=index in unbroken, overflow="fold")
    for row in cells:
        shown_cells: list[Cell] = []
        for index, width in zip(shown, widths, strict=True):
            cell = row[index]
            if index == dotted:
                text = "\n".join(fold_at_dots(line, width) for line in _lines(cell))
                cell = text if isinstance(cell, str) else (text, cell[1])
            shown_cells.append(cell)
        # Text, not markup: a pause reason like "[/blog]" is shown as written.
        grid.add_row(*(Text(c) if isinstance(c, str) else Text(*c) for c in shown_cells))
    console.print(grid)


def fields(pairs: Sequence[tuple[str, str]], *, columns: int | None = None) -> None:
    """A record as aligned "key  value" lines; a value of several lines continues under the
    first. On a terminal (or given `columns`), a line longer than its width wraps between
    words under the value, so that no line is wider than the terminal."""
    width = max((len(key) for key, _ in pairs), default=0)
    if columns is None and sys.stdout.isatty():
        import shutil

        columns = shutil.get_terminal_size().columns
    for key, value in pairs:
        lines = value.split("\n")
        if columns is not None:
            lines = [part for line in lines for part in wrap_words(line, columns - width - 2)]
        first, *rest = lines
        print(f"{key.ljust(width)}  {first}")
        for line in rest:
            print(f"{' ' * width}  {line}")


def wrap_words(line: str, width: int) -> list[str]:
    """A line in pieces of at most `width` characters, broken between words (only a word
    longer than the whole width is cut)."""
    import textwrap

    if len(line) <= width or width < 10:
        return [line]
    return textwrap.wrap(line, width, break_on_hyphens=False, replace_whitespace=False) or [line]


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
        self._count = 0

    def job(self, entry: dict[str, Any]) -> None:
        if self.as_json:
            # What json.dumps would write, formatted directly: this runs once per job, tens
            # of thousands of times in a large pass. Ids and times need no escaping.
            job_id = "null" if entry["job_id"] is None else f'"{entry["job_id"]}"'
            self._spool.write(
                f'{", " if self._count else ""}{{"scheduler_id": "{entry["scheduler_id"]}", '
                f'"job_id": {job_id}, '
                f'"organisation_id": "{entry["organisation_id"]}", '
                f'"domain": {json.dumps(entry["domain"])}, '
                f'"slot": "{rfc3339(entry["slot"])}", '
                f'"next_run_at": "{rfc3339(entry["next_run_at"])}"}}'
            )
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
            "resumed": summary.resumed,
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


def _db_describe(target: dict[str, Any]) -> str:
    from schedctl.db import describe

    return describe(target)


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
        ("database", f"{report['database']}: {_db_describe(report['connection'])}"),
        ("schema", report["schema_version"]),
        ("enabled", str(report["enabled"])),
        ("paused", str(report["paused"])),
        ("due now", str(report["due"])),
        ("worst lag", f"{lag} (limit {duration(report['max_lag_seconds'])})"),
        ("last tick", last_text),
    ]


def hooks_doc(hooks: Hooks) -> dict[str, Any]:
    """The database's hooks as `hooks show --json` prints them: each hook's
    value, null where schedctl's default applies."""
    return hooks.settings() | {
        "updated_at": hooks.updated_at and rfc3339(hooks.updated_at),
        "updated_by": hooks.updated_by,
    }


def hooks_lines(hooks: Hooks, defaults: dict[str, str]) -> list[tuple[str, str]]:
    """The database's hooks for people; a hook not set says what happens instead."""
    settings = hooks.settings()
    lines = [
        (key.replace("_", "-"), settings[key] or f"not set: {defaults[key]}")
        for key in ("create_job", "cancel_job", "notify")
    ]
    if hooks.updated_at is not None:
        lines.append(("changed", f"{rfc3339(hooks.updated_at)} by {hooks.updated_by}"))
    return lines
