"""The command line: parse, call the operations, render. No SQL here."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from schedctl.config import Settings, load_settings
from schedctl.errors import InvalidInput, OperationFailed, SchedctlError
from schedctl.models import Overlap

if TYPE_CHECKING:
    from schedctl.db import Connection
    from schedctl.models import Scheduler


app = typer.Typer(
    name="schedctl",
    help="Recurring crawl-job scheduling for the crawling service's PostgreSQL database.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
org_app = typer.Typer(help="Manage organisations.", no_args_is_help=True)
app.add_typer(org_app, name="org")

OrgOpt = Annotated[
    str | None,
    typer.Option("--org", help="Organisation id or name (default: SCHEDCTL_ORG, or the only one)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


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
    str, typer.Argument(help="The scheduler's id, or its domain.", show_default=False)
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
    with `all_orgs`)."""
    from schedctl import organisations

    with _connection() as conn:
        if all_orgs:
            yield conn, None
        else:
            yield conn, organisations.resolve(conn, org or load_settings().org).id


def _terminal() -> bool:
    """Whether stdout is a terminal: people get tables and relative times, scripts plain lines."""
    return sys.stdout.isatty()


def _actor() -> str:
    return load_settings().actor_name()


def _emit_scheduler(scheduler: Scheduler, as_json: bool) -> None:
    from schedctl import render

    if as_json:
        render.print_json(render.doc(scheduler))
    else:
        render.fields(render.scheduler_lines(scheduler, terminal=_terminal()))


EveryOpt = Annotated[
    str | None, typer.Option("--every", help="6h, 12h, 24h or 48h (also 6, 12, 24, 48, 1d, 2d).")
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option(help="Concurrent requests per job, 1-100 (default 20).")
]
FindLinksOpt = Annotated[
    bool | None,
    typer.Option("--find-links/--no-find-links", help="Follow links found on pages (default on)."),
]
MaxPagesOpt = Annotated[
    int | None, typer.Option(help="Page limit per job; 0 means no limit (default).")
]
IncludeOpt = Annotated[
    list[str] | None, typer.Option("--include", help="Crawl only this path prefix (repeatable).")
]
ExcludeOpt = Annotated[
    list[str] | None, typer.Option("--exclude", help="Skip this path prefix (repeatable).")
]
WorkersOpt = Annotated[int | None, typer.Option(help="Workers a job needs, 1-100 (default 1).")]
OverlapOpt = Annotated[
    Overlap | None,
    typer.Option(
        help="When a job of the domain is still active: replace (default), skip or allow.",
        case_sensitive=False,
    ),
]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Run at this wall-clock time of day, HH:MM, in --time-zone."),
]
TimeZoneOpt = Annotated[
    str | None,
    typer.Option(
        "--time-zone",
        help="IANA time zone of --at (default UTC); alone, keeps the local time of day.",
    ),
]
SpreadOpt = Annotated[
    str | None,
    typer.Option(
        "--spread",
        help="Start each run at a stable offset inside this window (e.g. 1h; at most the "
        "interval; 0: none).",
    ),
]
CatchupOpt = Annotated[
    str | None,
    typer.Option(
        "--catchup-window",
        help="Skip a slot reached later than this (at least 1m; 'none': however late).",
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="Resume by itself then: an ISO 8601 time (UTC unless it has an offset) or a "
        "duration such as 2h.",
    ),
]
StartAtOpt = Annotated[
    str | None,
    typer.Option(help="First run: 'now' or an ISO 8601 time (UTC unless it has an offset)."),
]


# ---------------------------------------------------------------- commands


