"""Applying schedctl's migrations with yoyo, one migrating process at a time."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg

from schedctl import db
from schedctl.config import Settings
from schedctl.errors import OperationFailed

# Any fixed 64-bit key shared by every schedctl migrate: the advisory lock serialises
# concurrent runs, and PostgreSQL releases it when a killed run's connection drops, so
# it can never go stale the way yoyo's own lock row can.
_ADVISORY_KEY = 0x5C4ED_C71


def migrations_dir() -> Path:
    """The migrations folder: inside the installed package, else the source checkout's."""
    packaged = Path(__file__).with_name("migrations")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


def yoyo_url(url: str, connect_timeout: int, lock_timeout: float | None = None) -> str:
    """Any libpq URI or key=value string as the URL yoyo needs to pick psycopg 3; yoyo
    hands its query parameters to psycopg as they are."""
    from urllib.parse import quote, urlencode

    from psycopg.conninfo import conninfo_to_dict

    params = {key: str(value) for key, value in conninfo_to_dict(url).items()}
    dbname = params.pop("dbname", "")
    params.setdefault("connect_timeout", str(connect_timeout))
    if lock_timeout is not None:
        # A migration's ALTER TABLE waiting for the host's workers would queue every
        # other query on that table behind it: give up instead, as every command does.
        lock_option = f"-c lock_timeout={int(lock_timeout * 1000)}"
        params["options"] = f"{params.get('options', '')} {lock_option}".strip()
    return f"postgresql+psycopg:///{quote(dbname, safe='')}?{urlencode(params)}"


def migrate(settings: Settings, *, dry_run: bool = False, upto: str | None = None) -> list[str]:
    """Apply the pending migrations (those up to `upto` only, if given); return their ids."""
    from yoyo import get_backend, read_migrations

    url = db.database_url(settings)
    secrets = db.url_secrets(url)
    with db.connect(settings, url) as lock_conn:
        lock_conn.autocommit = True
        db.execute(lock_conn, "migrate_lock", key=_ADVISORY_KEY)
        try:
            migrations = read_migrations(str(migrations_dir()))
            if dry_run:
                # yoyo's backend creates its bookkeeping tables as soon as it connects, so a
                # dry run reads what is applied itself and writes nothing at all.
                return [m.id for m in _up_to(_pending_read_only(lock_conn, migrations), upto)]
            backend = get_backend(yoyo_url(url, settings.connect_timeout, settings.lock_timeout))
            try:
                backend.break_lock()  # no other migrate can be running: we hold the lock
            except Exception:  # the lock table does not exist yet on a new database
                backend.rollback()
            pending = _up_to(backend.to_apply(migrations), upto)
            try:
                backend.apply_migrations(pending)
            finally:
                backend.connection.close()
            return [m.id for m in pending]
        except psycopg.Error as exc:
            reason = (
                db.translate(exc, settings).message
                if isinstance(exc, psycopg.errors.LockNotAvailable)
                else str(exc)
            )
            raise OperationFailed(
                db.redact(f"migration failed; its transaction was rolled back: {reason}", secrets)
            ) from None
        finally:
            with suppress(psycopg.Error):  # a lost connection has released it already
                db.execute(lock_conn, "migrate_unlock", key=_ADVISORY_KEY)


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
