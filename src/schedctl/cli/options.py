"""The options and arguments several commands share, written once."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from schedctl import completion


def ref_argument(help: str) -> Any:
    """REF: a scheduler, by its id (or the first 8+ characters of it) or its domain."""
    return typer.Argument(
        metavar="REF", help=help, show_default=False, autocompletion=completion.refs
    )


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
    str, ref_argument("The scheduler's id (or its first 8+ characters), or its domain.")
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

# The incident tools: what pause/resume select, and --watch.
OptionalRefArg = Annotated[
    str | None,
    ref_argument(
        "The scheduler's id (or its first 8+ characters), or its domain; or give --all or --match."
    ),
]
SelectAllOrgsOpt = Annotated[
    bool, typer.Option("--all-orgs", help="With --all or --match: in every organisation.")
]
WatchOpt = Annotated[
    float | None,
    typer.Option(
        "--watch",
        metavar="[SECONDS]",
        help="Redraw every SECONDS (default 2) on a terminal until Ctrl-C.",
    ),
]
