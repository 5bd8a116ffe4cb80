"""Applying schedctl's migrations with yoyo, one migrating process at a time, and the
opt-in index on the host's jobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from schedctl import db
from schedctl.config import DATABASE_URL_NAMES, Settings, refuse_misspelt_database_setting
from schedctl.errors import Conflict, InvalidInput, OperationFailed

SCHEMA = "schedctl"

# Any fixed 64-bit key shared by every schedctl migrate: the advisory lock serialises
# concurrent runs, and PostgreSQL releases it when a killed run's connection drops, so
# it can never go stale the way yoyo's own lock row can.
_ADVISORY_KEY = 0x5C4ED_C71

# A statement that changes a host table waits this long for its lock, then gives up and
# is tried again a little later: while it waits, every query of the host on that table
# queues behind it, so it must never wait long. (The migrations set the same with SET LOCAL.)
HOST_LOCK_TIMEOUT = 0.2
_RETRY_PAUSE = (0.1, 1.0)  # the pause between tries grows from the first to the second

# How often a migrate waiting its turn asks for the migrate lock again (growing from the
# first pause to the second): each try is one short statement, so neither the role's
# statement_timeout nor an index build of the running migrate ever waits on it.
_LOCK_POLL = (0.05, 0.5)

# Above this many rows in jobs, migrate suggests the opt-in index when no index finds
# active jobs by domain and organisation (see the README, "The index on jobs").
INDEX_ADVICE_ROWS = 100_000

# What schedctl 0.1 added to the host's tables (as migration 0004 recorded it), the
# statement that removes each, and how migrate reports it.
_LEGACY = {
    "jobs_scheduler_slot": ("release_jobs_scheduler_slot", "jobs.scheduler_slot"),
    "jobs_active_index": ("release_jobs_active_index", "index idx_jobs_active_domain_org"),
    "schedulers_columns": (
        "release_schedulers_columns",
        "schedulers.overlap_policy and schedulers.pause_reason",
    ),
}

T = TypeVar("T")


@dataclass
class Outcome:
    """What a migrate run did, or (dry run) would do."""

    migrations: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    index_created: bool = False
    index_advised: bool = False
    # What migrate finished on the host's jobs after 0002 added scheduler_id to it.
    completed: list[str] = field(default_factory=list)
    # The database it acted on (db.target): host, port, database and user.
    connection: dict[str, Any] = field(default_factory=dict)


def migrations_dir() -> Path:
    """The migrations folder shipped inside the package."""
    return Path(str(files("schedctl").joinpath("migrations")))


def head_migration() -> str:
    """The id of the newest migration this schedctl ships."""
    names = sorted(p.stem for p in migrations_dir().glob("*.sql") if ".rollback" not in p.name)
    return names[-1] if names else ""


def yoyo_url(url: str, connect_timeout: int, schema: str | None = SCHEMA) -> str:
    """Any libpq URI or key=value string as the URL yoyo needs to pick psycopg 3 and keep
    its bookkeeping in `schema`; yoyo hands the other query parameters to psycopg."""
    from urllib.parse import quote, urlencode

    from psycopg.conninfo import conninfo_to_dict

    params = {key: str(value) for key, value in conninfo_to_dict(url).items()}
    dbname = params.pop("dbname", "")
    params.setdefault("connect_timeout", str(connect_timeout))
    # A migration runs as long as it needs, whatever statement_timeout the role has: its
    # waits for locks are bounded by lock_timeout (SCHEDCTL_LOCK_TIMEOUT) instead.
    params["options"] = f"{params.get('options', '')} -c statement_timeout=0".strip()
    if schema is not None:
        params["schema"] = schema
    return f"postgresql+psycopg:///{quote(dbname, safe='')}?{urlencode(params)}"


def migrate(
    settings: Settings,
    *,
    dry_run: bool = False,
    upto: str | None = None,
    active_jobs_index: bool = False,
) -> Outcome:
    """Apply the pending migrations (those up to `upto` only, if given), remove what
    schedctl 0.1 added to the host's tables, and close schedctl's schema to PUBLIC and the
    API roles; with `active_jobs_index`, also build the opt-in index on jobs."""
    from yoyo import read_migrations

    refuse_misspelt_database_setting(DATABASE_URL_NAMES)
    url = (
        settings.migrate_database_url.get_secret_value()
        if settings.migrate_database_url is not None
        else db.database_url(settings)
    )
    secrets = db.url_secrets(url)
    outcome = Outcome()
    with db.connect(settings, url) as conn:
        outcome.connection = db.target(url)
        db.execute(conn, "migrate_session_settings")
        _refuse_a_pooler(conn)
        _take_migrate_lock(conn, settings)
        try:
            migrations = read_migrations(str(migrations_dir()))
            if dry_run:
                # yoyo's backend creates its bookkeeping tables as soon as it connects, so a
                # dry run reads what is applied itself and writes nothing at all.
                pending = _up_to(_pending_read_only(conn, migrations), upto)
                outcome.migrations = [m.id for m in pending]
            else:
                with conn.transaction():
                    db.execute(conn, "schema_create")
                    db.execute(conn, "yoyo_adopt_legacy")
                outcome.migrations = _with_retries(
                    settings, lambda: _apply(settings, url, migrations, upto)
                )
                outcome.completed = _complete_jobs_scheduler_id(conn, settings)
                if db.fetch_one(conn, "preflight")["migrated"]:
                    outcome.released = _release_legacy(conn, settings)
                    with conn.transaction():
                        db.execute(conn, "revoke_public_access")
            if active_jobs_index and not dry_run:
                outcome.index_created = _build_active_jobs_index(conn)
            state = db.fetch_one(conn, "active_jobs_index_state")
            outcome.index_advised = (
                not state["present"] and state["jobs_estimate"] >= INDEX_ADVICE_ROWS
            )
        except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
            raise db.translate(exc, settings) from None
        except psycopg.Error as exc:
            reason = (
                db.translate(exc, settings).message
                if isinstance(exc, psycopg.errors.LockNotAvailable)
                else db.first_line(exc)
            )
            raise OperationFailed(
                db.redact(f"migration failed; its transaction was rolled back: {reason}", secrets)
            ) from None
        finally:
            with suppress(psycopg.Error):  # a lost connection has released it already
                db.execute(conn, "migrate_unlock", key=_ADVISORY_KEY)
    return outcome


def _take_migrate_lock(conn: db.Connection, settings: Settings) -> None:
    """Take the lock that lets one migrate run at a time, asking again until
    SCHEDCTL_LOCK_TIMEOUT has passed; then exit 4 naming the migrate that holds it."""
    deadline = time.monotonic() + settings.lock_timeout
    pause = _LOCK_POLL[0]
    while not db.fetch_one(conn, "migrate_try_lock", key=_ADVISORY_KEY)["locked"]:
        left = deadline - time.monotonic()
        if left <= 0:
            holder = db.fetch_optional(conn, "migrate_lock_holder", key=_ADVISORY_KEY)
            who = "pid unknown"
            if holder is not None:
                since = holder["since"]
                who = f"pid {holder['pid']}" + (
                    f", since {since:%Y-%m-%dT%H:%M:%SZ}" if since is not None else ""
                )
            raise Conflict(
                f"another migrate is running ({who}); gave up waiting for it after "
                f"{settings.lock_timeout:g} s (SCHEDCTL_LOCK_TIMEOUT): run migrate again "
                "once it has finished"
            )
        time.sleep(min(pause, left))
        pause = min(pause * 2, _LOCK_POLL[1])


def _complete_jobs_scheduler_id(conn: db.Connection, settings: Settings) -> list[str]:
    """Where migration 0002 added scheduler_id to a host's jobs that lacked it (with its
    foreign key NOT VALID, in a transaction that takes the table for an instant), validate
    the foreign key and build its index, neither blocking the host's reads or writes.
    Each step is checked in the catalog first, so a run killed at any point is finished by
    the next (an index left invalid by a killed build is dropped and built again). Return
    what was done."""
    done: list[str] = []
    state = db.fetch_one(conn, "jobs_scheduler_id_state")
    if not state["added"]:
        return done
    # Both wait for the host's transactions without blocking them: a lock wait is bounded
    # by SCHEDCTL_LOCK_TIMEOUT, and an index build cut short is dropped by the next run.
    db.execute(conn, "session_lock_timeout", lock_timeout=f"{settings.lock_timeout}s")
    try:
        if not state["validated"]:
            db.execute(conn, "jobs_scheduler_id_validate")
            done.append("validated foreign key schedctl_jobs_scheduler_id_fkey on jobs")
        if state["index_valid"] is False:
            db.execute(conn, "jobs_scheduler_id_index_drop_invalid")
        if not state["index_valid"]:
            db.execute(conn, "jobs_scheduler_id_index_create")
            done.append("built index schedctl_jobs_scheduler_id_idx on jobs")
    finally:
        with suppress(psycopg.Error):
            db.execute(conn, "session_lock_timeout", lock_timeout="0")
    return done


def _refuse_a_pooler(conn: db.Connection) -> None:
    """migrate needs a session of its own on the server (its lock, and yoyo's search_path,
    are session state): refuse a connection through a pooler, which hands the client a
    process id of its own making rather than the server process's."""
    server_pid = db.fetch_one(conn, "backend_pid")["pid"]
    if conn.info.backend_pid != server_pid:
        raise InvalidInput(
            "migrate needs a direct connection to PostgreSQL, and this one goes through a "
            "connection pooler: set SCHEDCTL_MIGRATE_DATABASE_URL to the server's direct "
            "address (on Supabase, the 'Direct connection' string; see the README, "
            "'Behind a connection pooler')"
        )


