"""Commands that read schedulers: list, show, history (of one scheduler or of all) and the
audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from schedctl.cli import session as ctx
from schedctl.cli.app import Options, app, command
from schedctl.cli.options import (
    AllOrgsOpt,
    LimitOpt,
    OrgOpt,
    RefArg,
    SelectAllOrgsOpt,
    WatchOpt,
    ref_argument,
)
from schedctl.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from schedctl.models import Job, Scheduler
    from schedctl.output.tables import Cell


def _time_or_ago(flag: str, lead: str, example: str) -> Any:
    """A time from which or before which: a moment (ISO 8601) or how long ago."""
    return typer.Option(
        flag, metavar="WHEN", help=f"{lead} this time (ISO 8601) or this long ago (e.g. {example})."
    )


@dataclass(frozen=True, kw_only=True)
class AcrossSchedulers(Options):
    """history's options without a REF: the jobs made for every scheduler, since when, in
    which status, in every organisation."""

    since: Annotated[str | None, _time_or_ago("--since", "Without REF: jobs made from", "12h")] = (
        None
    )
    status: Annotated[
        str | None,
        typer.Option("--status", metavar="STATUS", help="Without REF: only jobs in this status."),
    ] = None
    all_orgs: SelectAllOrgsOpt = False


@dataclass(frozen=True, kw_only=True)
class AuditFilters(Options):
    """log's filters of the audit trail: when, which actions, whose, made by what."""

    since: Annotated[str | None, _time_or_ago("--since", "From", "2h")] = None
    until: Annotated[str | None, _time_or_ago("--until", "Before", "1h")] = None
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action", metavar="ACTION", help="Only this action, e.g. pause (repeatable)."
        ),
    ] = None
    actor: Annotated[
        str | None, typer.Option("--actor", metavar="NAME", help="Only this actor's entries.")
    ] = None
    source: Annotated[
        str | None,
        typer.Option("--source", metavar="SOURCE", help="Only changes made by cli, apply or tick."),
    ] = None


@command(app, "list", short_help="List the organisation's schedulers, soonest first.")
def list_(
    enabled: Annotated[bool, typer.Option("--enabled", help="Only enabled ones.")] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="Only paused ones.")] = False,
    due: Annotated[bool, typer.Option("--due", help="Only those due now.")] = False,
    all_orgs: AllOrgsOpt = False,
    watch: WatchOpt = None,
    org: OrgOpt = None,
) -> None:
    """List the organisation's schedulers, soonest first, with the last job each made."""
    from schedctl import refresh, schedulers
    from schedctl.cli.changes import exclusive

    state = ctx.pair(enabled, disabled, "--enabled", "--disabled")
    exclusive(due=due, disabled=disabled)  # due ones are enabled
    refresh.check(watch, as_json=ctx.as_json())
    with ctx.session(org, all_orgs=all_orgs) as (conn, org_id):
        refresh.run(
            watch,
            lambda: _print_list(
                schedulers.list_for(conn, org_id, enabled=state, due_only=due), all_orgs
            ),
        )


def _print_list(found: list[Scheduler], all_orgs: bool) -> None:
    """`list`'s output (drawn again by --watch)."""
    from schedctl.output import json as documents
    from schedctl.output import text as render

    if ctx.as_json():
        documents.emit(documents.scheduler_list(found))
    else:
        terminal = ctx.terminal()
        # Stable columns for scripts: plain output has the organisation with --all-orgs.
        several = len({s.organisation_id for s in found}) > 1
        organisations = all_orgs and (several or not terminal)
        render.table(
            "Schedulers",
            render.scheduler_headers(terminal=terminal, organisations=organisations),
            render.scheduler_rows(found, terminal=terminal, organisations=organisations),
            terminal=terminal,
            unbroken=(6 if organisations else 5,),
            dotted=1 if organisations else 0,
        )


@command(app)
def show(
    ref: RefArg,
    next_count: Annotated[
        int, typer.Option("--next", metavar="INTEGER", help="How many next run times to list.")
    ] = 5,
    org: OrgOpt = None,
) -> None:
    """Show one scheduler, its next run times and its last job."""
    from schedctl import schedulers
    from schedctl.domains import parse_ref
    from schedctl.output import json as documents
    from schedctl.output import text as render
    from schedctl.validation import NEXT_RUNS, check_range

    check_range("--next", next_count, *NEXT_RUNS)
    scheduler_ref = parse_ref(ref)
    with ctx.session(org) as (conn, org_id):
        scheduler = schedulers.get(conn, org_id, scheduler_ref)
        local_runs = schedulers.next_runs_local(conn, scheduler, next_count)
        runs = [run.at for run in local_runs]
        last = schedulers.last_job(conn, scheduler.id)
    if ctx.as_json():
        documents.emit(documents.scheduler_shown(scheduler, local_runs, last))
        return
    terminal, now = ctx.terminal(), scheduler.db_now
    lines = render.scheduler_lines(scheduler, terminal=terminal)
    if scheduler.at is not None:
        runs_text = render.local_runs_text(local_runs, scheduler.time_zone, now, terminal=terminal)
    else:
        runs_text = render.next_runs_text(runs, now, terminal=terminal)
    lines.append(("next runs", runs_text))
    lines.append(("last job", render.last_job_text(last, now, terminal=terminal)))
    render.fields(lines)


