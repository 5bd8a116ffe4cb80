"""Commands that run and watch schedctl itself: migrate, tick, status and hooks."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from schedctl.cli import session as ctx
from schedctl.cli.app import Options, app, command, hooks_app
from schedctl.cli.options import (
    OrgOpt,
    WatchOpt,
)
from schedctl.errors import DatabaseUnavailable, InvalidInput, SchedctlError


@command(app, short_help="Apply pending database migrations.")
def migrate(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be applied.")] = False,
    active_jobs_index: Annotated[
        bool,
        typer.Option(
            "--active-jobs-index",
            help="Also build the opt-in index of active jobs on the host's jobs table "
            "(CREATE INDEX CONCURRENTLY; see the README).",
        ),
    ] = False,
) -> None:
    """Apply pending database migrations (safe to run again and concurrently)."""
    from schedctl import migrate as migration
    from schedctl.output import json as documents

    outcome = migration.migrate(
        ctx.settings(),
        dry_run=dry_run,
        active_jobs_index=active_jobs_index,
    )
    if ctx.as_json():
        documents.emit(documents.migration(outcome, dry_run))
    else:
        verb = "would apply" if dry_run else "applied"
        for name in outcome.migrations:
            print(f"{verb} {name}")
        for label in outcome.released:
            print(f"removed {label} (added to the host's tables by schedctl 0.1)")
        for step in outcome.completed:
            print(step)
        if outcome.index_created:
            print("built index schedctl_jobs_active_idx on jobs")
        if not (
            outcome.migrations or outcome.released or outcome.completed or outcome.index_created
        ):
            print("schema is up to date")
    if not ctx.as_json():  # (JSON has it as "connection")
        from schedctl.models import describe

        # Which database it acted on, beside the other messages: a misspelt URL variable
        # shows here as the wrong database (or the embedded server's).
        print(f"schedctl: database {describe(outcome.connection)}", file=sys.stderr)
    if outcome.index_advised:
        print(
            "hint: jobs is large and has no index of active jobs by domain and organisation; "
            "`schedctl migrate --active-jobs-index` builds one without blocking writes "
            "(see the README)",
            file=sys.stderr,
        )


@command(app, short_help="One pass over every due scheduler (run it every minute).")
def tick(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be done; write nothing.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(metavar="INTEGER", help="Attempt at most N due schedulers.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only failures.")] = False,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            metavar="PATH",
            help="Write the pass's Prometheus gauges to this file (node_exporter textfile "
            "collector), atomically.",
        ),
    ] = None,
) -> None:
    """One pass over every due scheduler of every organisation (run it every minute).

    \b
    Examples:
      schedctl tick --dry-run
      schedctl tick --quiet --metrics-file /var/lib/node_exporter/textfile/schedctl.prom
    """
    from schedctl.output import text as render
    from schedctl.tick import Summary, interrupted_text
    from schedctl.validation import TICK_LIMIT, check_range
    from schedctl.watch import monitored_pass

    if limit is not None:
        check_range("--limit", limit, *TICK_LIMIT)
    report = render.TickReport(as_json=ctx.as_json(), quiet=quiet, dry_run=dry_run)
    summary = Summary()
    try:
        monitored_pass(
            ctx.settings(),
            summary,
            dry_run=dry_run,
            limit=limit,
            metrics_file=metrics_file,
            on_job=report.job,
        )
    except SchedctlError:
        if summary.due and not dry_run:  # batches committed before the pass broke off
            report.finish(summary)
        raise
    report.finish(summary)
    if summary.interrupted:  # Ctrl-C after a batch committed: stopped between batches
        from schedctl.errors import Interrupted

        raise Interrupted(interrupted_text(summary))
    if not summary.ok:
        raise typer.Exit(1)


@command(app, short_help="Health for monitoring: exit 1 on lag or a failed tick.")
def status(
    max_lag: Annotated[
        str,
        typer.Option(
            metavar="DURATION", help="Alert when a scheduler has waited longer (e.g. 5m)."
        ),
    ] = "5m",
    all_orgs: Annotated[
        bool,
        typer.Option(
            "--all-orgs", help="Count every organisation's schedulers (the default without --org)."
        ),
    ] = False,
    prometheus: Annotated[
        bool,
        typer.Option(
            "--prometheus",
            help="Print Prometheus gauges for the whole database (exit 0 when it answered).",
        ),
    ] = False,
    watch: WatchOpt = None,
    org: OrgOpt = None,
) -> None:
    """Health for monitoring: exits 1 when ticks lag or the last tick failed.

    \b
    Examples:
      schedctl status --max-lag 10m || alert "schedctl is not keeping up"
      schedctl status --prometheus > /var/lib/node_exporter/textfile/schedctl_status.prom
    """
    from schedctl import monitoring, refresh
    from schedctl.output import json as documents
    from schedctl.output import text as render
    from schedctl.validation import parse_duration

    lag_limit = parse_duration(max_lag)
    if prometheus and (org is not None or ctx.as_json()):
        raise InvalidInput("--prometheus covers the whole database: it takes no --org or --json")
    refresh.check(watch, as_json=ctx.as_json() or prometheus)
    # Tick and its heartbeat serve the whole database: so does status, unless --org narrows it.
    whole = all_orgs or org is None
    if watch is not None:
        with ctx.session(org, all_orgs=whole) as (conn, org_id):
            refresh.run(
                watch,
                lambda: render.fields(
                    render.status_lines(monitoring.status(conn, org_id, lag_limit))
                ),
            )
        return
    try:
        with ctx.session(org, all_orgs=whole) as (conn, org_id):
            report = monitoring.status(conn, org_id, lag_limit)
    except DatabaseUnavailable:
        if prometheus:  # "down", which a scrape tells from "no data"
            from schedctl.metrics import down_text

            sys.stdout.write(down_text())
        raise
    if prometheus:
        from schedctl.metrics import status_text

        # The gauges carry lag and failures; alerting on them is Prometheus's part.
        sys.stdout.write(status_text(report))
        return
    if ctx.as_json():
        documents.emit(report)
    else:
        render.fields(render.status_lines(report))
    if not report["ok"]:
        from schedctl import journal

        journal.error("; ".join(report["problems"]))
        raise typer.Exit(1)


@command(hooks_app, "show")
def hooks_show() -> None:
    """What the database's hooks are (and what happens where none is set)."""
    from schedctl import hooks

    with ctx.connection() as conn:
        found = hooks.read(conn)
    _emit_hooks(found)


