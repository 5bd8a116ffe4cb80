"""Commands that manage organisations: org create, rename, delete and list."""

from __future__ import annotations

from typing import Annotated

import typer

from schedctl.cli import session as ctx
from schedctl.cli.app import command, org_app
from schedctl.cli.options import (
    OrgArg,
    OrgNameArg,
    YesOpt,
)
from schedctl.errors import OperationFailed


@command(org_app, "create")
def org_create(name: OrgNameArg) -> None:
    """Create an organisation; a name already taken (in any letter case) is exit 4."""
    from schedctl import organisations
    from schedctl.output import json as documents
    from schedctl.validation import parse_org_name

    checked = parse_org_name(name)
    with ctx.connection() as conn:
        org = organisations.create(conn, checked, ctx.actor())
    if ctx.as_json():
        documents.emit(documents.organisation(org))
    else:
        print(f"created organisation {org.name} ({org.id})")


@command(org_app, "rename")
def org_rename(org: OrgArg, name: OrgNameArg) -> None:
    """Rename an organisation; a name another one has (in any letter case) is exit 4."""
    from schedctl import organisations
    from schedctl.output import json as documents
    from schedctl.validation import parse_org_name

    checked = parse_org_name(name)
    with ctx.connection() as conn:
        old, new = organisations.rename(conn, org, checked, ctx.actor())
    changed = old.name != new.name
    if ctx.as_json():
        documents.emit(documents.organisation(new, changed))
    elif changed:
        print(f"renamed organisation {old.name} to {new.name} ({new.id})")
    else:
        print(f"nothing changed: organisation {new.name} ({new.id}) already has that name")


@command(org_app, "delete")
def org_delete(
    org: OrgArg,
    cascade: Annotated[
        bool,
        typer.Option(
            "--cascade",
            help="Also delete its schedulers, and (through the host's foreign keys) its jobs.",
        ),
    ] = False,
    yes: YesOpt = False,
) -> None:
    """Delete an organisation; one with schedulers or jobs only with --cascade (else exit 4)."""
    from schedctl import organisations
    from schedctl.output import json as documents

    ctx.confirm_without_terminal(yes)
    with ctx.connection() as conn:
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
        deleted = organisations.delete(conn, found.id, cascade=cascade, actor=ctx.actor())
    if ctx.as_json():
        documents.emit(documents.organisation_deleted(deleted))
    else:
        print(
            f"deleted organisation {deleted.organisation.name} ({deleted.organisation.id})"
            + (
                f" with {deleted.schedulers} scheduler(s) and {deleted.jobs} job(s)"
                if deleted.schedulers or deleted.jobs
                else ""
            )
        )


@command(org_app, "list")
def org_list() -> None:
    """List organisations."""
    from schedctl import organisations
    from schedctl.output import json as documents
    from schedctl.output import text as render

    with ctx.connection() as conn:
        orgs = organisations.list_all(conn)
    if ctx.as_json():
        documents.emit([documents.organisation(org) for org in orgs])
    else:
        terminal = ctx.terminal()
        shown = render.short_ids(str(org.id) for org in orgs) if terminal else {}
        render.table(
            "Organisations",
            ("Name", "Schedulers", "Id"),
            [[org.name, str(org.schedulers), shown.get(str(org.id), str(org.id))] for org in orgs],
            terminal=terminal,
            unbroken=(2,),
        )