def _apply(settings: Settings, url: str, migrations: Any, upto: str | None) -> list[str]:
    """One try at applying the pending migrations with yoyo; each is one transaction."""
    from yoyo import get_backend

    backend = get_backend(yoyo_url(url, settings.connect_timeout))
    try:
        try:
            backend.break_lock()  # no other migrate can be running: we hold the lock
        except Exception:  # the lock table does not exist yet on a new database
            backend.rollback()
        pending = _up_to(backend.to_apply(migrations), upto)
        backend.apply_migrations(pending)
        return [m.id for m in pending]
    finally:
        backend.connection.close()


def _release_legacy(conn: db.Connection, settings: Settings) -> list[str]:
    """Remove what schedctl 0.1 added to the host's tables, one statement and one short
    lock at a time; return what was removed."""
    released = []
    for row in db.fetch_all(conn, "legacy_host_objects"):
        statement, label = _LEGACY[row["name"]]

        def release(statement: str = statement, name: str = row["name"]) -> None:
            with conn.transaction():
                db.execute(conn, "transaction_settings", lock_timeout=f"{HOST_LOCK_TIMEOUT}s")
                db.execute(conn, statement)
                db.execute(conn, "legacy_host_object_removed", name=name)

        _with_retries(settings, release)
        released.append(label)
    return released


