"""Database connections, transactions and the mapping of driver errors to schedctl's own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row, tuple_row

from schedctl.config import Settings
from schedctl.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    OperationFailed,
    SchedctlError,
)
from schedctl.sql import query

Connection = psycopg.Connection[DictRow]

_NOT_MIGRATED = "the database schema is not migrated: run `schedctl migrate`"
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^@/\s]*@", re.IGNORECASE)


def database_url(settings: Settings, *, announce: bool = True) -> str:
    """The configured libpq URI, or the embedded server's when none is configured (saying
    so on stderr unless `announce` is false)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from schedctl import embedded

    return embedded.server_uri(settings.data_dir, announce=announce)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove user info from any URI in `text`, and every given secret (longest first)."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


# Characters that end the password of a URI whose user info was not percent-encoded, at
# which a parser may cut it, taking what follows for a host, a port or a database.
_URI_DELIMITERS = re.compile(r"[/@:?#]")
_KEYWORD_PASSWORD = re.compile(r"(?:^|\s|[?&])password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)")


def url_secrets(url: str) -> tuple[str, ...]:
    """The password a libpq URI or key=value string holds, in every form it may be printed:
    as libpq reads it, as written, percent-encoded or not, and, where the URI's password was
    not percent-encoded, the pieces a parser may have taken for a host, port or database."""
    from urllib.parse import quote, quote_plus, unquote, urlsplit

    passwords: list[str] = []
    with suppress(psycopg.Error):
        passwords.append(str(conninfo_to_dict(url).get("password") or ""))
    with suppress(ValueError):
        passwords.append(urlsplit(url).password or "")
    _, separator, rest = url.partition("://")
    if separator and "@" in rest:
        # As a person reads it: everything between the first ':' and the last '@'.
        written = rest.rpartition("@")[0].partition(":")[2]
        passwords.append(written)
        passwords += [piece for piece in _URI_DELIMITERS.split(written) if len(piece) >= 3]
    passwords += [match.group(1).strip("'") for match in _KEYWORD_PASSWORD.finditer(url)]
    found: set[str] = set()
    for password in filter(None, passwords):
        found.update({password, unquote(password), quote(password, safe=""), quote_plus(password)})
    return tuple(sorted(found, key=len, reverse=True))


def translate(exc: psycopg.Error, settings: Settings) -> SchedctlError:
    """Turn a driver error into the schedctl error (and exit code) it means."""
    if isinstance(exc, pgerrors.UndefinedTable | pgerrors.UndefinedColumn):
        return DatabaseUnavailable(_NOT_MIGRATED)
    if isinstance(exc, pgerrors.LockNotAvailable):
        return OperationFailed(
            f"gave up waiting for a database lock after {settings.lock_timeout:g} s "
            "(SCHEDCTL_LOCK_TIMEOUT); another session holds it; "
            "what was not yet committed was rolled back"
        )
    if isinstance(exc, pgerrors.UniqueViolation):
        return Conflict(f"already exists: {_first_line(exc)}")
    if isinstance(exc, pgerrors.DataError):
        return InvalidInput(f"invalid value: {_first_line(exc)}")
    if isinstance(exc, psycopg.OperationalError):
        return OperationFailed(
            "the database operation failed part-way (connection lost or statement cancelled); "
            f"what was not yet committed was rolled back: {_first_line(exc)}"
        )
    return OperationFailed(f"database error: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@contextmanager
def connect(settings: Settings, url: str | None = None) -> Iterator[Connection]:
    """A connection with schedctl's timeouts (to `url`, else the configured database);
    driver errors leave as SchedctlError."""
    url = url if url is not None else database_url(settings)
    secrets = url_secrets(url)
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        raise InvalidInput(
            "invalid database URL in SCHEDCTL_DATABASE_URL or DATABASE_URL "
            "(expected postgresql://user@host:port/dbname)"
        ) from None
    # Appended to any options the URL already carries, rather than replacing them. The
    # session runs in UTC so that times come back in UTC: Python adds a timedelta to a
    # time of a zone with daylight saving as wall-clock time, an hour off across a change.
    session = f"-c lock_timeout={int(settings.lock_timeout * 1000)} -c timezone=UTC"
    params["options"] = f"{params.get('options') or ''} {session}".strip()
    params.setdefault("application_name", "schedctl")
    params["connect_timeout"] = settings.connect_timeout
    try:
        conn = psycopg.connect(make_conninfo("", **params), row_factory=dict_row)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database: {redact(_first_line(exc), secrets)}"
        ) from None
    try:
        with conn:
            yield conn
    except psycopg.Error as exc:
        error = translate(exc, settings)
        error.message = redact(error.message, secrets)
        raise error from exc
    except UnicodeEncodeError as exc:
        # A value from argv holding undecodable bytes (surrogates) cannot be sent as text.
        raise InvalidInput(
            "an argument holds bytes that are not valid text in the locale's encoding"
        ) from exc
    finally:
        conn.close()


def fetch_all(conn: Connection, name: str, /, **params: Any) -> list[DictRow]:
    """Run the named query and return its rows."""
    return conn.execute(query(name), params).fetchall()


def fetch_tuples(conn: Connection, name: str, /, **params: Any) -> list[tuple[Any, ...]]:
    """Run the named query and return its rows as plain tuples (cheaper in bulk)."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        return cursor.execute(query(name), params).fetchall()


def fetch_one(conn: Connection, name: str, /, **params: Any) -> DictRow | None:
    """Run the named query and return its first row, if any."""
    return conn.execute(query(name), params).fetchone()


def execute(conn: Connection, name: str, /, **params: Any) -> int:
    """Run the named statement and return the number of rows it touched."""
    return conn.execute(query(name), params).rowcount
