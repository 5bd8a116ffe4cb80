"""Database connections, transactions and the mapping of driver errors to schedctl's own."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg.abc import Buffer
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row, kwargs_row, tuple_row
from psycopg.types.datetime import TimestamptzLoader

from schedctl.config import Settings
from schedctl.errors import (
    DatabaseUnavailable,
    InvalidInput,
    OperationFailed,
    SchedctlError,
)
from schedctl.sql import query

T = TypeVar("T")

_NOT_MIGRATED = "the database schema is not migrated: run `schedctl migrate`"
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^@/\s]*@", re.IGNORECASE)


def database_url(settings: Settings, *, announce: bool = True) -> str:
    """The configured libpq URI, or the embedded server's when none is configured (saying
    so on stderr unless `announce` is false). A misspelt SCHEDCTL_DATABASE_URL is refused
    before anything is started."""
    from schedctl.config import refuse_misspelt_database_setting

    refuse_misspelt_database_setting()
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from schedctl import embedded

    return embedded.server_uri(settings.data_dir, announce=announce)


def target(url: str) -> dict[str, Any]:
    """What a URL connects to, for people to check: host (or socket folder), port, database
    and user, as libpq would choose them; never the password."""
    import getpass

    params = conninfo_to_dict(url)
    host = str(params.get("host") or params.get("hostaddr") or "local socket")
    user = str(params.get("user") or "")
    if not user:
        with suppress(Exception):
            user = getpass.getuser()
    port = str(params.get("port") or "5432")
    return {
        "host": host,
        "port": int(port) if port.isdigit() else port,
        "database": str(params.get("dbname") or user),
        "user": user,
    }


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
    if isinstance(exc, pgerrors.ReadOnlySqlTransaction):
        return DatabaseUnavailable(
            "the database is read-only here (a standby, or default_transaction_read_only): "
            "nothing was changed; connect to the primary with a role that may write"
        )
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return DatabaseUnavailable(
            f"{first_line(exc)}: this role lacks a privilege schedctl needs "
            f"({_GRANTS_HINT}); nothing was changed"
        )
    if isinstance(exc, pgerrors.LockNotAvailable):
        return OperationFailed(
            f"gave up waiting for a database lock after {settings.lock_timeout:g} s "
            "(SCHEDCTL_LOCK_TIMEOUT); another session holds it; "
            "what was not yet committed was rolled back"
        )
    if isinstance(exc, pgerrors.DataError):
        return InvalidInput(f"invalid value: {first_line(exc)}")
    # The session ended by the server (an idle-in-transaction timeout, an administrator)
    # reports itself as a transaction-state error when it answers the next statement.
    if isinstance(exc, psycopg.OperationalError) or (exc.sqlstate or "").startswith(
        ("25P03", "57P")
    ):
        return OperationFailed(
            "the database operation failed part-way (connection lost or statement cancelled); "
            f"what was not yet committed was rolled back: {first_line(exc)}"
        )
    return OperationFailed(f"database error: {first_line(exc)}")


_GRANTS_HINT = (
    "contrib/grants.sql grants role schedctl_monitor what the reading commands need, "
    "schedctl_tick what tick needs, and schedctl_operator what the others need"
)
# The object of a "permission denied for <kind> <name>" message, and the privilege each
# kind of object other than a table asks for.
_DENIED = re.compile(r"permission denied for (?P<kind>[a-z ]+?) (?P<name>\S+)$")
_PRIVILEGE_OF_KIND = {
    "schema": "USAGE",
    "database": "CONNECT",
    "sequence": "USAGE",
    "function": "EXECUTE",
    "procedure": "EXECUTE",
}


def privilege_denied(conn: psycopg.Connection[Any], exc: pgerrors.InsufficientPrivilege) -> str:
    """The message for a permission error, naming the privilege and the object: for a table,
    the privileges this role lacks on it, asked of the server."""
    message = first_line(exc)
    found = _DENIED.search(message)
    if found is None:
        return f"{message}: this role lacks a privilege schedctl needs ({_GRANTS_HINT})"
    kind, name = found["kind"], found["name"]
    missing: list[str] = []
    role = conn.info.user
    if kind in ("table", "view", "materialized view"):
        with suppress(psycopg.Error):
            row = fetch_optional(conn, "privileges_missing", name=name)
            if row is not None:
                name, role, missing = row["name"], row["role"], list(row["missing"])
    elif kind in _PRIVILEGE_OF_KIND:
        missing = [_PRIVILEGE_OF_KIND[kind]]
    held = f"no {', '.join(missing)} privilege" if missing else "not every column's privilege"
    return (
        f"{message}: role {role} has {held} on {kind} {name} ({_GRANTS_HINT}); nothing was changed"
    )


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class _UtcTimestamptzLoader(TimestamptzLoader):
    """timestamptz values as UTC datetimes, whatever the session's time zone: Python adds a
    timedelta to a time of a zone with daylight saving as wall-clock time, an hour off
    across a change. (A pooler may hand the session any time zone; none is set at connect.)"""

    def load(self, data: Buffer) -> datetime:
        # The server's ISO output (DateStyle ISO, the default) parsed by the standard
        # library's C parser, several times faster than the regular expression of psycopg's
        # pure-Python loader that this class extends (a large tick pass loads tens of
        # thousands); any other form (another DateStyle, infinity, BC) is left to psycopg.
        try:
            return datetime.fromisoformat(bytes(data).decode()).astimezone(timezone.utc)
        except ValueError:
            return super().load(data).astimezone(timezone.utc)


class Connection(psycopg.Connection[DictRow]):
    """A connection in autocommit mode: every unit of work is an explicit `transaction()`,
    which applies schedctl's lock timeout to its statements (SET LOCAL, which also holds
    behind a transaction-mode pooler, where session settings do not)."""

    lock_timeout: float = 30.0
    # What it is connected to (db.target), for commands that name it.
    target: dict[str, Any] | None = None
    # Why the server ended the session, when it said so (a FATAL message arrives as a
    # notice when it follows a result): kept for the error line.
    server_reason: str | None = None
    # Time zone names the server said it knows (schedulers._check_zone).
    known_zones: frozenset[str] = frozenset()

    def remember_fatal(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        if diagnostic.severity_nonlocalized in ("FATAL", "PANIC"):
            self.server_reason = diagnostic.message_primary

    @contextmanager
    def work(self) -> Iterator[None]:
        """One unit of work: a transaction with the lock timeout (a savepoint when nested
        in another, whose settings hold)."""
        outermost = self.info.transaction_status == TransactionStatus.IDLE
        if not outermost:
            with self.transaction():
                yield
            return
        from schedctl import interrupts

        wrote = False
        try:
            with self.transaction():
                self.execute(
                    query("transaction_settings"),
                    {"lock_timeout": f"{int(self.lock_timeout * 1000)}ms"},
                )
                yield
                # A transaction that wrote holds Ctrl-C from before its commit to the end
                # of the command: once it may have committed, the command says what it did.
                wrote = bool(fetch_one(self, "transaction_wrote")["wrote"])
                if wrote:
                    interrupts.hold()
        except BaseException:
            if wrote:
                interrupts.commit_failed()
            raise
        if wrote:
            interrupts.commit_returned()


@contextmanager
def connect(settings: Settings, url: str | None = None) -> Iterator[Connection]:
    """An autocommit connection (to `url`, else the configured database) with schedctl's
    timeouts; driver errors leave as SchedctlError."""
    url = url if url is not None else database_url(settings)
    secrets = url_secrets(url)
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        raise InvalidInput(
            "invalid database URL in SCHEDCTL_DATABASE_URL or DATABASE_URL "
            "(expected postgresql://user@host:port/dbname)"
        ) from None
    params.setdefault("application_name", "schedctl")
    params["connect_timeout"] = settings.connect_timeout
    try:
        # No server-side prepared statements: behind a transaction-mode pooler the next
        # statement may run on another server connection, which never saw them.
        conn = Connection.connect(
            make_conninfo("", **params),
            autocommit=True,
            row_factory=dict_row,
            prepare_threshold=None,
        )
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database: {redact(first_line(exc), secrets)}"
        ) from None
    conn.lock_timeout = settings.lock_timeout
    conn.target = target(url)
    conn.add_notice_handler(conn.remember_fatal)
    conn.adapters.register_loader("timestamptz", _UtcTimestamptzLoader)
    denied: str | None = None
    try:
        with conn:
            try:
                yield conn
            except pgerrors.InsufficientPrivilege as exc:
                denied = privilege_denied(conn, exc)  # asked while the connection is open
                raise
    except psycopg.Error as exc:
        error = translate(exc, settings)
        if denied is not None:
            error.message = denied
        if conn.server_reason and conn.server_reason not in error.message:
            error.message += f" (the server said: {conn.server_reason})"
        error.message = redact(error.message, secrets)
        raise error from exc
    except UnicodeEncodeError as exc:
        # A value from argv holding undecodable bytes (surrogates) cannot be sent as text.
        raise InvalidInput(
            "an argument holds bytes that are not valid text in the locale's encoding"
        ) from exc
    finally:
        conn.close()


class NoResult(Exception):
    """A statement that always returns a row returned none (a bug, not user input)."""


def fetch_all(conn: psycopg.Connection[Any], name: str, /, **params: Any) -> list[DictRow]:
    """Run the named query and return its rows."""
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query(name), params or None).fetchall()


def fetch_tuples(
    conn: psycopg.Connection[Any], name: str, /, **params: Any
) -> list[tuple[Any, ...]]:
    """Run the named query and return its rows as plain tuples (cheaper in bulk)."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        return cursor.execute(query(name), params or None).fetchall()


