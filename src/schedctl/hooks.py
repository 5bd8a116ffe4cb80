"""The database's hooks: the host's SQL functions that make and cancel jobs, and the channel
told about new jobs. Checking and storing them, and the statements that call them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from schedctl import db
from schedctl.errors import Conflict, InvalidInput, OperationFailed
from schedctl.sql import query

# A NOTIFY payload must stay under 8000 bytes (the server's default); the ids listed are cut
# well before, and the payload says so.
NOTIFY_PAYLOAD_BUDGET = 7000

# What schedctl does where no hook is set, as `hooks show` tells it.
DEFAULTS = {
    "create_job": "schedctl inserts the job itself (pending, linked by jobs.scheduler_id)",
    "cancel_job": "schedctl sets the job's status to cancelled and completed_at to now",
    "notify": "no notification; workers find new jobs in the jobs table",
}

_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_QUOTED_IDENTIFIER = re.compile(r'"((?:[^"]|"")+)"')
_CHANNEL = re.compile(r"[a-z_][a-z0-9_$]*")
_MAX_IDENTIFIER_BYTES = 63
_STEP = re.compile(r"(-- step (\w+):[^\n]*\n)(.*?)(\n[ \t]*-- end step)", re.DOTALL)


@dataclass(frozen=True)
class Function:
    """A SQL function named by schema and name (as PostgreSQL stores them)."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{_quote(self.schema)}.{_quote(self.name)}"

    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class Hooks:
    """The database's hooks; None is schedctl's default."""

    create_job: Function | None = None
    cancel_job: Function | None = None
    notify: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @classmethod
    def from_row(cls, **row: Any) -> Hooks:
        def function(schema: str | None, name: str | None) -> Function | None:
            return Function(schema, name) if schema is not None and name is not None else None

        return cls(
            create_job=function(row["create_job_schema"], row["create_job_function"]),
            cancel_job=function(row["cancel_job_schema"], row["cancel_job_function"]),
            notify=row["notify_channel"],
            updated_at=row["updated_at"],
            updated_by=row["updated_by"],
        )

    def settings(self) -> dict[str, str | None]:
        """The three hooks as text (None: the default), for output and the audit trail."""
        return {
            "create_job": str(self.create_job) if self.create_job else None,
            "cancel_job": str(self.cancel_job) if self.cancel_job else None,
            "notify": self.notify,
        }

    def names(self) -> tuple[str, ...]:
        """The functions set, as an error's context may name them (schema-qualified, or not
        where the schema is on the search path)."""
        functions = [f for f in (self.create_job, self.cancel_job) if f is not None]
        return tuple(str(f) for f in functions) + tuple(_quote(f.name) for f in functions)


@dataclass(frozen=True)
class HookChanges:
    """Checked input of `hooks set` (a value to set) or `hooks clear` (True: clear it)."""

    create_job: Function | bool | None = None
    cancel_job: Function | bool | None = None
    notify: str | bool | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


# ---------------------------------------------------------------- checking input


