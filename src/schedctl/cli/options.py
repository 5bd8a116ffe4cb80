"""The options and arguments the commands share, written once."""

from __future__ import annotations

from typing import Annotated

import typer

from schedctl import completion
from schedctl.fields import DEFAULTS
from schedctl.models import Overlap
from schedctl.validation import CONCURRENCY, REQUIRED_WORKERS


def _range(bounds: tuple[int, int]) -> str:
    return f"{bounds[0]}-{bounds[1]}"


OrgOpt = Annotated[
    str | None,
    typer.Option(
        "--org",
        metavar="ORG",
        help="Organisation id or name (default: SCHEDCTL_ORG, or the only one).",
        autocompletion=completion.organisations,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
AllOrgsOpt = Annotated[bool, typer.Option("--all-orgs", help="Every organisation's.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
RefArg = Annotated[
    str,
    typer.Argument(
        metavar="REF",
        help="The scheduler's id (or its first 8+ characters), or its domain.",
        show_default=False,
        autocompletion=completion.refs,
    ),
]
EveryOpt = Annotated[
    str | None,
    typer.Option(
        "--every",
        metavar="INTERVAL",
        help="6h, 12h, 24h or 48h (also 6, 12, 24, 48, 1d, 2d).",
        autocompletion=completion.every,
    ),
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        metavar="INTEGER",
        help=f"Concurrent requests per job, {_range(CONCURRENCY)} "
        f"(default {DEFAULTS['concurrency']}).",
    ),
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
    int | None,
    typer.Option(
        metavar="INTEGER",
        help=f"Workers a job needs, {_range(REQUIRED_WORKERS)} "
        f"(default {DEFAULTS['required_workers']}).",
    ),
]
OverlapOpt = Annotated[
    Overlap | None,
    typer.Option(
        metavar="POLICY",
        help=f"When a job of the domain is still active: replace, skip or allow "
        f"(default {DEFAULTS['overlap_policy']}).",
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
        help=f"IANA time zone of --at (default {DEFAULTS['time_zone']}); alone, keeps the local "
        "time of day.",
        autocompletion=completion.time_zones,
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

# The incident tools: selectors of pause/resume, log and history filters, --watch.
OptionalRefArg = Annotated[
    str | None,
    typer.Argument(
        metavar="REF",
        help="The scheduler's id (or its first 8+ characters), or its domain; or give --all "
        "or --match.",
        show_default=False,
        autocompletion=completion.refs,
    ),
]
SelectAllOrgsOpt = Annotated[
    bool, typer.Option("--all-orgs", help="With --all or --match: in every organisation.")
]
LogSinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", metavar="WHEN", help="From this time (ISO 8601) or this long ago (e.g. 2h)."
    ),
]
LogUntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", metavar="WHEN", help="Before this time (ISO 8601) or this long ago (e.g. 1h)."
    ),
]
LogActionOpt = Annotated[
    list[str] | None,
    typer.Option("--action", metavar="ACTION", help="Only this action, e.g. pause (repeatable)."),
]
LogActorOpt = Annotated[
    str | None, typer.Option("--actor", metavar="NAME", help="Only this actor's entries.")
]
LogSourceOpt = Annotated[
    str | None,
    typer.Option("--source", metavar="SOURCE", help="Only changes made by cli, apply or tick."),
]
HistorySinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="WHEN",
        help="Without REF: jobs made from this time (ISO 8601) or this long ago (e.g. 12h).",
    ),
]
HistoryStatusOpt = Annotated[
    str | None,
    typer.Option("--status", metavar="STATUS", help="Without REF: only jobs in this status."),
]
WatchOpt = Annotated[
    float | None,
    typer.Option(
        "--watch",
        metavar="[SECONDS]",
        help="Redraw every SECONDS (default 2) on a terminal until Ctrl-C.",
    ),
]