def _with_retries(settings: Settings, attempt: Callable[[], T]) -> T:
    """`attempt()`, tried again after a pause each time a lock was not granted in time,
    until SCHEDCTL_LOCK_TIMEOUT has passed. Between tries the host's queries run freely."""
    deadline = time.monotonic() + settings.lock_timeout
    pause = _RETRY_PAUSE[0]
    while True:
        try:
            return attempt()
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _RETRY_PAUSE[1])


def _build_active_jobs_index(conn: db.Connection) -> bool:
    """Build the opt-in index without blocking the host's writes; an invalid one left by a
    killed build is dropped first. True when it was built now."""
    state = db.fetch_one(conn, "active_jobs_index_state")
    if state["invalid"]:
        db.execute(conn, "active_jobs_index_drop_invalid")
    elif state["present"]:
        return False
    # Building it waits for every transaction that uses jobs, however long, without
    # blocking them: the session's lock timeout applies, schedctl sets none here.
    db.execute(conn, "active_jobs_index_create")
    return True


def _up_to(pending: Any, upto: str | None) -> Any:
    """The pending migrations, cut after `upto` when it is one of them."""
    ids = [m.id for m in pending]
    if upto is None or upto not in ids:
        return pending
    return pending.__class__(pending[: ids.index(upto) + 1])


def _pending_read_only(conn: db.Connection, migrations: Any) -> list[Any]:
    """The migrations yoyo has not recorded as applied, in dependency order, read
    without creating anything (no yoyo bookkeeping table is made)."""
    from yoyo.migrations import topological_sort

    row = db.fetch_one(conn, "yoyo_table_present")
    applied: set[str] = set()
    if row is not None and row["present"]:
        applied = {r["migration_hash"] for r in db.fetch_all(conn, "yoyo_applied_hashes")}
    return list(topological_sort(m for m in migrations if m.hash not in applied))