def execute_for_rows(
    conn: psycopg.Connection[Any], name: str, /, **params: Any
) -> psycopg.Cursor[tuple[Any, ...]]:
    """Run the named query and return its cursor, rows still to fetch as plain tuples (they
    stay readable after the transaction ends)."""
    cursor = conn.cursor(row_factory=tuple_row)
    cursor.execute(query(name), params or None)
    return cursor


def fetch_one(conn: psycopg.Connection[Any], name: str, /, **params: Any) -> DictRow:
    """Run the named query and return its first row; NoResult when it returned none."""
    row = fetch_optional(conn, name, **params)
    if row is None:
        raise NoResult(name)
    return row


def fetch_optional(conn: psycopg.Connection[Any], name: str, /, **params: Any) -> DictRow | None:
    """Run the named query and return its first row, or None."""
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query(name), params or None).fetchone()


def records(
    conn: psycopg.Connection[Any], name: str, make: Callable[..., T], /, **params: Any
) -> list[T]:
    """Run the named query and return its rows, each made by `make(**columns)`."""
    with conn.cursor(row_factory=kwargs_row(make)) as cursor:
        return cursor.execute(query(name), params or None).fetchall()


def record(conn: psycopg.Connection[Any], name: str, make: Callable[..., T], /, **params: Any) -> T:
    """Run the named query and return its first row made by `make`; NoResult when none."""
    found = optional_record(conn, name, make, **params)
    if found is None:
        raise NoResult(name)
    return found


