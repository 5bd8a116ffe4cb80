"""Commands for incidents: timeline (the runs to come, per bucket) and doctor (what breaks
deployments)."""

from __future__ import annotations

from typing import Annotated

import typer

from schedctl.cli import session as ctx
from schedctl.cli.app import app, command
from schedctl.cli.options import AllOrgsOpt, OrgOpt, WatchOpt


@command(app, short_help="The runs to come, per hour: a picture of the load.")
def timeline(
    hours: Annotated[
        int, typer.Option(metavar="N", help="How many hours ahead to look (default 24).")
    ] = 24,
    bucket: Annotated[
        str, typer.Option(metavar="DURATION", help="Width of each bar (default 1h).")
    ] = "1h",
    all_orgs: AllOrgsOpt = False,
    watch: WatchOpt = None,
    org: OrgOpt = None,
) -> None:
    """The runs that will start in the next hours, per bucket, with the busiest
    organisations; herds (more than 3x the mean) are marked."""
    from schedctl import refresh
    from schedctl import timeline as timelines
    from schedctl.output import json as documents
    from schedctl.output import timeline as charts
    from schedctl.validation import parse_duration

    width = parse_duration(bucket, "--bucket")
    timelines.check_window(hours, width)
    refresh.check(watch, as_json=ctx.as_json())
    with ctx.session(org, all_orgs=all_orgs) as (conn, org_id):

        def draw() -> None:
            found = timelines.count(conn, org_id, hours=hours, bucket=width)
            if ctx.as_json():
                documents.emit(documents.timeline(found))
            elif ctx.terminal():
                charts.chart(found)
            else:
                print("\n".join(charts.lines(found)))

        refresh.run(watch, draw)


@command(app, short_help="Check what breaks deployments; exit 1 when something fails.")
def doctor() -> None:
    """Check the connection, pooler, schema, role, row-level security, hooks, index, ticks,
    the host's own scheduler loop and the clocks: ok, warn or fail, each with a remedy."""
    from schedctl import doctor as checks
    from schedctl.output import incidents
    from schedctl.output import json as documents

    found = checks.run(ctx.settings())
    failed = checks.failed(found)
    if ctx.as_json():
        documents.emit(documents.doctor(found, ok=not failed))
    else:
        for line in incidents.doctor_lines(found, terminal=ctx.terminal()):
            print(line)
    if failed:
        raise typer.Exit(1)
