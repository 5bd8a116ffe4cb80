"""Commands that bring the database to a file and write it as one: apply and export."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from schedctl.cli import session as ctx
from schedctl.cli.app import app, command
from schedctl.cli.options import (
    OrgOpt,
)
from schedctl.errors import InvalidInput


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


@command(app, "apply")
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
) -> None:
    """Make the schedulers as FILE says, in one transaction.

    \b
    Examples:
      schedctl apply -f schedules.yaml --dry-run
      schedctl apply -f schedules.yaml --prune
      schedctl export > schedules.yaml && schedctl apply -f schedules.yaml --check
    """
    from schedctl import apply as applying
    from schedctl import manifest
    from schedctl.output import json as documents
    from schedctl.output.plan import plan_lines

    text, source = _read_file(file)
    checked = manifest.parse(text, source)
    with ctx.connection() as conn:
        plan = applying.apply(
            conn,
            checked,
            org_option=org,
            default_org=ctx.settings().org,
            prune=prune,
            write=not (dry_run or check),
            actor=ctx.actor(),
        )
    if ctx.as_json():
        documents.emit(documents.plan(plan, dry_run or check))
    else:
        print("\n".join(plan_lines(plan, dry_run=dry_run or check)))
    if check and plan.drift:  # adoption alone is not drift
        print(f"error: the database differs from {source}", file=sys.stderr)
        raise typer.Exit(1)


@command(app, json=False)  # it prints YAML
def export(
    all_orgs: Annotated[
        bool, typer.Option("--all-orgs", help="Every organisation's schedulers.")
    ] = False,
    managed: Annotated[
        bool, typer.Option("--managed", help="Only the schedulers apply manages.")
    ] = False,
    org: OrgOpt = None,
) -> None:
    """Print the schedulers as a file `apply -f` takes back unchanged."""
    from schedctl import apply as applying

    if all_orgs and org:
        raise InvalidInput("--org and --all-orgs cannot be used together")
    with ctx.session(org, all_orgs=all_orgs) as (conn, org_id):
        text = applying.export(conn, org_id, managed_only=managed)
    sys.stdout.write(text)
