"""The command line: parse, call the operations, render. No SQL here."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand

from schedctl.config import Settings, load_settings
from schedctl.errors import (
    DatabaseUnavailable,
    InvalidInput,
    OperationFailed,
    SchedctlError,
    SchedulerNotFound,
)
from schedctl.models import Overlap

if TYPE_CHECKING:
    from schedctl.db import Connection
    from schedctl.models import Scheduler


_HELP = """Recurring crawl-job scheduling for the crawling service's PostgreSQL database.

The database is SCHEDCTL_DATABASE_URL (a libpq URI, from the environment or a .env file in
the working directory), else DATABASE_URL, else an embedded server for trying schedctl out.
Every command but export (which prints YAML) takes --json (exactly one JSON document on
stdout), -v (a traceback on error) and -h; see `schedctl COMMAND -h`.
"""

_EPILOG = """\b
Exit codes:
  0  success
  1  failed part-way (tick with failed schedulers, a lost connection, a lock timeout;
     status: lag or a failed tick); nothing half-written
  2  invalid usage or input; nothing was written
  3  not found (a scheduler, also another organisation's, or an organisation)
  4  conflict (already exists; refused by the skip policy; an organisation in use)
  5  database unreachable, not migrated, read-only, or a privilege missing
  130  interrupted (Ctrl-C): rolled back, unless the message says what was committed
"""

# -h as well as --help, on every command (click passes it down to subcommands).
_CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="schedctl",
    help=_HELP,
    epilog=_EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)
org_app = typer.Typer(help="Manage organisations.", no_args_is_help=True, context_settings=_CONTEXT)
app.add_typer(org_app, name="org")
hooks_app = typer.Typer(
    help="Hooks: how the host makes, cancels and announces jobs.",
    no_args_is_help=True,
)
app.add_typer(hooks_app, name="hooks")


def _show_version(value: bool) -> None:
    if value:
        from schedctl import __version__

        print(f"schedctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    pass


OrgOpt = Annotated[
    str | None,
    typer.Option(
        "--org",
        metavar="ORG",
        help="Organisation id or name (default: SCHEDCTL_ORG, or the only one).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
AllOrgsOpt = Annotated[bool, typer.Option("--all-orgs", help="Every organisation's.")]


class _Verbosity:
    """Whether the command being run was given -v, as its parser read it (a value such as
    `--reason -v` is not the flag)."""

    requested = False


def _remember_verbose(value: bool) -> bool:
    _Verbosity.requested = _Verbosity.requested or value
    return value


VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="Show the traceback of an error.", callback=_remember_verbose
    ),
]
RefArg = Annotated[
    str,
    typer.Argument(
        metavar="REF",
        help="The scheduler's id (or its first 8+ characters), or its domain.",
        show_default=False,
    ),
]


# ---------------------------------------------------------------- plumbing


@contextmanager
def _connection() -> Iterator[Connection]:
    """A database connection, checked for what schedctl needs (db.preflight)."""
    from schedctl import db

    with db.connect(load_settings()) as conn:
        db.preflight(conn)
        yield conn


@contextmanager
def _session(org: str | None, *, all_orgs: bool = False) -> Iterator[tuple[Connection, Any]]:
    """A checked connection, and the id of the organisation the command acts for (None
    with `all_orgs`, which cannot be given with --org). A scheduler not found is reported
    with the organisation it was looked for in."""
    from schedctl import organisations

    if all_orgs and org is not None:
        raise InvalidInput("--all-orgs and --org cannot be used together")
    with _connection() as conn:
        if all_orgs:
            yield conn, None
            return
        found = organisations.resolve(conn, org or load_settings().org)
        try:
            yield conn, found.id
        except SchedulerNotFound as exc:
            exc.message = f"no scheduler {exc.ref!r} in organisation {found.name!r}{exc.hint}"
            raise


def _terminal() -> bool:
    """Whether stdout is a terminal: people get tables and relative times, scripts plain lines."""
    return sys.stdout.isatty()


def _actor() -> str:
    return load_settings().actor_name()


def _emit_scheduler(scheduler: Scheduler, as_json: bool, changed: bool | None = None) -> None:
    """Print a scheduler as `show` does; for a change, whether anything changed (JSON:
    "changed"; plain: a first line saying nothing did)."""
    from schedctl import render

    if as_json:
        extra = {} if changed is None else {"changed": changed}
        render.print_json(render.doc(scheduler) | extra)
        return
    if changed is False:
        print(f"nothing changed: the scheduler of {scheduler.domain} is already so")
    render.fields(render.scheduler_lines(scheduler, terminal=_terminal()))


def _pair(yes: bool, no: bool, yes_name: str, no_name: str) -> bool | None:
    """The value of an on/off pair of flags: True, False, or None when neither was given
    (both is exit 2)."""
    if yes and no:
        raise InvalidInput(f"{yes_name} and {no_name} cannot be used together")
    return True if yes else False if no else None


EveryOpt = Annotated[
    str | None,
    typer.Option(
        "--every", metavar="INTERVAL", help="6h, 12h, 24h or 48h (also 6, 12, 24, 48, 1d, 2d)."
    ),
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(metavar="INTEGER", help="Concurrent requests per job, 1-100 (default 20)."),
]
FindLinksOpt = Annotated[
    bool, typer.Option("--find-links", help="Follow links found on pages (the default).")
]
NoFindLinksOpt = Annotated[
    bool, typer.Option("--no-find-links", help="Do not follow links found on pages.")
]
MaxPagesOpt = Annotated[
    int | None,
    typer.Option(metavar="INTEGER", help="Page limit per job; 0 means no limit (default)."),
]
IncludeOpt = Annotated[
    list[str] | None,
    typer.Option("--include", metavar="PATH", help="Crawl only this path prefix (repeatable)."),
]
ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option("--exclude", metavar="PATH", help="Skip this path prefix (repeatable)."),
]
WorkersOpt = Annotated[
    int | None, typer.Option(metavar="INTEGER", help="Workers a job needs, 1-100 (default 1).")
]
OverlapOpt = Annotated[
    Overlap | None,
    typer.Option(
        metavar="POLICY",
        help="When a job of the domain is still active: replace (default), skip or allow.",
        case_sensitive=False,
    ),
]
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at", metavar="HH:MM", help="Run at this wall-clock time of day, HH:MM, in --time-zone."
    ),
]
TimeZoneOpt = Annotated[
    str | None,
    typer.Option(
        "--time-zone",
        metavar="ZONE",
        help="IANA time zone of --at (default UTC); alone, keeps the local time of day.",
    ),
]
SpreadOpt = Annotated[
    str | None,
    typer.Option(
        "--spread",
        metavar="DURATION",
        help="Start each run at a stable offset inside this window (e.g. 1h; at most the "
        "interval; 0: none).",
    ),
]
CatchupOpt = Annotated[
    str | None,
    typer.Option(
        "--catchup-window",
        metavar="DURATION",
        help="Skip a slot reached later than this (at least 1m; 'none': however late).",
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="WHEN",
        help="Resume by itself then: an ISO 8601 time (UTC unless it has an offset) or a "
        "duration such as 2h.",
    ),
]
StartAtOpt = Annotated[
    str | None,
    typer.Option(
        metavar="WHEN",
        help="First run: 'now' (to the second) or an ISO 8601 time (UTC unless it has an offset).",
    ),
]
LimitOpt = Annotated[int, typer.Option(metavar="INTEGER", help="Entries to show, 1-1000.")]


# ---------------------------------------------------------------- commands


@app.command(short_help="Apply pending database migrations.")
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
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Apply pending database migrations (safe to run again and concurrently)."""
    from schedctl import migrate as migration
    from schedctl import render

    outcome = migration.migrate(
        load_settings(),
        dry_run=dry_run,
        active_jobs_index=active_jobs_index,
    )
    if as_json:
        render.print_json(
            {
                "dry_run": dry_run,
                "migrations": outcome.migrations,
                "removed_from_host_tables": outcome.released,
                "active_jobs_index_created": outcome.index_created,
                "active_jobs_index_advised": outcome.index_advised,
                "connection": outcome.connection,
            }
        )
    else:
        verb = "would apply" if dry_run else "applied"
        for name in outcome.migrations:
            print(f"{verb} {name}")
        for label in outcome.released:
            print(f"removed {label} (added to the host's tables by schedctl 0.1)")
        if outcome.index_created:
            print("built index schedctl_jobs_active_idx on jobs")
        if not outcome.migrations and not outcome.released and not outcome.index_created:
            print("schema is up to date")
    if not as_json:  # (JSON has it as "connection")
        from schedctl.db import describe

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


OrgNameArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="The organisation's name (unique, ignoring letter case).",
        show_default=False,
    ),
]
OrgArg = Annotated[
    str,
    typer.Argument(metavar="ORG", help="The organisation's id or name.", show_default=False),
]