def _quote(identifier: str) -> str:
    """An identifier as PostgreSQL prints it: bare when it can be, else double-quoted."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", identifier):
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


def _identifier(text: str, option: str) -> tuple[str, str]:
    """The first identifier of `text` (folded to lower case unless quoted) and the rest."""
    quoted = _QUOTED_IDENTIFIER.match(text)
    if quoted:
        name, rest = quoted.group(1).replace('""', '"'), text[quoted.end() :]
    else:
        plain = _PLAIN_IDENTIFIER.match(text)
        if not plain:
            raise InvalidInput(
                f"{option}: expected SCHEMA.FUNCTION, a schema-qualified function name "
                "(e.g. public.make_job)"
            )
        name, rest = plain.group(0).lower(), text[plain.end() :]
    if len(name.encode()) > _MAX_IDENTIFIER_BYTES or any(not ch.isprintable() for ch in name):
        raise InvalidInput(f"{option}: {name!r} is not a valid identifier")
    return name, rest


def parse_function(text: str, option: str) -> Function:
    """A schema-qualified function name, without arguments (`public.make_job`,
    `"Host".make_job`)."""
    text = text.strip()
    schema, rest = _identifier(text, option)
    if not rest.startswith("."):
        raise InvalidInput(
            f"{option}: the function name must be schema-qualified, e.g. public.{schema}"
        )
    name, rest = _identifier(rest[1:], option)
    if rest.startswith("("):
        raise InvalidInput(
            f"{option}: give the function's name only, without its arguments ({schema}.{name})"
        )
    if rest:
        raise InvalidInput(f"{option}: expected SCHEMA.FUNCTION, got {text!r}")
    return Function(schema, name)


def parse_channel(text: str) -> str:
    """A NOTIFY channel: a lower-case identifier, so that `LISTEN name` finds it unquoted."""
    channel = text.strip()
    if not _CHANNEL.fullmatch(channel) or len(channel.encode()) > _MAX_IDENTIFIER_BYTES:
        raise InvalidInput(
            "--notify: a channel is a lower-case identifier of at most 63 bytes "
            "(letters, digits, _ and $; not starting with a digit), e.g. schedctl_jobs"
        )
    return channel


# ---------------------------------------------------------------- reading and changing


def read(conn: db.Connection) -> Hooks:
    """The database's hooks."""
    return db.record(conn, "hooks_get", Hooks.from_row)


_SIGNATURES = {
    "create_job": "(scheduler_id uuid, slot timestamptz) RETURNS text",
    "cancel_job": "(job_id text) RETURNS void",
}


def _check_function(conn: db.Connection, kind: str, function: Function) -> None:
    """Refuse (exit 2) a function that is missing, has another form than the hook's, or
    that the current role may not execute."""
    option = "--" + kind.replace("_", "-")
    found = db.fetch_all(
        conn, "hook_function_candidates", kind=kind, schema=function.schema, name=function.name
    )
    if not found:
        raise InvalidInput(f"{option}: there is no function {function}")
    fitting = [row for row in found if row["fits"]]
    if not fitting:
        seen = "; ".join(f"{row['signature']} RETURNS {row['result']}" for row in found)
        raise InvalidInput(
            f"{option}: {function} must be {function}{_SIGNATURES[kind]}; found {seen}"
        )
    if not fitting[0]["executable"]:
        raise InvalidInput(
            f"{option}: role {fitting[0]['role']} may not execute {fitting[0]['signature']} "
            "(it needs EXECUTE on the function and USAGE on its schema)"
        )


def change(conn: db.Connection, changes: HookChanges, actor: str) -> Hooks:
    """Set or clear hooks (True clears); each function is checked against the catalog
    first. The change and its audit entry commit together; nothing is written on refusal
    or when nothing changes."""
    if changes.is_empty():
        raise InvalidInput("nothing to change: give at least one option (see --help)")
    with conn.work():
        old = db.record(conn, "hooks_lock", Hooks.from_row)
        new = old
        if isinstance(changes.create_job, Function):
            _check_function(conn, "create_job", changes.create_job)
            new = replace(new, create_job=changes.create_job)
        elif changes.create_job is True:
            new = replace(new, create_job=None)
        if isinstance(changes.cancel_job, Function):
            _check_function(conn, "cancel_job", changes.cancel_job)
            new = replace(new, cancel_job=changes.cancel_job)
        elif changes.cancel_job is True:
            new = replace(new, cancel_job=None)
        if isinstance(changes.notify, str):
            new = replace(new, notify=changes.notify)
        elif changes.notify is True:
            new = replace(new, notify=None)
        before, after = old.settings(), new.settings()
        diff = {key: [before[key], after[key]] for key in before if before[key] != after[key]}
        if not diff:
            return old
        db.execute(
            conn,
            "hooks_write",
            create_job_schema=new.create_job.schema if new.create_job else None,
            create_job_function=new.create_job.name if new.create_job else None,
            cancel_job_schema=new.cancel_job.schema if new.cancel_job else None,
            cancel_job_function=new.cancel_job.name if new.cancel_job else None,
            notify_channel=new.notify,
            actor=actor,
        )
        db.execute(
            conn,
            "audit_insert",
            actor=actor,
            action="hooks",
            scheduler_id=None,
            organisation_id=None,
            domain=None,
            changes=Jsonb(diff),
            reason=None,
        )
        return read(conn)