@command(app, short_help="The jobs of a scheduler (or of every one), newest first.")
def history(
    ref: Annotated[
        str | None,
        ref_argument(
            "The scheduler (id or domain); without it, the jobs schedctl made for every "
            "scheduler of the organisation."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(metavar="INTEGER", help="Jobs per page, 1-1000.")] = 20,
    offset: Annotated[int, typer.Option(metavar="INTEGER", help="Jobs to skip, newest first.")] = 0,
    *,
    across: AcrossSchedulers,
    org: OrgOpt = None,
) -> None:
    """The scheduler's jobs, newest first, with each one's slot and whether the schedule
    or a `run` made it; without REF, those of every scheduler (with --since, --status)."""
    from schedctl import schedulers
    from schedctl.domains import parse_ref
    from schedctl.output import text as render
    from schedctl.validation import HISTORY_LIMIT, OFFSET, check_range

    check_range("--limit", limit, *HISTORY_LIMIT)
    check_range("--offset", offset, *OFFSET)
    if ref is None:
        _history_of_all(org, across, limit, offset)
        return
    if across != AcrossSchedulers():
        raise InvalidInput("--since, --status and --all-orgs go with history without a REF")
    scheduler_ref = parse_ref(ref)
    with ctx.session(org) as (conn, org_id):
        scheduler = schedulers.get(conn, org_id, scheduler_ref)
        jobs = schedulers.history(conn, scheduler.id, limit=limit, offset=offset)
    _print_jobs(
        jobs,
        scheduler.db_now,
        f"Jobs of {scheduler.domain}",
        render.JOB_HEADERS,
        render.job_rows,
        unbroken=(0,),
    )


def _history_of_all(org: str | None, across: AcrossSchedulers, limit: int, offset: int) -> None:
    """`history` without a REF: the jobs schedctl made across the organisation."""
    from schedctl import logs
    from schedctl.output import incidents

    when = logs.parse_when(across.since, "--since")
    with ctx.session(org, all_orgs=across.all_orgs) as (conn, org_id):
        jobs = logs.jobs_made(
            conn, org_id, since=when, status=across.status, limit=limit, offset=offset
        )
        now = logs.database_now(conn)
    _print_jobs(
        jobs,
        now,
        "Jobs",
        incidents.HISTORY_HEADERS,
        incidents.history_rows,
        unbroken=(1,),
        dotted=0,
    )


def _print_jobs(
    jobs: list[Job],
    now: datetime,
    title: str,
    headers: Sequence[str],
    rows: Callable[..., list[list[Cell]]],
    *,
    unbroken: tuple[int, ...],
    dotted: int | None = None,
) -> None:
    """history's output: the jobs as JSON, or as a table of `headers` with the `rows` of them
    (which read the database's `now`)."""
    from schedctl.output import json as documents
    from schedctl.output import text as render

    if ctx.as_json():
        documents.emit(documents.jobs(jobs))
        return
    terminal = ctx.terminal()
    render.table(
        title,
        headers,
        rows(jobs, now, terminal=terminal),
        terminal=terminal,
        unbroken=unbroken,
        dotted=dotted,
    )


@command(app, short_help="The audit trail: who changed what, when, and how.")
def log(
    ref: Annotated[
        str | None, ref_argument("Only this scheduler's entries (id or domain).")
    ] = None,
    limit: LimitOpt = 20,
    *,
    given: AuditFilters,
    all_orgs: Annotated[
        bool,
        typer.Option("--all-orgs", help="Every organisation's entries, and those of none."),
    ] = False,
    org: OrgOpt = None,
) -> None:
    """The audit trail: who changed which scheduler or organisation, when, and how (and
    whether a command, a file or tick did)."""
    from schedctl import logs
    from schedctl.domains import parse_ref
    from schedctl.output import incidents
    from schedctl.output import json as documents
    from schedctl.output import text as render
    from schedctl.validation import HISTORY_LIMIT, check_range

    check_range("--limit", limit, *HISTORY_LIMIT)
    filters = logs.AuditFilters(
        since=logs.parse_when(given.since, "--since"),
        until=logs.parse_when(given.until, "--until"),
        actions=tuple(given.action or ()),
        actor=given.actor,
        source=given.source,
    )
    scheduler_ref = parse_ref(ref) if ref is not None else None
    with ctx.session(org, all_orgs=all_orgs) as (conn, org_id):
        entries = logs.audit_entries(conn, org_id, scheduler_ref, filters, limit=limit)
    if ctx.as_json():
        documents.emit(documents.audit_log(entries))
    else:
        terminal = ctx.terminal()
        render.table(
            "Audit log",
            incidents.audit_headers(terminal=terminal, organisations=all_orgs),
            incidents.audit_rows(entries, terminal=terminal, organisations=all_orgs),
            terminal=terminal,
            dotted=4 if all_orgs else 3,
        )
