"""Commands that read schedulers: list, show, history (of one scheduler or of all) and the
audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from schedctl import completion
from schedctl.cli import session as ctx
from schedctl.cli.app import app, command
from schedctl.cli.options import (
    AllOrgsOpt,
    HistorySinceOpt,
    HistoryStatusOpt,
    LimitOpt,
    LogActionOpt,
    LogActorOpt,
    LogSinceOpt,
    LogSourceOpt,
    LogUntilOpt,
    OrgOpt,
    RefArg,
    SelectAllOrgsOpt,
    WatchOpt,
)
from schedctl.errors import InvalidInput

if TYPE_CHECKING:
    from schedctl.models import Scheduler


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
        typer.Argument(
            metavar="REF",
            help="The scheduler (id or domain); without it, the jobs schedctl made for every "
            "scheduler of the organisation.",
            show_default=False,
            autocompletion=completion.refs,
        ),
    ] = None,
    limit: Annotated[int, typer.Option(metavar="INTEGER", help="Jobs per page, 1-1000.")] = 20,
    offset: Annotated[int, typer.Option(metavar="INTEGER", help="Jobs to skip, newest first.")] = 0,
    since: HistorySinceOpt = None,
    status: HistoryStatusOpt = None,
    all_orgs: SelectAllOrgsOpt = False,
    org: OrgOpt = None,
) -> None:
    """The scheduler's jobs, newest first, with each one's slot and whether the schedule
    or a `run` made it; without REF, those of every scheduler (with --since, --status)."""
    from schedctl import schedulers
    from schedctl.domains import parse_ref
    from schedctl.output import json as documents
    from schedctl.output import text as render
    from schedctl.validation import HISTORY_LIMIT, OFFSET, check_range

    check_range("--limit", limit, *HISTORY_LIMIT)
    check_range("--offset", offset, *OFFSET)
    if ref is None:
        _history_of_all(org, all_orgs, since, status, limit, offset)
        return
    if since is not None or status is not None or all_orgs:
        raise InvalidInput("--since, --status and --all-orgs go with history without a REF")
    scheduler_ref = parse_ref(ref)
    with ctx.session(org) as (conn, org_id):
        scheduler = schedulers.get(conn, org_id, scheduler_ref)
        jobs = schedulers.history(conn, scheduler.id, limit=limit, offset=offset)
    if ctx.as_json():
        documents.emit(documents.jobs(jobs))
    else:
        terminal = ctx.terminal()
        render.table(
            f"Jobs of {scheduler.domain}",
            render.JOB_HEADERS,
            render.job_rows(jobs, scheduler.db_now, terminal=terminal),
            terminal=terminal,
            unbroken=(0,),
        )


def _history_of_all(
    org: str | None,
    all_orgs: bool,
    since: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> None:
    """`history` without a REF: the jobs schedctl made across the organisation."""
    from schedctl import logs
    from schedctl.output import incidents
    from schedctl.output import json as documents
    from schedctl.output import text as render

    when = logs.parse_when(since, "--since")
    with ctx.session(org, all_orgs=all_orgs) as (conn, org_id):
        jobs = logs.jobs_made(conn, org_id, since=when, status=status, limit=limit, offset=offset)
        now = logs.database_now(conn)
    if ctx.as_json():
        documents.emit(documents.jobs(jobs))
    else:
        terminal = ctx.terminal()
        render.table(
            "Jobs",
            incidents.HISTORY_HEADERS,
            incidents.history_rows(jobs, now, terminal=terminal),
            terminal=terminal,
            unbroken=(1,),
            dotted=0,
        )


@command(app, short_help="The audit trail: who changed what, when, and how.")
def log(
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="REF",
            help="Only this scheduler's entries (id or domain).",
            autocompletion=completion.refs,
        ),
    ] = None,
    limit: LimitOpt = 20,
    since: LogSinceOpt = None,
    until: LogUntilOpt = None,
    action: LogActionOpt = None,
    actor: LogActorOpt = None,
    source: LogSourceOpt = None,
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
        since=logs.parse_when(since, "--since"),
        until=logs.parse_when(until, "--until"),
        actions=tuple(action or ()),
        actor=actor,
        source=source,
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
