"""Commands that change schedulers: create, update, delete, pause and resume (one, or many by
--all or --match), and run."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from schedctl.cli import session as ctx
from schedctl.cli.app import Options, app, command
from schedctl.cli.changes import CreateOptions, Timing, UpdateOptions, scheduler_changes
from schedctl.cli.options import (
    OptionalRefArg,
    OrgOpt,
    RefArg,
    SelectAllOrgsOpt,
    UntilOpt,
    YesOpt,
)
from schedctl.errors import InvalidInput, OperationFailed

if TYPE_CHECKING:
    from schedctl.db import Connection
    from schedctl.models import Ref, Scheduler
    from schedctl.selectors import Selector


def emit_scheduler(scheduler: Scheduler, changed: bool | None = None) -> None:
    """Print a scheduler as `show` does; for a change, whether anything changed (JSON:
    "changed"; plain: a first line saying nothing did)."""
    from schedctl.output import json as documents
    from schedctl.output import text as render

    if ctx.as_json():
        documents.emit(documents.scheduler(scheduler, changed))
        return
    if changed is False:
        print(f"nothing changed: the scheduler of {scheduler.domain} is already so")
    render.fields(render.scheduler_lines(scheduler, terminal=ctx.terminal()))


@command(app, short_help="Create a scheduler: crawl DOMAIN every 6, 12, 24 or 48 hours.")
def create(
    domain: Annotated[
        str,
        typer.Argument(
            metavar="DOMAIN", help="The domain to crawl, e.g. example.com.", show_default=False
        ),
    ],
    *,
    given: CreateOptions,
    timing: Timing,
    org: OrgOpt = None,
) -> None:
    """Create a scheduler: crawl DOMAIN every 6, 12, 24 or 48 hours.

    \b
    Examples:
      schedctl create example.com --every 24h
      schedctl create shop.example.org --every 24h --at 03:00 --time-zone Europe/London
      schedctl create big.example.net --every 12h --overlap skip --max-pages 5000
    """
    from schedctl import domains, schedulers

    name = domains.normalize_domain(domain)
    if given.every is None:
        raise InvalidInput("--every is required (6h, 12h, 24h or 48h)")
    changes = scheduler_changes(given, timing)
    with ctx.session(org) as (conn, org_id):
        scheduler = schedulers.create(conn, org_id, name, changes, ctx.actor())
    emit_scheduler(scheduler)


@command(app, short_help="Change a scheduler; a new --every keeps its grid.")
def update(
    ref: RefArg,
    *,
    given: UpdateOptions,
    timing: Timing,
    org: OrgOpt = None,
) -> None:
    """Change a scheduler; a new --every keeps the times on its grid. A change to what it
    already is writes nothing (JSON: "changed": false)."""
    from schedctl import domains, schedulers

    changes = scheduler_changes(given, timing)
    if changes.is_empty():
        raise InvalidInput("nothing to change: give at least one option (see --help)")
    scheduler_ref = domains.parse_ref(ref)
    with ctx.session(org) as (conn, org_id):
        scheduler, changed = schedulers.update(conn, org_id, scheduler_ref, changes, ctx.actor())
    emit_scheduler(scheduler, changed)


@command(app)
def delete(
    ref: RefArg,
    yes: YesOpt = False,
    org: OrgOpt = None,
) -> None:
    """Delete a scheduler; its jobs stay."""
    from schedctl import schedulers
    from schedctl.domains import parse_ref
    from schedctl.models import Ref
    from schedctl.output import json as documents

    ctx.confirm_without_terminal(yes)
    scheduler_ref = parse_ref(ref)
    with ctx.session(org) as (conn, org_id):
        # Read outside any transaction: none is held open while a person makes up their mind.
        found = schedulers.get(conn, org_id, scheduler_ref)
        if not yes and not typer.confirm(
            f"Delete the scheduler of {found.domain} ({found.id})?", err=True
        ):
            raise OperationFailed("not deleted")
        deleted = schedulers.delete(conn, org_id, Ref.of_id(found.id), ctx.actor())
    if ctx.as_json():
        documents.emit(documents.scheduler_deleted(deleted))
    else:
        print(f"deleted scheduler {deleted.id} ({deleted.domain}); its jobs are kept")


@dataclass(frozen=True, kw_only=True)
class Selection(Options):
    """The options pause and resume share: the schedulers a selector picks instead of one REF
    (--all or --match) and how, and the organisation."""

    every: Annotated[
        bool, typer.Option("--all", help="Every scheduler of --org (or of all with --all-orgs).")
    ] = False
    match: Annotated[
        str | None,
        typer.Option(
            "--match", metavar="GLOB", help="Schedulers whose domain matches, e.g. '*.example.com'."
        ),
    ] = None
    all_orgs: SelectAllOrgsOpt = False
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --all or --match: list what would change.")
    ] = False
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="With --all or --match: change more than one without asking."
        ),
    ] = False
    org: OrgOpt = None


@command(app, short_help="Pause a scheduler (or many: --all, --match), keeping the reason.")
def pause(
    ref: OptionalRefArg = None,
    reason: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Why, for the next operator.")
    ] = None,
    until: UntilOpt = None,
    *,
    selection: Selection,
) -> None:
    """Pause a scheduler, keeping the reason; with --until, a tick resumes it then. --all or
    --match GLOB pause many in one transaction (more than one needs --yes).

    \b
    Examples:
      schedctl pause example.com --reason "site migration"
      schedctl pause example.com --until 2h
      schedctl pause example.com --until 2030-03-01T06:00:00Z
      schedctl pause --match '*.example.com' --reason "incident 42" --yes
    """
    from schedctl import schedulers, selectors
    from schedctl.validation import parse_reason, parse_until

    why = parse_reason(reason)
    resume_at = parse_until(until) if until is not None else None
    _one_or_many(
        "pause",
        lambda conn, org_id, found: schedulers.pause(
            conn, org_id, found, why, ctx.actor(), until=resume_at
        ),
        lambda conn, selector, write: selectors.pause(
            conn, selector, why, ctx.actor(), resume_at, write=write
        ),
        ref,
        selection,
    )


@command(app, short_help="Resume a paused scheduler (or many: --all, --match).")
def resume(ref: OptionalRefArg = None, *, selection: Selection) -> None:
    """Resume a paused scheduler; a slot missed while paused runs at the next tick. --all or
    --match GLOB resume many in one transaction (more than one needs --yes)."""
    from schedctl import schedulers, selectors

    _one_or_many(
        "resume",
        lambda conn, org_id, found: schedulers.resume(conn, org_id, found, ctx.actor()),
        lambda conn, selector, write: selectors.resume(conn, selector, ctx.actor(), write=write),
        ref,
        selection,
    )


def _one_or_many(
    verb: str,
    one: Callable[[Connection, Any, Ref], tuple[Scheduler, bool]],
    many: Callable[[Connection, Selector, bool], list[Scheduler]],
    ref: str | None,
    given: Selection,
) -> None:
    """pause/resume of one scheduler (REF), or of those a selector picks."""
    from schedctl import selectors
    from schedctl.domains import parse_ref

    if selectors.check_usage(
        ref=ref, every=given.every, match=given.match, all_orgs=given.all_orgs
    ):
        _select_and_change(verb, many, given)
        return
    if given.dry_run or given.yes:
        raise InvalidInput("--dry-run and --yes go with --all or --match")
    assert ref is not None
    with ctx.session(given.org) as (conn, org_id):
        scheduler, changed = one(conn, org_id, parse_ref(ref))
    emit_scheduler(scheduler, changed)


def _select_and_change(
    verb: str,
    change: Callable[[Connection, Selector, bool], list[Scheduler]],
    given: Selection,
) -> None:
    """pause/resume with a selector: what would change (a rolled-back pass), confirmation
    for more than one, then the change in one transaction; with --yes, the change alone."""
    from schedctl import selectors
    from schedctl.output import incidents
    from schedctl.output import json as documents

    with ctx.session(given.org, all_orgs=given.all_orgs) as (conn, org_id):
        selector = selectors.Selector(org_id, given.match)
        if given.yes and not given.dry_run:  # nothing to ask: no rolled-back pass first
            done = change(conn, selector, True)
        else:
            planned = change(conn, selector, False)
            if not given.dry_run and len(planned) > 1:
                ctx.confirm_without_terminal(
                    False, f"{verb} {len(planned)} schedulers", " (or --dry-run to list them)"
                )
                for line in incidents.selection_lines(planned, verb, dry_run=True):
                    print(line, file=sys.stderr)
                question = f"{verb.capitalize()} these {len(planned)} schedulers?"
                if not typer.confirm(question, err=True):
                    raise OperationFailed(f"nothing was {verb}d")
            done = planned if given.dry_run else change(conn, selector, True)
    if ctx.as_json():
        documents.emit(documents.selection(done, dry_run=given.dry_run))
    else:
        for line in incidents.selection_lines(done, verb, dry_run=given.dry_run):
            print(line)


@command(app, short_help="Create a job now, outside the schedule.")
def run(ref: RefArg, org: OrgOpt = None) -> None:
    """Create a job now, outside the schedule (the overlap policy applies)."""
    from schedctl import schedulers
    from schedctl.domains import parse_ref
    from schedctl.output import json as documents

    scheduler_ref = parse_ref(ref)
    with ctx.session(org) as (conn, org_id):
        job = schedulers.run_now(conn, org_id, scheduler_ref, ctx.actor())
    if ctx.as_json():
        documents.emit(documents.record(job))
    else:
        print(f"created job {job.id} for {job.domain}")