def optional_record(
    conn: psycopg.Connection[Any], name: str, make: Callable[..., T], /, **params: Any
) -> T | None:
    """Run the named query and return its first row made by `make`, or None."""
    with conn.cursor(row_factory=kwargs_row(make)) as cursor:
        return cursor.execute(query(name), params or None).fetchone()


def execute(conn: psycopg.Connection[Any], name: str, /, **params: Any) -> int:
    """Run the named statement and return the number of rows it touched."""
    with conn.cursor() as cursor:
        return cursor.execute(query(name), params or None).rowcount


def preflight(conn: Connection) -> None:
    """Refuse to work on a database whose schema is not migrated, or whose host tables
    row-level security shows only in part to this role: schedctl would act on some rows
    alone (tick would report nothing due while schedulers are), and say all was well."""
    found = fetch_one(conn, "preflight")
    if not found["migrated"]:
        raise DatabaseUnavailable(_NOT_MIGRATED)
    if found["filtered_tables"]:
        raise DatabaseUnavailable(
            f"row-level security filters the rows of {', '.join(found['filtered_tables'])} "
            f"for role {found['role']}, so schedctl would see only some of them: run it as a "
            "role with BYPASSRLS (granted to the login role itself; membership does not pass "
            "it on), or add policies that show this role every row (see contrib/grants.sql)"
        )
