"""Applying schedctl's migrations with yoyo, one migrating process at a time."""

from __future__ import annotations

from pathlib import Path

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


def yoyo_url(url: str, connect_timeout: int) -> str:
    """Any libpq URI or key=value string as the URL yoyo needs to pick psycopg 3; yoyo
    hands its query parameters to psycopg as they are."""
    from urllib.parse import quote, urlencode

    from psycopg.conninfo import conninfo_to_dict

    params = {key: str(value) for key, value in conninfo_to_dict(url).items()}
    dbname = params.pop("dbname", "")
    params.setdefault("connect_timeout", str(connect_timeout))
    return f"postgresql+psycopg:///{quote(dbname, safe='')}?{urlencode(params)}"


def migrate(settings: Settings, *, dry_run: bool = False, upto: str | None = None) -> list[str]:
    """Apply the pending migrations (those up to `upto` only, if given); return their ids."""
    from yoyo import get_backend, read_migrations

    url = db.database_url(settings)
    secrets = db.url_secrets(url)
    with db.connect(settings, url) as lock_conn:
        lock_conn.autocommit = True
        lock_conn.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_KEY])
        try:
            backend = get_backend(yoyo_url(url, settings.connect_timeout))
            try:
                backend.break_lock()  # no other migrate can be running: we hold the lock
            except Exception:  # the lock table does not exist yet on a new database
                backend.rollback()
            migrations = read_migrations(str(migrations_dir()))
            pending = backend.to_apply(migrations)
            if upto is not None:
                ids = [m.id for m in pending]
                if upto in ids:
                    pending = pending.__class__(pending[: ids.index(upto) + 1])
            names = [m.id for m in pending]
            if not dry_run:
                backend.apply_migrations(pending)
            return names
        except psycopg.Error as exc:
            raise OperationFailed(
                db.redact(f"migration failed; its transaction was rolled back: {exc}", secrets)
            ) from None
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_KEY])
