"""The database's hooks: the host's SQL functions that make and cancel jobs, and the channel
told about new jobs. Checking and storing them, and the statements that call them."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from schedctl import db
from schedctl.errors import InvalidInput

# What schedctl does where no hook is set, as `hooks show` tells it.
DEFAULTS = {
    "create_job": "schedctl inserts the job itself (pending, linked by jobs.scheduler_id)",
    "create_jobs": "no set-based hook",
    "cancel_job": "schedctl sets the job's status to cancelled and completed_at to now",
    "notify": "no notification; workers find new jobs in the jobs table",
}

_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_QUOTED_IDENTIFIER = re.compile(r'"((?:[^"]|"")+)"')
_CHANNEL = re.compile(r"[a-z_][a-z0-9_$]*")
_MAX_IDENTIFIER_BYTES = 63


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
    create_jobs: Function | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @classmethod
    def from_row(cls, **row: Any) -> Hooks:
        def function(schema: str | None, name: str | None) -> Function | None:
            return Function(schema, name) if schema is not None and name is not None else None

        return cls(
            create_job=function(row["create_job_schema"], row["create_job_function"]),
            create_jobs=function(row["create_jobs_schema"], row["create_jobs_function"]),
            cancel_job=function(row["cancel_job_schema"], row["cancel_job_function"]),
            notify=row["notify_channel"],
            updated_at=row["updated_at"],
            updated_by=row["updated_by"],
        )

    def settings(self) -> dict[str, str | None]:
        """The hooks as text (None: the default), for output and the audit trail."""
        return {
            "create_job": str(self.create_job) if self.create_job else None,
            "create_jobs": str(self.create_jobs) if self.create_jobs else None,
            "cancel_job": str(self.cancel_job) if self.cancel_job else None,
            "notify": self.notify,
        }

    def create_hook(self) -> Function | None:
        """The function that makes jobs (per slot or per batch), if one is set."""
        return self.create_job or self.create_jobs


@dataclass(frozen=True)
class HookChanges:
    """Checked input of `hooks set` (a value to set) or `hooks clear` (True: clear it)."""

    create_job: Function | bool | None = None
    cancel_job: Function | bool | None = None
    notify: str | bool | None = None
    create_jobs: Function | bool | None = None

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
    "create_jobs": "(scheduler_ids uuid[], slots timestamptz[]) "
    "RETURNS TABLE(scheduler_id uuid, slot timestamptz, job_id text)",
    "cancel_job": "(job_id text) RETURNS void",
}
# The hooks that are functions (Hooks' attributes of those names).
FUNCTION_KINDS = tuple(_SIGNATURES)


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


def _changed(
    conn: db.Connection, hooks: Hooks, kind: str, value: Function | str | bool | None
) -> Hooks:
    """`hooks` with one hook changed as HookChanges says: a function (checked first) or a
    channel is set, True clears it, None leaves it as it is."""
    if isinstance(value, Function):
        _check_function(conn, kind, value)
    elif value is True:
        value = None
    elif not isinstance(value, str):
        return hooks
    changed: dict[str, Any] = {kind: value}
    return replace(hooks, **changed)


def change(conn: db.Connection, changes: HookChanges, actor: str) -> Hooks:
    """Set or clear hooks (True clears); each function is checked against the catalog
    first. The change and its audit entry commit together; nothing is written on refusal
    or when nothing changes."""
    if changes.is_empty():
        raise InvalidInput("nothing to change: give at least one option (see --help)")
    with conn.work():
        old = db.record(conn, "hooks_lock", Hooks.from_row)
        new = old
        # The two create hooks first: at most one may be set, which is checked before the rest.
        for kind in ("create_job", "create_jobs"):
            new = _changed(conn, new, kind, getattr(changes, kind))
        if new.create_job is not None and new.create_jobs is not None:
            given, other = (
                ("--create-job", "--create-jobs")
                if isinstance(changes.create_job, Function)
                else ("--create-jobs", "--create-job")
            )
            raise InvalidInput(
                f"{given}: at most one of --create-job and --create-jobs is set; clear the "
                f"other first (schedctl hooks clear {other})"
            )
        for kind in ("cancel_job", "notify"):
            new = _changed(conn, new, kind, getattr(changes, kind))
        before, after = old.settings(), new.settings()
        diff = {key: [before[key], after[key]] for key in before if before[key] != after[key]}
        if not diff:
            return old
        db.execute(
            conn,
            "hooks_write",
            create_job_schema=new.create_job.schema if new.create_job else None,
            create_job_function=new.create_job.name if new.create_job else None,
            create_jobs_schema=new.create_jobs.schema if new.create_jobs else None,
            create_jobs_function=new.create_jobs.name if new.create_jobs else None,
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