# ---------------------------------------------------------------- the statements that call them


def _with_function(name: str, function: Function) -> str:
    """The named statement with `{function}` replaced by the function's quoted name."""
    return sql.SQL(query(name)).format(function=function.identifier()).as_string(None)


@lru_cache(maxsize=16)
def tick_statement(hooks: Hooks, dry_run: bool) -> str:
    """tick_apply with its cancel and create steps replaced by the hooks' (or, in a dry
    run, by steps that call no hook and write nothing where a hook is set)."""
    steps: dict[str, str] = {}
    if hooks.cancel_job is not None:
        steps["cancel_job"] = (
            query("tick_apply_cancel_dry_run")
            if dry_run
            else _with_function("tick_apply_cancel_hook", hooks.cancel_job)
        )
    if hooks.create_job is not None:
        steps["create_job"] = (
            query("tick_apply_create_dry_run")
            if dry_run
            else _with_function("tick_apply_create_hook", hooks.create_job)
        )

    def substitute(match: re.Match[str]) -> str:
        step = steps.get(match.group(2))
        return match.group(0) if step is None else match.group(1) + step + match.group(4)

    statement, found = _STEP.subn(substitute, query("tick_apply"))
    assert found == 2, "tick_apply must mark its cancel_job and create_job steps"
    return statement


def notify_payload(job_ids: Sequence[str]) -> str:
    """The NOTIFY payload for a committed batch: how many jobs it made and their ids, as
    many as fit (`truncated` says when some were left out)."""
    listed: list[str] = []
    size = 60  # the keys and the count
    for job_id in job_ids:
        size += len(json.dumps(job_id).encode()) + 2
        if size > NOTIFY_PAYLOAD_BUDGET:
            break
        listed.append(job_id)
    return json.dumps(
        {"created": len(job_ids), "job_ids": listed, "truncated": len(listed) < len(job_ids)},
        separators=(",", ":"),
    )


def make_job_now(
    conn: db.Connection,
    hooks: Hooks,
    *,
    scheduler_id: Any,
    domain_id: int,
    organisation_id: Any,
    overlap_policy: str,
    source_info: str,
) -> str:
    """`run` with hooks, in the caller's transaction: the active jobs cancelled (replace)
    by the cancel-job hook or as the host does, then the job made by the create-job hook
    (with the time of the run as slot) or by schedctl; the new job's id. A hook that
    declines (NULL) refuses the run (exit 4), and its transaction is rolled back."""
    active = {"domain_id": domain_id, "organisation_id": organisation_id}
    if overlap_policy == "replace":
        if hooks.cancel_job is not None:
            with conn.cursor() as cursor:
                cursor.execute(
                    _with_function("job_cancel_active_hook", hooks.cancel_job),
                    active,
                )
        elif hooks.create_job is not None:
            db.execute(conn, "job_cancel_active", **active)
    if hooks.create_job is None:
        inserted = db.fetch_one(
            conn,
            "job_insert_manual",
            scheduler_id=scheduler_id,
            source_info=source_info,
            cancel_active=False,
        )
        return str(inserted["id"])
    with conn.cursor() as cursor:
        row = cursor.execute(
            _with_function("job_create_hook", hooks.create_job),
            {"scheduler_id": scheduler_id},
        ).fetchone()
    job_id = row["id"] if row else None
    if job_id is None:
        raise Conflict(f"the create-job hook {hooks.create_job} declined to make a job")
    found = db.fetch_optional(conn, "job_get", id=job_id)
    if found is None:
        raise OperationFailed(
            f"the create-job hook {hooks.create_job} returned {job_id!r}, which is not a job "
            "in jobs; nothing was changed"
        )
    return str(job_id)
