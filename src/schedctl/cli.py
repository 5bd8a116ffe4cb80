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

if TYPE_CHECKING:
    from psycopg.rows import DictRow


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
def _session(org: str | None = None, *, need_org: bool = True) -> Iterator[tuple[Any, Any]]:
    """A database connection, and the organisation the command acts for."""
    from schedctl import db, organisations

    settings = load_settings()
    with db.connect(settings) as conn:
        org_row = organisations.resolve(conn, org or settings.org) if need_org else None
        yield conn, org_row


def _emit_scheduler(row: DictRow, as_json: bool) -> None:
    from schedctl import render

    if as_json:
        render.print_json(render.scheduler_doc(row))
    else:
        render.fields(render.scheduler_lines(row))


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
    str | None,
    typer.Option(
        help="When a job of the domain is still active: replace (default), skip or allow."
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
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Apply pending database migrations (safe to run again and concurrently)."""
    from schedctl import migrations, render

    applied = migrations.migrate(load_settings(), dry_run=dry_run)
    if as_json:
        render.print_json({"dry_run": dry_run, "migrations": applied})
    elif not applied:
        print("schema is up to date")
    else:
        verb = "would apply" if dry_run else "applied"
        for name in applied:
            print(f"{verb} {name}")


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Argument(help="The organisation's name.", show_default=False)],
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Create an organisation."""
    from schedctl import organisations, render

    with _session(need_org=False) as (conn, _):
        row = organisations.create(conn, name)
    if as_json:
        render.print_json(render.plain(dict(row)))
    else:
        print(f"created organisation {row['name']} ({row['id']})")


@org_app.command("list")
def org_list(as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """List organisations."""
    from schedctl import organisations, render

    with _session(need_org=False) as (conn, _):
        rows = organisations.list_all(conn)
    if as_json:
        render.print_json([render.plain(dict(row)) for row in rows])
    else:
        render.table(
            "Organisations",
            ("Name", "Schedulers", "Id"),
            [[row["name"], str(row["schedulers"]), str(row["id"])] for row in rows],
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
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Create a scheduler: crawl DOMAIN every 6, 12, 24 or 48 hours."""
    from schedctl import schedulers

    template = schedulers.Template(
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
    )
    with _session(org) as (conn, org_row):
        row = schedulers.create(conn, org_row["id"], domain, template)
    _emit_scheduler(row, as_json)


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

    with _session(org, need_org=not all_orgs) as (conn, org_row):
        rows = schedulers.list_for(
            conn, None if all_orgs else org_row["id"], enabled=enabled, due_only=due
        )
    if as_json:
        render.print_json([render.scheduler_doc(row) for row in rows])
    else:
        render.table("Schedulers", render.SCHEDULER_HEADERS, render.scheduler_rows(rows))


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
    from schedctl.validation import NEXT_RUNS, check_range

    check_range("--next", next_count, *NEXT_RUNS)
    with _session(org) as (conn, org_row):
        row = schedulers.get(conn, org_row["id"], ref)
        runs = schedulers.next_runs(row, next_count)
        last = schedulers.last_job(conn, row["id"])
    if as_json:
        render.print_json(
            render.scheduler_doc(row)
            | {
                "next_runs": [render.rfc3339(t) for t in runs],
                "last_job": last and render.job_doc(last),
            }
        )
        return
    lines = render.scheduler_lines(row)
    lines.append(("next runs", render.next_runs_text(runs, row["db_now"])))
    lines.append(("last job", render.last_job_text(last, row["db_now"])))
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
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Change a scheduler; a new --every keeps the times on its grid."""
    from schedctl import schedulers

    template = schedulers.Template(
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
    )
    with _session(org) as (conn, org_row):
        row = schedulers.update(conn, org_row["id"], ref, template)
    _emit_scheduler(row, as_json)


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

    if not yes and not sys.stdin.isatty():
        raise InvalidInput("refusing to delete without a terminal to confirm: pass --yes")
    with _session(org) as (conn, org_row):
        row = schedulers.get(conn, org_row["id"], ref)
        conn.commit()  # hold no transaction open while a person makes up their mind
        if not yes and not typer.confirm(
            f"Delete the scheduler of {row['domain']} ({row['id']})?", err=True
        ):
            raise OperationFailed("not deleted")
        deleted = schedulers.delete(conn, org_row["id"], str(row["id"]))
    if as_json:
        render.print_json({"id": str(deleted["id"]), "deleted": True})
    else:
        print(f"deleted scheduler {deleted['id']} ({deleted['domain']}); its jobs are kept")


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
    from schedctl.validation import HISTORY_LIMIT, OFFSET, check_range

    check_range("--limit", limit, *HISTORY_LIMIT)
    check_range("--offset", offset, *OFFSET)
    with _session(org) as (conn, org_row):
        row = schedulers.get(conn, org_row["id"], ref)
        rows = schedulers.history(conn, row["id"], limit=limit, offset=offset)
    if as_json:
        render.print_json([render.job_doc(job) for job in rows])
    else:
        render.table(
            f"Jobs of {row['domain']}", render.JOB_HEADERS, render.job_rows(rows, row["db_now"])
        )


@app.command()
def pause(
    ref: RefArg,
    reason: Annotated[str | None, typer.Option(help="Why, for the next operator.")] = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Pause a scheduler, keeping the reason."""
    from schedctl import schedulers

    with _session(org) as (conn, org_row):
        row = schedulers.pause(conn, org_row["id"], ref, reason)
    _emit_scheduler(row, as_json)


@app.command()
def resume(
    ref: RefArg, org: OrgOpt = None, as_json: JsonOpt = False, verbose: VerboseOpt = False
) -> None:
    """Resume a paused scheduler; a slot missed while paused runs at the next tick."""
    from schedctl import schedulers

    with _session(org) as (conn, org_row):
        row = schedulers.resume(conn, org_row["id"], ref)
    _emit_scheduler(row, as_json)


@app.command()
def run(
    ref: RefArg, org: OrgOpt = None, as_json: JsonOpt = False, verbose: VerboseOpt = False
) -> None:
    """Create a job now, outside the schedule (the overlap policy applies)."""
    from schedctl import render, schedulers

    with _session(org) as (conn, org_row):
        job = schedulers.run_now(conn, org_row["id"], ref)
    if as_json:
        render.print_json(render.job_doc(job))
    else:
        print(f"created job {job['id']} for {job['domain']}")


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
    from schedctl.validation import HISTORY_LIMIT, check_range

    check_range("--limit", limit, *HISTORY_LIMIT)

    with _session(org) as (conn, org_row):
        rows = schedulers.audit_log(conn, org_row["id"], ref, limit=limit)
    if as_json:
        render.print_json([render.audit_doc(row) for row in rows])
    else:
        render.table("Audit log", render.AUDIT_HEADERS, render.audit_rows(rows))


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
    # A large pass may open a second connection; not to the embedded server, which
    # each connection would start (or join) again.
    second = (lambda: db.connect(settings)) if settings.database_url is not None else None
    # --quiet is for cron, which mails whatever is printed: not even the embedded notice.
    url = db.database_url(settings, announce=not quiet)
    summary = tick_pass.Summary()
    try:
        with db.connect(settings, url) as conn:
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
    with _session(org, need_org=not all_orgs) as (conn, org_row):
        report = monitoring.status(conn, None if all_orgs else org_row["id"], lag_limit)
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
    from typer._click import exceptions as click_exc

    args = sys.argv[1:] if argv is None else argv
    _Verbosity.requested = False
    try:
        result = app(args=args, prog_name="schedctl", standalone_mode=False)
    except SchedctlError as exc:
        if _Verbosity.requested and exc.__cause__ is not None:
            _print_traceback(exc)
        _fail(exc.message, exc.exit_code)
    except click_exc.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else "", file=sys.stderr)
        # Help for people; for scripts, the same one `error:` line as every usage error.
        path = exc.ctx.command_path if exc.ctx else "schedctl"
        _fail(f"missing command (see `{path} --help`)", 2)
    except click_exc.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(exc.format_message().strip().splitlines()[0] + hint, 2)
    except typer.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _fail("interrupted; the current transaction was rolled back", 1)
    except click_exc.ClickException as exc:
        _fail(exc.format_message().strip().splitlines()[0], exc.exit_code)
    except Exception as exc:
        if _Verbosity.requested:
            _print_traceback(exc)
        _fail(f"unexpected {type(exc).__name__}: {_safe(str(exc))}", 1)
    raise SystemExit(result if isinstance(result, int) else 0)


def _configured_secrets() -> tuple[str, ...]:
    """Every form of the configured database password, to keep it out of any output."""
    from schedctl import db

    try:
        url = Settings().database_url
    except Exception:  # settings that do not parse: nothing was connected, no URL printed
        return ()
    return db.url_secrets(url.get_secret_value()) if url else ()


def _safe(text: str) -> str:
    """The first line of `text`, with the password removed."""
    from schedctl import db

    return db.redact(text.strip().splitlines()[0] if text.strip() else "", _configured_secrets())


def _print_traceback(exc: BaseException) -> None:
    from schedctl import db

    text = "".join(traceback.format_exception(exc))
    print(db.redact(text, _configured_secrets()), file=sys.stderr, end="")
