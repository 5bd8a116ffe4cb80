"""Output of the incident tools for people: the schedulers a selector changed, doctor's checks,
the jobs of every scheduler (`history` without a REF), and `log` with each entry's source
(their JSON documents are in output.json)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from schedctl.doctor import FAIL, OK, WARN, Check
from schedctl.models import AuditEntry, Job, Scheduler
from schedctl.output import text as render
from schedctl.output.tables import Cell

_PAST = {"pause": "paused", "resume": "resumed"}


def selection_lines(changed: Sequence[Scheduler], verb: str, *, dry_run: bool) -> list[str]:
    """One line per scheduler changed (or that would be), then how many."""
    past = _PAST.get(verb, verb)
    done = f"would {verb}" if dry_run else past
    lines = [f"{done} {s.domain} ({s.id})" for s in changed]
    count = f"{len(changed)} scheduler(s) {'would be ' if dry_run else ''}{past}"
    lines.append(count if changed else f"nothing to {verb}")
    return lines


_MARKS = {OK: ("ok", "32"), WARN: ("warn", "33"), FAIL: ("fail", "31")}  # green, yellow, red


def doctor_lines(checks: Sequence[Check], *, terminal: bool) -> list[str]:
    """`STATUS  name: detail`, and the remedy indented under it."""
    color = terminal and not os.environ.get("NO_COLOR")
    lines = []
    for check in checks:
        label, code = _MARKS.get(check.status, (check.status, ""))
        shown = label.ljust(4)
        if color and code:
            shown = f"\x1b[{code}m{shown}\x1b[0m"
        lines.append(f"{shown}  {check.name}: {check.detail}")
        if check.remedy and check.status != OK:
            lines.append(f"      -> {check.remedy}")
    return lines


HISTORY_HEADERS = ("Domain", *render.JOB_HEADERS)


def history_rows(jobs: Sequence[Job], now: Any, *, terminal: bool) -> list[list[Cell]]:
    """`history` without a REF: the rows of one scheduler's history, each with its domain."""
    rows = render.job_rows(jobs, now, terminal=terminal)
    return [[job.domain, *row] for job, row in zip(jobs, rows, strict=True)]


def audit_headers(*, terminal: bool, organisations: bool = False) -> tuple[str, ...]:
    """`log`'s columns with the source after the reason (the organisation, in plain output,
    stays the last column)."""
    headers = render.audit_headers(terminal=terminal, organisations=organisations)
    return _with_source(headers, "Source", terminal=terminal, organisations=organisations)


def audit_rows(
    entries: Sequence[AuditEntry], *, terminal: bool, organisations: bool = False
) -> list[list[Cell]]:
    rows = render.audit_rows(entries, terminal=terminal, organisations=organisations)
    return [
        list(_with_source(row, entry.source or "-", terminal=terminal, organisations=organisations))
        for entry, row in zip(entries, rows, strict=True)
    ]


def _with_source(
    row: Sequence[Any], source: Any, *, terminal: bool, organisations: bool
) -> tuple[Any, ...]:
    if organisations and not terminal:
        return (*row[:-1], source, row[-1])
    return (*row, source)