@app.command()
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
        load_settings(), dry_run=dry_run, active_jobs_index=active_jobs_index
    )
    if as_json:
        render.print_json(
            {
                "dry_run": dry_run,
                "migrations": outcome.migrations,
                "removed_from_host_tables": outcome.released,
                "active_jobs_index_created": outcome.index_created,
                "active_jobs_index_advised": outcome.index_advised,
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
    if outcome.index_advised:
        print(
            "hint: jobs is large and has no index of active jobs by domain and organisation; "
            "`schedctl migrate --active-jobs-index` builds one without blocking writes "
            "(see the README)",
            file=sys.stderr,
        )


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Argument(help="The organisation's name.", show_default=False)],
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Create an organisation."""
    from schedctl import organisations, render
    from schedctl.validation import parse_org_name

    checked = parse_org_name(name)
    with _connection() as conn:
        org = organisations.create(conn, checked)
    if as_json:
        render.print_json(render.doc(org))
    else:
        print(f"created organisation {org.name} ({org.id})")


@org_app.command("list")
def org_list(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """List organisations."""
    from schedctl import organisations, render

    with _connection() as conn:
        orgs = organisations.list_all(conn)
    if as_json:
        render.print_json([render.doc(org) for org in orgs])
    else:
        render.table(
            "Organisations",
            ("Name", "Schedulers", "Id"),
            [[org.name, str(org.schedulers), str(org.id)] for org in orgs],
            terminal=_terminal(),
        )


@app.command()
def create(
    domain: Annotated[
        str, typer.Argument(help="The domain to crawl, e.g. example.com.", show_default=False)
    ],
    every: EveryOpt = None,
    concurrency: ConcurrencyOpt = None,
    find_links: FindLinksOpt = None,
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
    """Create a scheduler: crawl DOMAIN every 6, 12, 24 or 48 hours."""
    from schedctl import schedulers, validation

    name = validation.normalize_domain(domain)
    if every is None:
        raise InvalidInput("--every is required (6h, 12h, 24h or 48h)")
    changes = validation.scheduler_changes(
        every=every,
        concurrency=concurrency,
        find_links=find_links,
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


@app.command("list")
def list_(
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Only enabled, or only paused.")
    ] = None,
    due: Annotated[bool, typer.Option("--due", help="Only those due now.")] = False,
    all_orgs: Annotated[bool, typer.Option("--all-orgs", help="Every organisation's.")] = False,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List the organisation's schedulers, soonest first."""
    from schedctl import render, schedulers

    with _session(org, all_orgs=all_orgs) as (conn, org_id):
        found = schedulers.list_for(conn, org_id, enabled=enabled, due_only=due)
    if as_json:
        render.print_json([render.doc(scheduler) for scheduler in found])
    else:
        terminal = _terminal()
        render.table(
            "Schedulers",
            render.SCHEDULER_HEADERS,
            render.scheduler_rows(found, terminal=terminal),
            terminal=terminal,
        )


@app.command()
def show(
    ref: RefArg,
    next_count: Annotated[int, typer.Option("--next", help="How many next run times to list.")] = 5,
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


@app.command()
def update(
    ref: RefArg,
    every: EveryOpt = None,
    concurrency: ConcurrencyOpt = None,
    find_links: FindLinksOpt = None,
    max_pages: MaxPagesOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    clear_include: Annotated[
        bool, typer.Option("--clear-include", help="Remove every include path.")
    ] = False,
    clear_exclude: Annotated[
        bool, typer.Option("--clear-exclude", help="Remove every exclude path.")
    ] = False,
    required_workers: WorkersOpt = None,
    overlap: OverlapOpt = None,
    start_at: Annotated[
        str | None, typer.Option(help="Next run: 'now' or an ISO 8601 time.")
    ] = None,
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Enable or pause.")
    ] = None,
    at: AtOpt = None,
    time_zone: TimeZoneOpt = None,
    spread: SpreadOpt = None,
    catchup_window: CatchupOpt = None,
    until: UntilOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Change a scheduler; a new --every keeps the times on its grid."""
    from schedctl import schedulers, validation

    changes = validation.scheduler_changes(
        every=every,
        concurrency=concurrency,
        find_links=find_links,
        max_pages=max_pages,
        include=include,
        exclude=exclude,
        required_workers=required_workers,
        overlap=overlap,
        start_at=start_at,
        clear_include=clear_include,
        clear_exclude=clear_exclude,
        enabled=enable,
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
        scheduler = schedulers.update(conn, org_id, scheduler_ref, changes, _actor())
    _emit_scheduler(scheduler, as_json)


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


@app.command()
def history(
    ref: RefArg,
    limit: Annotated[int, typer.Option(help="Jobs per page, 1-1000.")] = 20,
    offset: Annotated[int, typer.Option(help="Jobs to skip, newest first.")] = 0,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The scheduler's jobs, newest first."""
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
        )


@app.command()
def pause(
    ref: RefArg,
    reason: Annotated[str | None, typer.Option(help="Why, for the next operator.")] = None,
    until: UntilOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Pause a scheduler, keeping the reason; with --until, a tick resumes it then."""
    from schedctl import schedulers
    from schedctl.validation import parse_reason, parse_ref, parse_until

    why = parse_reason(reason)
    resume_at = parse_until(until) if until is not None else None
    scheduler_ref = parse_ref(ref)
    with _session(org) as (conn, org_id):
        scheduler = schedulers.pause(conn, org_id, scheduler_ref, why, _actor(), until=resume_at)
    _emit_scheduler(scheduler, as_json)


@app.command()
def resume(
    ref: RefArg, org: OrgOpt = None, as_json: JsonOpt = False, verbose: VerboseOpt = False
) -> None:
    """Resume a paused scheduler; a slot missed while paused runs at the next tick."""
    from schedctl import schedulers
    from schedctl.validation import parse_ref

    scheduler_ref = parse_ref(ref)
    with _session(org) as (conn, org_id):
        scheduler = schedulers.resume(conn, org_id, scheduler_ref, _actor())
    _emit_scheduler(scheduler, as_json)


@app.command()
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


@app.command()
def log(
    ref: Annotated[
        str | None, typer.Argument(help="Only this scheduler's entries (id or domain).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Entries to show, 1-1000.")] = 20,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The audit trail: who changed which scheduler, when, and how."""
    from schedctl import render, schedulers
    from schedctl.validation import HISTORY_LIMIT, check_range, parse_ref

    check_range("--limit", limit, *HISTORY_LIMIT)
    scheduler_ref = parse_ref(ref) if ref is not None else None
    with _session(org) as (conn, org_id):
        entries = schedulers.audit_log(conn, org_id, scheduler_ref, limit=limit)
    if as_json:
        render.print_json([render.doc(entry) for entry in entries])
    else:
        terminal = _terminal()
        render.table(
            "Audit log",
            render.AUDIT_HEADERS,
            render.audit_rows(entries, terminal=terminal),
            terminal=terminal,
        )


@app.command()
def tick(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be done; write nothing.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Attempt at most N due schedulers.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only failures.")] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """One pass over every due scheduler of every organisation (run it every minute)."""
    from schedctl import db, render
    from schedctl import tick as tick_pass
    from schedctl.validation import TICK_LIMIT, check_range

    if limit is not None:
        check_range("--limit", limit, *TICK_LIMIT)
    settings = load_settings()
    report = render.TickReport(as_json=as_json, quiet=quiet, dry_run=dry_run)
    # A large pass may open a second connection when the operator asks for it; never to
    # the embedded server, which each connection would start (or join) again.
    second = (
        (lambda: db.connect(settings))
        if settings.tick_connections > 1 and settings.database_url is not None
        else None
    )
    # --quiet is for cron, which mails whatever is printed: not even the embedded notice.
    url = db.database_url(settings, announce=not quiet)
    summary = tick_pass.Summary()
    try:
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
    except SchedctlError as exc:
        if summary.due and not dry_run:  # batches committed before the pass broke off
            summary.errors.append({"scheduler_id": None, "message": exc.message})
            report.finish(summary)
        raise
    report.finish(summary)
    if not summary.ok:
        raise typer.Exit(1)


@app.command()
def status(
    max_lag: Annotated[
        str, typer.Option(help="Alert when a scheduler has waited longer (e.g. 5m).")
    ] = "5m",
    all_orgs: Annotated[
        bool, typer.Option("--all-orgs", help="Count every organisation's schedulers.")
    ] = False,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Health for monitoring: exits 1 when ticks lag or the last tick failed."""
    from schedctl import monitoring, render
    from schedctl.validation import parse_duration

    lag_limit = parse_duration(max_lag)
    with _session(org, all_orgs=all_orgs) as (conn, org_id):
        report = monitoring.status(conn, org_id, lag_limit)
    if as_json:
        render.print_json(report)
    else:
        render.fields(render.status_lines(report))
    if not report["ok"]:
        print(f"error: {'; '.join(report['problems'])}", file=sys.stderr)
        raise typer.Exit(1)


# ---------------------------------------------------------------- entry point


def _fail(message: str, code: int) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error becomes one `error:` line and its exit code."""
    args = sys.argv[1:] if argv is None else argv
    _Verbosity.requested = False
    try:
        result = app(args=args, prog_name="schedctl", standalone_mode=False)
    except SchedctlError as exc:
        if _Verbosity.requested and exc.__cause__ is not None:
            _print_traceback(exc)
        _fail(exc.message, exc.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _fail("interrupted; the current transaction was rolled back", 1)
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
        _fail(f"unexpected {type(exc).__name__}: {_safe(str(exc))}", 1)
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