def _emit_hooks(found: Any) -> None:
    from schedctl import hooks
    from schedctl.output import json as documents
    from schedctl.output import text as render

    if ctx.as_json():
        documents.emit(documents.hooks(found))
    else:
        render.fields(render.hooks_lines(found, hooks.DEFAULTS))


def _hook_function(flag: str, form: str, does: str) -> Any:
    """A function hook of `hooks set`: SCHEMA.FUNCTION of the hook's form (its arguments and
    result), and what it does."""
    return typer.Option(flag, metavar="FUNCTION", help=f"SCHEMA.FUNCTION{form}: {does}")


@command(hooks_app, "set")
def hooks_set(
    create_job: Annotated[
        str | None,
        _hook_function(
            "--create-job",
            "(scheduler_id uuid, slot timestamptz) RETURNS text",
            "makes the job for a slot and returns its id (NULL declines the slot).",
        ),
    ] = None,
    create_jobs: Annotated[
        str | None,
        _hook_function(
            "--create-jobs",
            "(scheduler_ids uuid[], slots timestamptz[]) RETURNS "
            "TABLE(scheduler_id uuid, slot timestamptz, job_id text)",
            "makes a batch's jobs in one call (a NULL job_id declines the slot). At most one of "
            "--create-job and --create-jobs.",
        ),
    ] = None,
    cancel_job: Annotated[
        str | None,
        _hook_function(
            "--cancel-job",
            "(job_id text) RETURNS void",
            "cancels an active job that the replace policy replaces.",
        ),
    ] = None,
    notify: Annotated[
        str | None,
        typer.Option(
            "--notify",
            metavar="CHANNEL",
            help="NOTIFY this channel after each committed batch that made jobs.",
        ),
    ] = None,
) -> None:
    """Set hooks; each function is checked (form, privilege) before anything is stored."""
    from schedctl import hooks

    if create_job and create_jobs:
        raise InvalidInput("give at most one of --create-job and --create-jobs")
    changes = hooks.HookChanges(
        create_job=hooks.parse_function(create_job, "--create-job") if create_job else None,
        create_jobs=hooks.parse_function(create_jobs, "--create-jobs") if create_jobs else None,
        cancel_job=hooks.parse_function(cancel_job, "--cancel-job") if cancel_job else None,
        notify=hooks.parse_channel(notify) if notify is not None else None,
    )
    if changes.is_empty():
        raise InvalidInput(
            "nothing to set: give --create-job, --create-jobs, --cancel-job or --notify"
        )
    with ctx.connection() as conn:
        found = hooks.change(conn, changes, ctx.actor())
    _emit_hooks(found)


@dataclass(frozen=True, kw_only=True)
class HooksToClear(Options):
    """The options of `hooks clear`: one for each hook."""

    create_job: Annotated[
        bool, typer.Option("--create-job", help="Back to schedctl's own insert.")
    ] = False
    create_jobs: Annotated[
        bool, typer.Option("--create-jobs", help="No set-based create-jobs hook.")
    ] = False
    cancel_job: Annotated[
        bool, typer.Option("--cancel-job", help="Back to schedctl's own status update.")
    ] = False
    notify: Annotated[bool, typer.Option("--notify", help="Send no notification.")] = False


@command(hooks_app, "clear")
def hooks_clear(*, given: HooksToClear) -> None:
    """Clear hooks (every one when no option is given)."""
    from schedctl import hooks

    chosen = vars(given)
    every = not any(chosen.values())
    changes = hooks.HookChanges(
        **{hook: True if chosen[hook] or every else None for hook in chosen}
    )
    with ctx.connection() as conn:
        found = hooks.change(conn, changes, ctx.actor())
    _emit_hooks(found)
