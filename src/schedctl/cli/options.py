"""The options and arguments the commands share, written once."""

from __future__ import annotations

from typing import Annotated

import typer

from schedctl.fields import DEFAULTS
from schedctl.models import Overlap
from schedctl.validation import CONCURRENCY, REQUIRED_WORKERS


def _range(bounds: tuple[int, int]) -> str:
    return f"{bounds[0]}-{bounds[1]}"


class Verbosity:
    """Whether the command being run was given -v, as its parser read it (a value such as
    `--reason -v` is not the flag)."""

    requested = False


def _remember_verbose(value: bool) -> bool:
    Verbosity.requested = Verbosity.requested or value
    return value


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
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="Show the traceback of an error.", callback=_remember_verbose
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
RefArg = Annotated[
    str,
    typer.Argument(
        metavar="REF",
        help="The scheduler's id (or its first 8+ characters), or its domain.",
        show_default=False,
    ),
]
EveryOpt = Annotated[
    str | None,
    typer.Option(
        "--every", metavar="INTERVAL", help="6h, 12h, 24h or 48h (also 6, 12, 24, 48, 1d, 2d)."
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
