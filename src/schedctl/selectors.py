"""Pause and resume many schedulers at once (`--all`, `--match GLOB`): the schedulers a
selector names, and the change made to each one by the same operation as for one, in one
transaction with one audit entry per scheduler changed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from schedctl import db, schedulers
from schedctl.errors import InvalidInput
from schedctl.models import Ref, Scheduler


@dataclass(frozen=True)
class Selector:
    """Which schedulers: every one (`pattern` None) or those whose domain matches a glob, of
    one organisation (None: of every organisation)."""

    organisation_id: uuid.UUID | None
    pattern: str | None = None

    def params(self) -> dict[str, object]:
        return {
            "organisation_id": self.organisation_id,
            "pattern": like_pattern(self.pattern) if self.pattern is not None else None,
        }


def like_pattern(glob: str) -> str:
    """A shell glob on a domain (`*` any characters, `?` one) as a LIKE pattern, lowercased,
    every other character literal."""
    text = glob.strip().lower()
    if not text:
        raise InvalidInput("--match must not be empty")
    out = []
    for char in text:
        if char in "\\%_":
            out.append("\\" + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)


def check_usage(*, ref: str | None, every: bool, match: str | None, all_orgs: bool) -> bool:
    """Whether the command names its schedulers by a selector rather than a REF: exactly one
    of REF, --all and --match; --all-orgs only with a selector (exit 2 otherwise)."""
    named = (("REF", ref is not None), ("--all", every), ("--match", match is not None))
    given = [name for name, on in named if on]
    if len(given) > 1:
        raise InvalidInput(f"{' and '.join(given)} cannot be used together")
    if not given:
        raise InvalidInput("give a REF, or --all or --match GLOB")
    if all_orgs and ref is not None:
        raise InvalidInput("--all-orgs goes with --all or --match, not with a REF")
    return ref is None


def selected(conn: db.Connection, selector: Selector) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """The (id, organisation id) of every scheduler the selector names, by domain."""
    rows = db.fetch_all(conn, "selector_schedulers", **selector.params())
    return [(row["id"], row["organisation_id"]) for row in rows]


@contextmanager
def _transaction(conn: db.Connection, *, write: bool) -> Iterator[None]:
    """One unit of work, committed when `write`, else rolled back (a dry run)."""
    if write:
        with conn.work():
            yield
    else:
        with conn.transaction(force_rollback=True), conn.work():
            yield


def pause(
    conn: db.Connection,
    selector: Selector,
    reason: str | None,
    actor: str,
    until: datetime | timedelta | None,
    *,
    write: bool,
) -> list[Scheduler]:
    """Pause every scheduler the selector names, in one transaction (rolled back unless
    `write`); returns those that changed."""
    changed: list[Scheduler] = []
    with _transaction(conn, write=write):
        for scheduler_id, org_id in selected(conn, selector):
            scheduler, did = schedulers.pause(
                conn, org_id, Ref.of_id(scheduler_id), reason, actor, until=until
            )
            if did:
                changed.append(scheduler)
    return changed


def resume(conn: db.Connection, selector: Selector, actor: str, *, write: bool) -> list[Scheduler]:
    """Resume every scheduler the selector names, in one transaction (rolled back unless
    `write`); returns those that changed."""
    changed: list[Scheduler] = []
    with _transaction(conn, write=write):
        for scheduler_id, org_id in selected(conn, selector):
            scheduler, did = schedulers.resume(conn, org_id, Ref.of_id(scheduler_id), actor)
            if did:
                changed.append(scheduler)
    return changed