@org_app.command("create")
def org_create(name: OrgNameArg, as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Create an organisation; a name already taken (in any letter case) is exit 4."""
    from schedctl import organisations, render
    from schedctl.validation import parse_org_name

    checked = parse_org_name(name)
    with _connection() as conn:
        org = organisations.create(conn, checked, _actor())
    if as_json:
        render.print_json(render.doc(org))
    else:
        print(f"created organisation {org.name} ({org.id})")


@org_app.command("rename")
def org_rename(
    org: OrgArg, name: OrgNameArg, as_json: JsonOpt = False, verbose: VerboseOpt = False
) -> None:
    """Rename an organisation; a name another one has (in any letter case) is exit 4."""
    from schedctl import organisations, render
    from schedctl.validation import parse_org_name

    checked = parse_org_name(name)
    with _connection() as conn:
        old, new = organisations.rename(conn, org, checked, _actor())
    changed = old.name != new.name
    if as_json:
        render.print_json(render.doc(new) | {"changed": changed})
    elif changed:
        print(f"renamed organisation {old.name} to {new.name} ({new.id})")
    else:
        print(f"nothing changed: organisation {new.name} ({new.id}) already has that name")


@org_app.command("delete")
def org_delete(
    org: OrgArg,
    cascade: Annotated[
        bool,
        typer.Option(
            "--cascade",
            help="Also delete its schedulers, and (through the host's foreign keys) its jobs.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Delete an organisation; one with schedulers or jobs only with --cascade (else exit 4)."""
    from schedctl import organisations, render

    if not yes and not sys.stdin.isatty():
        raise InvalidInput("refusing to delete without a terminal to confirm: pass --yes")
    with _connection() as conn:
        # Read outside any transaction: none is held open while a person makes up their mind.
        found, schedulers, jobs = organisations.usage(conn, org)
        in_use = bool(schedulers or jobs)
        # In use and no --cascade: refused below (exit 4) without asking.
        if (
            not yes
            and (cascade or not in_use)
            and not typer.confirm(
                f"Delete organisation {found.name} ({found.id})"
                + (f" with its {schedulers} scheduler(s) and {jobs} job(s)" if cascade else "")
                + "?",
                err=True,
            )
        ):
            raise OperationFailed("not deleted")
        deleted = organisations.delete(conn, found.id, cascade=cascade, actor=_actor())
    if as_json:
        render.print_json(
            {
                "id": str(deleted.organisation.id),
                "name": deleted.organisation.name,
                "deleted": True,
                "schedulers_deleted": deleted.schedulers,
                "jobs_deleted": deleted.jobs,
            }
        )
    else:
        print(
            f"deleted organisation {deleted.organisation.name} ({deleted.organisation.id})"
            + (
                f" with {deleted.schedulers} scheduler(s) and {deleted.jobs} job(s)"
                if deleted.schedulers or deleted.jobs
                else ""
            )
        )


@org_app.command("list")
def org_list(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """List organisations."""
    from schedctl import organisations, render

    with _connection() as conn:
        orgs = organisations.list_all(conn)
    if as_json:
        render.print_json([render.doc(org) for org in orgs])
    else:
        terminal = _terminal()
        shown = render.short_ids(str(org.id) for org in orgs) if terminal else {}
        render.table(
            "Organisations",
            ("Name", "Schedulers", "Id"),
            [[org.name, str(org.schedulers), shown.get(str(org.id), str(org.id))] for org in orgs],
            terminal=terminal,
            unbroken=(2,),
        )


@app.command(short_help="Create a scheduler: crawl DOMAIN every 6, 12, 24 or 48 hours.")
def create(
    domain: Annotated[
        str,
        typer.Argument(
            metavar="DOMAIN", help="The domain to crawl, e.g. example.com.", show_default=False
        ),
    ],
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            metavar="INTERVAL",
            help="6h, 12h, 24h or 48h (also 6, 12, 24, 48, 1d, 2d).  [required]",
        ),
    ] = None,
    concurrency: ConcurrencyOpt = None,
    find_links: FindLinksOpt = False,
    no_find_links: NoFindLinksOpt = False,
    max_pages: MaxPagesOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    required_workers: WorkersOpt = None,
    overlap: OverlapOpt = None,
    start_at: StartAtOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it paused.")] = False,
    at: AtOpt = None,
    time_zone: TimeZoneOpt = None,
    spread: SpreadOpt = None,
    catchup_window: CatchupOpt = None,
    until: UntilOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Create a scheduler: crawl DOMAIN every 6, 12, 24 or 48 hours.

    \b
    Examples:
      schedctl create example.com --every 24h
      schedctl create shop.example.org --every 24h --at 03:00 --time-zone Europe/London
      schedctl create big.example.net --every 12h --overlap skip --max-pages 5000
    """
    from schedctl import schedulers, validation

    name = validation.normalize_domain(domain)
    if every is None:
        raise InvalidInput("--every is required (6h, 12h, 24h or 48h)")
    changes = validation.scheduler_changes(
        every=every,
        concurrency=concurrency,
        find_links=_pair(find_links, no_find_links, "--find-links", "--no-find-links"),
        max_pages=max_pages,
        include=include,
        exclude=exclude,
        required_workers=required_workers,
        overlap=overlap,
        start_at=start_at,
        enabled=False if disabled else None,
        at=at,
        time_zone=time_zone,
        spread=spread,
        catchup_window=catchup_window,
        until=until,
    )
    with _session(org) as (conn, org_id):
        scheduler = schedulers.create(conn, org_id, name, changes, _actor())
    _emit_scheduler(scheduler, as_json)


@app.command("list", short_help="List the organisation's schedulers, soonest first.")
def list_(
    enabled: Annotated[bool, typer.Option("--enabled", help="Only enabled ones.")] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="Only paused ones.")] = False,
    due: Annotated[bool, typer.Option("--due", help="Only those due now.")] = False,
    all_orgs: AllOrgsOpt = False,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List the organisation's schedulers, soonest first, with the last job each made."""
    from schedctl import render, schedulers
    from schedctl.validation import exclusive

    state = _pair(enabled, disabled, "--enabled", "--disabled")
    exclusive(due=due, disabled=disabled)  # due ones are enabled
    with _session(org, all_orgs=all_orgs) as (conn, org_id):
        found = schedulers.list_for(conn, org_id, enabled=state, due_only=due)
    if as_json:
        render.print_json([render.doc(s) | {"last_run": _last_run_doc(s)} for s in found])
    else:
        terminal = _terminal()
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


def _last_run_doc(scheduler: Scheduler) -> dict[str, Any] | None:
    from schedctl import render

    last = scheduler.last_run
    if last is None:
        return None
    return {"job_id": last.job_id, "status": last.status, "at": render.rfc3339(last.created_at)}


@app.command()
def show(
    ref: RefArg,
    next_count: Annotated[
        int, typer.Option("--next", metavar="INTEGER", help="How many next run times to list.")
    ] = 5,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show one scheduler, its next run times and its last job."""
    from schedctl import render, schedulers
    from schedctl.validation import NEXT_RUNS, check_range, parse_ref

    check_range("--next", next_count, *NEXT_RUNS)
    scheduler_ref = parse_ref(ref)
    with _session(org) as (conn, org_id):
        scheduler = schedulers.get(conn, org_id, scheduler_ref)
        local_runs = schedulers.next_runs_local(conn, scheduler, next_count)
        runs = [run.at for run in local_runs]
        last = schedulers.last_job(conn, scheduler.id)
    if as_json:
        render.print_json(
            render.doc(scheduler)
            | {
                "next_runs": [render.rfc3339(t) for t in runs],
                "next_runs_local": [
                    {
                        "at": render.rfc3339(run.at),
                        "local_time": run.local_time.isoformat(timespec="seconds"),
                        "utc_offset_seconds": run.utc_offset_seconds,
                        "dst_day": run.dst_day,
                    }
                    for run in local_runs
                ],
                "last_job": last and render.doc(last),
            }
        )
        return
    terminal, now = _terminal(), scheduler.db_now
    lines = render.scheduler_lines(scheduler, terminal=terminal)
    if scheduler.at is not None:
        runs_text = render.local_runs_text(local_runs, scheduler.time_zone, now, terminal=terminal)
    else:
        runs_text = render.next_runs_text(runs, now, terminal=terminal)
    lines.append(("next runs", runs_text))
    lines.append(("last job", render.last_job_text(last, now, terminal=terminal)))
    render.fields(lines)


@app.command(short_help="Change a scheduler; a new --every keeps its grid.")
def update(
    ref: RefArg,
    every: EveryOpt = None,
    concurrency: ConcurrencyOpt = None,
    find_links: FindLinksOpt = False,
    no_find_links: NoFindLinksOpt = False,
    max_pages: MaxPagesOpt = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            metavar="PATH",
            help="Replace the include paths with these (repeatable); see --add-include.",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="PATH",
            help="Replace the exclude paths with these (repeatable); see --add-exclude.",
        ),
    ] = None,
    add_include: Annotated[
        list[str] | None,
        typer.Option("--add-include", metavar="PATH", help="Add an include path (repeatable)."),
    ] = None,
    remove_include: Annotated[
        list[str] | None,
        typer.Option(
            "--remove-include", metavar="PATH", help="Remove an include path (repeatable)."
        ),
    ] = None,
    add_exclude: Annotated[
        list[str] | None,
        typer.Option("--add-exclude", metavar="PATH", help="Add an exclude path (repeatable)."),
    ] = None,
    remove_exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--remove-exclude", metavar="PATH", help="Remove an exclude path (repeatable)."
        ),
    ] = None,
    clear_include: Annotated[
        bool, typer.Option("--clear-include", help="Remove every include path.")
    ] = False,
    clear_exclude: Annotated[
        bool, typer.Option("--clear-exclude", help="Remove every exclude path.")
    ] = False,
    required_workers: WorkersOpt = None,
    overlap: OverlapOpt = None,
    start_at: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help="Next run: 'now' (to the second) or an ISO 8601 time."),
    ] = None,
    enable: Annotated[bool, typer.Option("--enable", help="Enable it.")] = False,
    disable: Annotated[bool, typer.Option("--disable", help="Pause it.")] = False,
    at: AtOpt = None,
    time_zone: TimeZoneOpt = None,
    spread: SpreadOpt = None,
    catchup_window: CatchupOpt = None,
    until: UntilOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Change a scheduler; a new --every keeps the times on its grid. A change to what it
    already is writes nothing (JSON: "changed": false)."""
    from schedctl import schedulers, validation

    changes = validation.scheduler_changes(
        every=every,
        concurrency=concurrency,
        find_links=_pair(find_links, no_find_links, "--find-links", "--no-find-links"),
        max_pages=max_pages,
        include=include,
        exclude=exclude,
        required_workers=required_workers,
        overlap=overlap,
        start_at=start_at,
        clear_include=clear_include,
        clear_exclude=clear_exclude,
        enabled=_pair(enable, disable, "--enable", "--disable"),
        include_add=add_include,
        include_remove=remove_include,
        exclude_add=add_exclude,
        exclude_remove=remove_exclude,
        at=at,
        time_zone=time_zone,
        spread=spread,
        catchup_window=catchup_window,
        until=until,
    )
    if changes.is_empty():
        raise InvalidInput("nothing to change: give at least one option (see --help)")
    scheduler_ref = validation.parse_ref(ref)
    with _session(org) as (conn, org_id):
        scheduler, changed = schedulers.update(conn, org_id, scheduler_ref, changes, _actor())
    _emit_scheduler(scheduler, as_json, changed)


@app.command()
def delete(
    ref: RefArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Delete a scheduler; its jobs stay."""
    from schedctl import render, schedulers
    from schedctl.models import Ref
    from schedctl.validation import parse_ref

    if not yes and not sys.stdin.isatty():
        raise InvalidInput("refusing to delete without a terminal to confirm: pass --yes")
    scheduler_ref = parse_ref(ref)
    with _session(org) as (conn, org_id):
        # Read outside any transaction: none is held open while a person makes up their mind.
        found = schedulers.get(conn, org_id, scheduler_ref)
        if not yes and not typer.confirm(
            f"Delete the scheduler of {found.domain} ({found.id})?", err=True
        ):
            raise OperationFailed("not deleted")
        deleted = schedulers.delete(conn, org_id, Ref.of_id(found.id), _actor())
    if as_json:
        render.print_json({"id": str(deleted.id), "deleted": True})
    else:
        print(f"deleted scheduler {deleted.id} ({deleted.domain}); its jobs are kept")


@app.command(short_help="The scheduler's jobs, newest first.")
def history(
    ref: RefArg,
    limit: Annotated[int, typer.Option(metavar="INTEGER", help="Jobs per page, 1-1000.")] = 20,
    offset: Annotated[int, typer.Option(metavar="INTEGER", help="Jobs to skip, newest first.")] = 0,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The scheduler's jobs, newest first, with each one's slot and whether the schedule
    or a `run` made it."""
    from schedctl import render, schedulers
    from schedctl.validation import HISTORY_LIMIT, OFFSET, check_range, parse_ref

    check_range("--limit", limit, *HISTORY_LIMIT)
    check_range("--offset", offset, *OFFSET)
    scheduler_ref = parse_ref(ref)
    with _session(org) as (conn, org_id):
        scheduler = schedulers.get(conn, org_id, scheduler_ref)
        jobs = schedulers.history(conn, scheduler.id, limit=limit, offset=offset)
    if as_json:
        render.print_json([render.doc(job) for job in jobs])
    else:
        terminal = _terminal()
        render.table(
            f"Jobs of {scheduler.domain}",
            render.JOB_HEADERS,
            render.job_rows(jobs, scheduler.db_now, terminal=terminal),
            terminal=terminal,
            unbroken=(0,),
        )


@app.command(short_help="Pause a scheduler, keeping the reason.")
def pause(
    ref: RefArg,
    reason: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Why, for the next operator.")
    ] = None,
    until: UntilOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Pause a scheduler, keeping the reason; with --until, a tick resumes it then.

    \b
    Examples:
      schedctl pause example.com --reason "site migration"
      schedctl pause example.com --until 2h
      schedctl pause example.com --until 2030-03-01T06:00:00Z
    """
    from schedctl import schedulers
    from schedctl.validation import parse_reason, parse_ref, parse_until

    why = parse_reason(reason)
    resume_at = parse_until(until) if until is not None else None
    scheduler_ref = parse_ref(ref)
    with _session(org) as (conn, org_id):
        scheduler, changed = schedulers.pause(
            conn, org_id, scheduler_ref, why, _actor(), until=resume_at
        )
    _emit_scheduler(scheduler, as_json, changed)


@app.command(short_help="Resume a paused scheduler.")
def resume(
    ref: RefArg, org: OrgOpt = None, as_json: JsonOpt = False, verbose: VerboseOpt = False
) -> None:
    """Resume a paused scheduler; a slot missed while paused runs at the next tick."""
    from schedctl import schedulers
    from schedctl.validation import parse_ref

    scheduler_ref = parse_ref(ref)
    with _session(org) as (conn, org_id):
        scheduler, changed = schedulers.resume(conn, org_id, scheduler_ref, _actor())
    _emit_scheduler(scheduler, as_json, changed)


@app.command(short_help="Create a job now, outside the schedule.")
def run(
    ref: RefArg, org: OrgOpt = None, as_json: JsonOpt = False, verbose: VerboseOpt = False
) -> None:
    """Create a job now, outside the schedule (the overlap policy applies)."""
    from schedctl import render, schedulers
    from schedctl.validation import parse_ref

    scheduler_ref = parse_ref(ref)
    with _session(org) as (conn, org_id):
        job = schedulers.run_now(conn, org_id, scheduler_ref, _actor())
    if as_json:
        render.print_json(render.doc(job))
    else:
        print(f"created job {job.id} for {job.domain}")


@app.command(short_help="The audit trail: who changed what, when, and how.")
def log(
    ref: Annotated[
        str | None,
        typer.Argument(metavar="REF", help="Only this scheduler's entries (id or domain)."),
    ] = None,
    limit: LimitOpt = 20,
    all_orgs: Annotated[
        bool,
        typer.Option("--all-orgs", help="Every organisation's entries, and those of none."),
    ] = False,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The audit trail: who changed which scheduler or organisation, when, and how."""
    from schedctl import render, schedulers
    from schedctl.validation import HISTORY_LIMIT, check_range, parse_ref

    check_range("--limit", limit, *HISTORY_LIMIT)
    scheduler_ref = parse_ref(ref) if ref is not None else None
    with _session(org, all_orgs=all_orgs) as (conn, org_id):
        entries = schedulers.audit_log(conn, org_id, scheduler_ref, limit=limit)
    if as_json:
        render.print_json([render.doc(entry) for entry in entries])
    else:
        terminal = _terminal()
        render.table(
            "Audit log",
            render.audit_headers(terminal=terminal, organisations=all_orgs),
            render.audit_rows(entries, terminal=terminal, organisations=all_orgs),
            terminal=terminal,
            dotted=4 if all_orgs else 3,
        )


@app.command(short_help="One pass over every due scheduler (run it every minute).")
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
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """One pass over every due scheduler of every organisation (run it every minute).

    \b
    Examples:
      schedctl tick --dry-run
      schedctl tick --quiet --metrics-file /var/lib/node_exporter/textfile/schedctl.prom
    """
    from schedctl import db, render
    from schedctl import tick as tick_pass
    from schedctl.validation import TICK_LIMIT, check_range
    from schedctl.watch import TickWatch, check_ping_url

    if limit is not None:
        check_range("--limit", limit, *TICK_LIMIT)
    settings = load_settings()
    watch = None
    if not dry_run:  # a dry run writes nothing and tells monitoring nothing
        from schedctl.metrics import check_target

        ping_url = check_ping_url(
            settings.ping_url.get_secret_value() if settings.ping_url is not None else None
        )
        watch = TickWatch(
            metrics_file=check_target(metrics_file) if metrics_file is not None else None,
            ping_url=ping_url,
        )
        watch.start()
    report = render.TickReport(as_json=as_json, quiet=quiet, dry_run=dry_run)
    # A large pass may open a second connection when the operator asks for it; never to
    # the embedded server, which each connection would start (or join) again.
    second = (
        (lambda: db.connect(settings))
        if settings.tick_connections > 1 and settings.database_url is not None
        else None
    )
    summary = tick_pass.Summary()
    schedulers = None
    try:
        # Announces the embedded server, even with --quiet: a tick that falls back to it is
        # misconfigured (the URL variable is missing or misspelt), and cron mails the notice.
        url = db.database_url(settings)
        with db.connect(settings, url) as conn:
            db.preflight(conn)
            tick_pass.run(
                conn,
                on_job=report.job,
                dry_run=dry_run,
                limit=limit,
                connect=second,
                summary=summary,
            )
            if watch is not None and watch.metrics_file is not None:
                from schedctl.monitoring import scheduler_counts

                schedulers = scheduler_counts(conn)
    except SchedctlError as exc:
        if summary.due and not dry_run:  # batches committed before the pass broke off
            summary.errors.append({"scheduler_id": None, "message": exc.message})
            report.finish(summary)
        if watch is not None:
            watch.finish(summary, None, exc.message)
        raise
    report.finish(summary)
    if watch is not None:
        watch.finish(summary, schedulers, None)
    if summary.interrupted:
        from schedctl.errors import Interrupted

        raise Interrupted(tick_pass.interrupted_text(summary))
    if not summary.ok:
        raise typer.Exit(1)


@app.command(short_help="Health for monitoring: exit 1 on lag or a failed tick.")
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
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Health for monitoring: exits 1 when ticks lag or the last tick failed.

    \b
    Examples:
      schedctl status --max-lag 10m || alert "schedctl is not keeping up"
      schedctl status --prometheus > /var/lib/node_exporter/textfile/schedctl_status.prom
    """
    from schedctl import monitoring, render
    from schedctl.validation import parse_duration

    lag_limit = parse_duration(max_lag)
    if prometheus and (org is not None or as_json):
        raise InvalidInput("--prometheus covers the whole database: it takes no --org or --json")
    # Tick and its heartbeat serve the whole database: so does status, unless --org narrows it.
    try:
        with _session(org, all_orgs=all_orgs or org is None) as (conn, org_id):
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
    if as_json:
        render.print_json(report)
    else:
        render.fields(render.status_lines(report))
    if not report["ok"]:
        from schedctl import journal

        journal.error("; ".join(report["problems"]))
        raise typer.Exit(1)


def _read_file(path: str) -> tuple[str, str]:
    """The text of FILE (`-`: stdin) and the name its problems are reported under."""
    if path == "-":
        source, raw = "<stdin>", sys.stdin.buffer.read()
    else:
        source = path
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8"), source
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{source} is not UTF-8 text (byte {exc.start})") from None


@app.command("apply")
def apply_file(
    file: Annotated[
        str,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help="The YAML file of schedulers ('-' reads stdin).",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 when the database differs from FILE."),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="Delete schedulers managed by apply that FILE no longer lists."
        ),
    ] = False,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Make the schedulers as FILE says, in one transaction.

    \b
    Examples:
      schedctl apply -f schedules.yaml --dry-run
      schedctl apply -f schedules.yaml --prune
      schedctl export > schedules.yaml && schedctl apply -f schedules.yaml --check
    """
    from schedctl import apply as applying
    from schedctl import manifest, render, render_plan

    text, source = _read_file(file)
    checked = manifest.parse(text, source)
    with _connection() as conn:
        plan = applying.apply(
            conn,
            checked,
            org_option=org,
            default_org=load_settings().org,
            prune=prune,
            write=not (dry_run or check),
            actor=_actor(),
        )
    if as_json:
        render.print_json(plan.doc() | {"dry_run": dry_run or check})
    else:
        print("\n".join(render_plan.plan_lines(plan, dry_run=dry_run or check)))
    if check and plan.drift:  # adoption alone is not drift
        print(f"error: the database differs from {source}", file=sys.stderr)
        raise typer.Exit(1)


@app.command()
def export(
    all_orgs: Annotated[
        bool, typer.Option("--all-orgs", help="Every organisation's schedulers.")
    ] = False,
    managed: Annotated[
        bool, typer.Option("--managed", help="Only the schedulers apply manages.")
    ] = False,
    org: OrgOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Print the schedulers as a file `apply -f` takes back unchanged."""
    from schedctl import apply as applying

    if all_orgs and org:
        raise InvalidInput("--org and --all-orgs cannot be used together")
    with _session(org, all_orgs=all_orgs) as (conn, org_id):
        text = applying.export(conn, org_id, managed_only=managed)
    sys.stdout.write(text)


# ---------------------------------------------------------------- help


class _Command(TyperCommand):
    """Help as a reader expects it: arguments by their metavar (`REF`, `[REF]`) in the usage
    line and in their section, without Typer's braces and `<str>` types."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_argument_name(param), record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _argument_name(param: Any) -> str:
    name: str = param.metavar or (param.name or "").upper()
    return name


for _typer_app in (app, org_app, hooks_app):
    for _info in _typer_app.registered_commands:
        if _info.cls in (None, TyperCommand):
            _info.cls = _Command


@hooks_app.command("show")
def hooks_show(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """What the database's hooks are (and what happens where none is set)."""
    from schedctl import hooks

    with _connection() as conn:
        found = hooks.read(conn)
    _emit_hooks(found, as_json)


def _emit_hooks(found: Any, as_json: bool) -> None:
    from schedctl import hooks, render

    if as_json:
        render.print_json(render.hooks_doc(found))
    else:
        render.fields(render.hooks_lines(found, hooks.DEFAULTS))


@hooks_app.command("set")
def hooks_set(
    create_job: Annotated[
        str | None,
        typer.Option(
            "--create-job",
            metavar="FUNCTION",
            help="SCHEMA.FUNCTION(scheduler_id uuid, slot timestamptz) RETURNS text: "
            "makes the job for a slot and returns its id (NULL declines the slot).",
        ),
    ] = None,
    cancel_job: Annotated[
        str | None,
        typer.Option(
            "--cancel-job",
            metavar="FUNCTION",
            help="SCHEMA.FUNCTION(job_id text) RETURNS void: cancels an active job that "
            "the replace policy replaces.",
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
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Set hooks; each function is checked (form, privilege) before anything is stored."""
    from schedctl import hooks

    changes = hooks.HookChanges(
        create_job=hooks.parse_function(create_job, "--create-job") if create_job else None,
        cancel_job=hooks.parse_function(cancel_job, "--cancel-job") if cancel_job else None,
        notify=hooks.parse_channel(notify) if notify is not None else None,
    )
    if changes.is_empty():
        raise InvalidInput("nothing to set: give --create-job, --cancel-job or --notify")
    with _connection() as conn:
        found = hooks.change(conn, changes, _actor())
    _emit_hooks(found, as_json)


@hooks_app.command("clear")
def hooks_clear(
    create_job: Annotated[
        bool, typer.Option("--create-job", help="Back to schedctl's own insert.")
    ] = False,
    cancel_job: Annotated[
        bool, typer.Option("--cancel-job", help="Back to schedctl's own status update.")
    ] = False,
    notify: Annotated[bool, typer.Option("--notify", help="Send no notification.")] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Clear hooks (every one when no option is given)."""
    from schedctl import hooks

    every = not (create_job or cancel_job or notify)
    changes = hooks.HookChanges(
        create_job=True if create_job or every else None,
        cancel_job=True if cancel_job or every else None,
        notify=True if notify or every else None,
    )
    with _connection() as conn:
        found = hooks.change(conn, changes, _actor())
    _emit_hooks(found, as_json)


# ---------------------------------------------------------------- entry point


def _fail(message: str, code: int) -> NoReturn:
    from schedctl import journal

    journal.error(message)
    raise SystemExit(code)


# Interrupted (Ctrl-C, SIGINT): 128 + the signal's number, as shells report it.
INTERRUPTED = 130
_COMPLETION_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _check_completion_shell(args: list[str]) -> None:
    """--install-completion and --show-completion in a shell Typer has no script for:
    one error line (Typer prints its own words and exits 1)."""
    if not {"--install-completion", "--show-completion"} & set(args):
        return
    import shellingham

    try:
        shell, _ = shellingham.detect_shell()
    except shellingham.ShellDetectionFailure:
        shell = None
    if shell not in _COMPLETION_SHELLS:
        _fail(
            f"shell completion is available for bash, zsh, fish and PowerShell, not for "
            f"{shell or 'this shell (not detected)'}: run the command from one of them",
            2,
        )


def _warn_about_unknown_settings() -> None:
    import os

    from schedctl import journal
    from schedctl.config import unknown_settings

    for message in unknown_settings(dict(os.environ)):
        journal.warning(message)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error becomes one `error:` line and its exit code."""
    from schedctl import interrupts

    args = sys.argv[1:] if argv is None else argv
    _Verbosity.requested = False
    interrupts.reset()
    try:
        _warn_about_unknown_settings()
        _check_completion_shell(args)
        result = app(args=args, prog_name="schedctl", standalone_mode=False)
    except SchedctlError as exc:
        if _Verbosity.requested and exc.__cause__ is not None:
            _print_traceback(exc)
        _fail(exc.message, exc.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _fail(interrupts.interrupted_message(), INTERRUPTED)
    except typer.TyperException as exc:  # usage errors, with the context they arose in
        ctx = getattr(exc, "ctx", None)
        path = ctx.command_path if ctx is not None else "schedctl"
        message = exc.format_message().strip()
        if exc.exit_code != 2:
            _fail(message.splitlines()[0] if message else "error", exc.exit_code)
        if message.startswith("Usage:"):  # a group given no command: its help is the message
            _fail(f"missing command (see `{path} --help`)", 2)
        _fail(message.splitlines()[0] + f" (see `{path} --help`)", 2)
    except Exception as exc:
        if _Verbosity.requested:
            _print_traceback(exc)
        _fail(interrupts.failed_message(f"unexpected {type(exc).__name__}: {_safe(str(exc))}"), 1)
    if result == INTERRUPTED:  # Typer turns KeyboardInterrupt into this exit code
        _fail(interrupts.interrupted_message(), INTERRUPTED)
    interrupts.note_held()
    raise SystemExit(result if isinstance(result, int) else 0)


def _configured_secrets() -> tuple[str, ...]:
    """Every form of the configured database password, to keep it out of any output."""
    from schedctl import db

    try:
        settings = Settings()
    except Exception:  # settings that do not parse: nothing was connected, no URL printed
        return ()
    urls = (settings.database_url, settings.migrate_database_url)
    return tuple(secret for url in urls if url for secret in db.url_secrets(url.get_secret_value()))


def _safe(text: str) -> str:
    """The first line of `text`, with the password removed."""
    from schedctl import db

    return db.redact(text.strip().splitlines()[0] if text.strip() else "", _configured_secrets())


def _print_traceback(exc: BaseException) -> None:
    from schedctl import db

    text = "".join(traceback.format_exception(exc))
    print(db.redact(text, _configured_secrets()), file=sys.stderr, end="")
