"""pg-cron: the tick pass run inside the database on pg_cron's clock (Supabase Cron)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from schedctl.cli import session as ctx
from schedctl.cli.app import command, pg_cron_app

if TYPE_CHECKING:
    from schedctl.pgcron import Report


@command(pg_cron_app, "install")
def pg_cron_install(
    schedule: Annotated[
        str,
        typer.Option(
            metavar="SPEC",
            help="pg_cron schedule: five cron fields, or 'N seconds' (pg_cron 1.5 or later).",
        ),
    ] = "* * * * *",
    role: Annotated[
        str | None,
        typer.Option(
            metavar="ROLE",
            help="Login role the job runs as, not a superuser (default: the connecting role; "
            "schedctl_cron when that is a superuser).",
        ),
    ] = None,
) -> None:
    """Register CALL schedctl.tick() with pg_cron.

    Running it again updates the job in place (schedule, role)."""
    from schedctl import pgcron

    parsed = pgcron.parse_schedule(schedule)
    with ctx.connection() as conn:
        report = pgcron.install(conn, ctx.settings(), parsed, role)
    _emit(report)


@command(pg_cron_app, "show")
def pg_cron_show(
    limit: Annotated[
        int, typer.Option(metavar="INTEGER", help="Show the latest N runs (1-1000).")
    ] = 10,
) -> None:
    """The pg_cron job and its latest runs, from pg_cron's own record."""
    from schedctl import pgcron
    from schedctl.validation import HISTORY_LIMIT, check_range

    check_range("--limit", limit, *HISTORY_LIMIT)
    with ctx.connection() as conn:
        report = pgcron.show(conn, ctx.settings(), limit)
    _emit(report)


@command(pg_cron_app, "remove")
def pg_cron_remove() -> None:
    """Unschedule the pg_cron job of this database."""
    from schedctl import pgcron
    from schedctl.output import json as documents
    from schedctl.output import text as render

    with ctx.connection() as conn:
        removed = pgcron.remove(conn, ctx.settings())
    if ctx.as_json():
        documents.emit(documents.pg_cron_removed(removed))
    else:
        print(render.pg_cron_removed_line(removed))


def _emit(report: Report) -> None:
    from schedctl.output import json as documents
    from schedctl.output import text as render

    if ctx.as_json():
        documents.emit(documents.pg_cron(report))
    else:
        render.fields(render.pg_cron_lines(report))
