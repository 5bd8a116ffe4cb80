"""The options and arguments the commands share, written once."""

from __future__ import annotations

from typing import Annotated

import typer

from schedctl import completion


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
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="WHEN",
        help="Resume by itself then: an ISO 8601 time (UTC unless it has an offset) or a "
        "duration such as 2h.",
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
