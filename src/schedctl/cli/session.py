"""What every command needs around its operation: the settings (read once per command), a
checked connection, the organisation it acts for, who is acting, and where output goes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from schedctl.errors import InvalidInput, SchedulerNotFound

if TYPE_CHECKING:
    from schedctl.config import Settings
    from schedctl.db import Connection


class _Current:
    """The settings of the command being run, read at most once (main() forgets them), and
    whether it was given --json."""

    settings: Settings | None = None
    as_json = False


def settings() -> Settings:
    """The settings of this command (the environment and .env, read once)."""
    if _Current.settings is None:
        from schedctl.config import load_settings

        _Current.settings = load_settings()
    return _Current.settings


def forget_settings() -> None:
    """A new command starts: its settings are read anew."""
    _Current.settings = None


@contextmanager
def connection() -> Iterator[Connection]:
    """A database connection, checked for what schedctl needs (db.preflight)."""
    from schedctl import db

    with db.connect(settings()) as conn:
        db.preflight(conn)
        yield conn


@contextmanager
def session(org: str | None, *, all_orgs: bool = False) -> Iterator[tuple[Connection, Any]]:
    """A checked connection, and the id of the organisation the command acts for (None
    with `all_orgs`, which cannot be given with --org). A scheduler not found is reported
    with the organisation it was looked for in."""
    from schedctl import organisations

    if all_orgs and org is not None:
        raise InvalidInput("--all-orgs and --org cannot be used together")
    with connection() as conn:
        if all_orgs:
            yield conn, None
            return
        found = organisations.resolve(conn, org or settings().org)
        try:
            yield conn, found.id
        except SchedulerNotFound as exc:
            exc.message = f"no scheduler {exc.ref!r} in organisation {found.name!r}{exc.hint}"
            raise


def use_json(given: bool) -> None:
    """The command being run was given --json (True) or not: command() says so."""
    _Current.as_json = given


def as_json() -> bool:
    """Whether the command prints one JSON document on stdout (--json)."""
    return _Current.as_json


def terminal() -> bool:
    """Whether stdout is a terminal: people get tables and relative times, scripts plain lines."""
    return sys.stdout.isatty()


def actor() -> str:
    """Who is acting, for the audit trail."""
    return settings().actor_name()


def pair(yes: bool, no: bool, yes_name: str, no_name: str) -> bool | None:
    """The value of an on/off pair of flags: True, False, or None when neither was given
    (both is exit 2)."""
    if yes and no:
        raise InvalidInput(f"{yes_name} and {no_name} cannot be used together")
    return True if yes else False if no else None


def confirm_without_terminal(yes: bool, what: str = "delete", other: str = "") -> None:
    """A change that asks first (a deletion, a change of many) needs --yes or a terminal to
    ask at; `other` names another way out."""
    if not yes and not sys.stdin.isatty():
        raise InvalidInput(f"refusing to {what} without a terminal to confirm: pass --yes{other}")
