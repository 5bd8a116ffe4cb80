"""pg_cron: the tick pass run inside the database on pg_cron's clock (Supabase Cron).

`install` registers `CALL schedctl.tick()` as one pg_cron job per database, run as a role
that is not a superuser; `show` reads the job and its latest runs back; `remove` takes it
away. pg_cron runs in one database of the server (`cron.database_name`): when that is not
schedctl's own, the job is made there with `cron.schedule_in_database`, over a second
connection with the same credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from psycopg import errors as pgerrors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schedctl import db
from schedctl.config import Settings
from schedctl.errors import DatabaseUnavailable, InvalidInput, NotFound
from schedctl.models import rfc3339

JOB_NAME = "schedctl-tick"
COMMAND = "CALL schedctl.tick()"
DEFAULT_SCHEDULE = "* * * * *"
# The job's role when the installing role is a superuser and names none: the login role
# that contrib/grants.sql suggests making in schedctl_tick.
SUPERUSER_DEFAULT_ROLE = "schedctl_cron"
RUNS_SHOWN = 10
# pg_cron schedules by seconds ('30 seconds') from this version; Debian 12 ships 1.4.2.
SECONDS_FROM = (1, 5)

_NOT_LOADED = (
    "pg_cron is not available on this server: on Supabase, enable the pg_cron extension "
    "(Database > Extensions); elsewhere install it (Debian: postgresql-NN-cron), add pg_cron "
    "to shared_preload_libraries, restart, and run CREATE EXTENSION pg_cron in the database "
    "named by cron.database_name"
)


class Schedule(NamedTuple):
    """A pg_cron schedule: five cron fields, or every N seconds (`seconds` set)."""

    text: str
    seconds: int | None


# Each cron field: its name, bounds, and the names pg_cron also takes there.
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"^(?P<range>\*|(?P<low>\w+)(?:-(?P<high>\w+))?)(?:/(?P<step>\d+))?$")
_SECONDS = re.compile(r"^(?P<count>\d+)\s+seconds?$", re.IGNORECASE)
_SCHEDULE_HELP = (
    "a schedule is five cron fields (minute hour day-of-month month day-of-week, "
    "e.g. '* * * * *' or '*/2 * * * *') or 'N seconds' (1-59, pg_cron 1.5 or later)"
)


def parse_schedule(spec: str) -> Schedule:
    """The schedule `spec` in pg_cron's form, checked field by field; InvalidInput (exit 2)
    naming what is wrong."""
    text = " ".join(spec.split())
    seconds = _SECONDS.match(text)
    if seconds:
        count = int(seconds["count"])
        if not 1 <= count <= 59:
            raise InvalidInput(f"invalid schedule {spec!r}: seconds must be 1-59; {_SCHEDULE_HELP}")
        return Schedule(f"{count} seconds", count)
    fields = text.lower().split(" ") if text else []
    if len(fields) != len(_FIELDS):
        raise InvalidInput(f"invalid schedule {spec!r}: {_SCHEDULE_HELP}")
    for value, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in value.split(","):
            if not _field_item_ok(item, low, high, names):
                raise InvalidInput(
                    f"invalid schedule {spec!r}: {item!r} is not a valid {name} "
                    f"({low}-{high}, *, ranges, lists and /steps); {_SCHEDULE_HELP}"
                )
    return Schedule(" ".join(fields), None)


def _field_item_ok(item: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    found = _ITEM.match(item)
    if found is None:
        return False
    if found["step"] is not None and int(found["step"]) < 1:
        return False
    if found["range"] == "*":
        return True
    bounds = [_field_value(found[part], names) for part in ("low", "high") if found[part]]
    values = [value for value in bounds if value is not None and low <= value <= high]
    return len(values) == len(bounds) and values == sorted(values)


def _field_value(text: str, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    if text in names:
        return names.index(text) + (1 if len(names) == 12 else 0)
    return None


def version_tuple(version: str) -> tuple[int, int]:
    """'1.4-1' -> (1, 4)."""
    found = re.match(r"(\d+)\.(\d+)", version)
    return (int(found[1]), int(found[2])) if found else (0, 0)


@dataclass(frozen=True)
class Place:
    """Where pg_cron runs schedctl's job: schedctl's database, pg_cron's own, its version."""

    database: str
    cron_database: str
    version: str
    current_role: str
    superuser: bool

    @property
    def here(self) -> bool:
        """Whether pg_cron lives in schedctl's own database (as on Supabase)."""
        return self.cron_database == self.database

    @property
    def job_name(self) -> str:
        """The job's name: fixed, with the database added when pg_cron lives in another
        one, so that several databases of one server each keep their own job."""
        return JOB_NAME if self.here else f"{JOB_NAME}:{self.database}"


@contextmanager
def cron_session(conn: db.Connection, settings: Settings) -> Iterator[tuple[Place, db.Connection]]:
    """Where pg_cron lives, and a connection to its database: `conn` itself when that is this
    database, else a second one with the same credentials. DatabaseUnavailable (exit 5) when
    the server does not run pg_cron or the extension is not created in its database."""
    found = db.fetch_one(conn, "pg_cron_where")
    if found["version"] is not None:  # created here: this is pg_cron's database
        yield _place(found, found["database"], found["version"]), conn
        return
    try:
        cron_database = db.fetch_one(conn, "pg_cron_database")["cron_database"]
    except pgerrors.InsufficientPrivilege:
        raise DatabaseUnavailable(
            f"pg_cron is not created in this database, and role {found['current_role']} may "
            "not read cron.database_name to find the database it lives in: run this as a "
            "superuser or a member of pg_read_all_settings"
        ) from None
    if not cron_database:
        raise DatabaseUnavailable(_NOT_LOADED)
    if cron_database == found["database"]:
        raise DatabaseUnavailable(_not_created(cron_database))
    url = _with_database(db.database_url(settings, announce=False), cron_database)
    try:
        with db.connect(settings, url) as cron_conn:
            version = db.fetch_one(cron_conn, "pg_cron_where")["version"]
            if version is None:
                raise DatabaseUnavailable(_not_created(cron_database))
            yield _place(found, cron_database, version), cron_conn
    except DatabaseUnavailable as exc:
        if exc.message.startswith("cannot connect"):
            exc.message = (
                f"pg_cron lives in database {cron_database!r} (cron.database_name), and "
                f"{exc.message}"
            )
        raise


def _place(found: Any, cron_database: str, version: str) -> Place:
    return Place(
        database=found["database"],
        cron_database=cron_database,
        version=version,
        current_role=found["current_role"],
        superuser=bool(found["superuser"]),
    )


def _not_created(cron_database: str) -> str:
    return (
        f"pg_cron is loaded but its extension is not created: run CREATE EXTENSION pg_cron "
        f"in database {cron_database!r} (cron.database_name; on Supabase, enable pg_cron "
        "under Database > Extensions)"
    )


def _with_database(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def install(
    conn: db.Connection, settings: Settings, schedule: Schedule, role: str | None
) -> Report:
    """Register `CALL schedctl.tick()` with pg_cron on `schedule`, run as `role` (default: the
    connecting role unless it is a superuser, else schedctl_cron). Running it again updates
    the job (schedule, role) in place; nothing else of pg_cron's is touched."""
    with cron_session(conn, settings) as (place, cron_conn):
        if schedule.seconds is not None and version_tuple(place.version) < SECONDS_FROM:
            raise InvalidInput(
                f"pg_cron {place.version} schedules by the minute: '{schedule.text}' needs "
                "pg_cron 1.5 or later; give a cron schedule such as '* * * * *'"
            )
        role = _job_role(conn, place, role)
        with cron_conn.work():
            for job in db.fetch_all(
                cron_conn, "pg_cron_jobs", job_name=place.job_name, database=place.database
            ):
                if job["username"] != role:  # installed before for another role
                    db.fetch_one(cron_conn, "pg_cron_unschedule", jobid=job["jobid"])
            params = {
                "job_name": place.job_name,
                "schedule": schedule.text,
                "command": COMMAND,
                "database": place.database,
                "role": role,
            }
            if place.here and role == place.current_role:
                db.fetch_one(cron_conn, "pg_cron_schedule", **params)
            else:
                try:
                    db.fetch_one(cron_conn, "pg_cron_schedule_in_database", **params)
                except pgerrors.InsufficientPrivilege:
                    raise DatabaseUnavailable(
                        f"role {place.current_role} may not make a pg_cron job "
                        + (f"for role {role}" if place.here else "for another database")
                        + ": that needs a superuser, or EXECUTE on cron.schedule_in_database "
                        + (
                            f"granted to it; or connect as {role} and install without --role"
                            if place.here
                            else "granted to it"
                        )
                        + "; nothing was changed"
                    ) from None
        return _report(cron_conn, place, RUNS_SHOWN)


def _job_role(conn: db.Connection, place: Place, role: str | None) -> str:
    """The role the job runs as, checked: it exists, may log in, is not a superuser, and may
    call the pass here."""
    if role is None:
        role = place.current_role
        if place.superuser:
            if not db.fetch_one(conn, "pg_cron_role_exists", role=SUPERUSER_DEFAULT_ROLE)["found"]:
                raise InvalidInput(
                    f"role {place.current_role} is a superuser, and the job must not run as "
                    f"one: give --role ROLE, a login role in schedctl_tick (contrib/grants.sql: "
                    f"CREATE ROLE {SUPERUSER_DEFAULT_ROLE} LOGIN IN ROLE schedctl_tick)"
                )
            role = SUPERUSER_DEFAULT_ROLE
    found = db.fetch_optional(conn, "pg_cron_role", role=role)
    if found is None:
        raise NotFound(f"no role {role!r} on this server")
    if found["superuser"]:
        raise InvalidInput(
            f"role {role} is a superuser: the job must run as a role that may do what a tick "
            "does and no more (contrib/grants.sql: a login role in schedctl_tick)"
        )
    if not found["can_login"]:
        raise InvalidInput(
            f"role {role} cannot log in, and pg_cron connects as the job's role: give a login "
            f"role (e.g. CREATE ROLE {SUPERUSER_DEFAULT_ROLE} LOGIN IN ROLE {role})"
        )
    if not found["procedure_exists"]:
        raise DatabaseUnavailable(
            "this database has no procedure schedctl.tick(): run `schedctl migrate`"
        )
    missing = [
        what
        for what, held in (
            (f"CONNECT on database {place.database}", found["can_connect"]),
            ("USAGE on schema schedctl", found["schema_usage"]),
            ("EXECUTE on procedure schedctl.tick()", found["can_execute"]),
        )
        if not held
    ]
    if missing:
        raise DatabaseUnavailable(
            f"role {role} lacks {', '.join(missing)}, which the job needs "
            "(contrib/grants.sql grants schedctl_tick what a tick needs); nothing was changed"
        )
    return role


def show(conn: db.Connection, settings: Settings, limit: int = RUNS_SHOWN) -> Report:
    """schedctl's pg_cron job of this database and its latest `limit` runs; NotFound when
    there is none this role may see."""
    with cron_session(conn, settings) as (place, cron_conn):
        return _report(cron_conn, place, limit)


@dataclass(frozen=True)
class Report:
    """schedctl's pg_cron job of a database, and its latest runs (rows of cron.job and
    cron.job_run_details, newest run first)."""

    place: Place
    job: dict[str, Any]
    runs: list[dict[str, Any]]


@dataclass(frozen=True)
class Removed:
    """The pg_cron job `remove` unscheduled."""

    name: str
    database: str


def _report(cron_conn: db.Connection, place: Place, limit: int) -> Report:
    jobs = db.fetch_all(cron_conn, "pg_cron_jobs", job_name=place.job_name, database=place.database)
    if not jobs:
        raise NotFound(
            f"no pg_cron job {place.job_name!r} for database {place.database!r}"
            " (that this role may see): run `schedctl pg-cron install`"
        )
    runs = db.fetch_all(
        cron_conn, "pg_cron_runs", jobids=[job["jobid"] for job in jobs], limit=limit
    )
    return Report(place=place, job=jobs[-1], runs=runs)


def remove(conn: db.Connection, settings: Settings) -> Removed:
    """Unschedule schedctl's pg_cron job of this database; NotFound when there is none this
    role may see."""
    with cron_session(conn, settings) as (place, cron_conn), cron_conn.work():
        jobs = db.fetch_all(
            cron_conn, "pg_cron_jobs", job_name=place.job_name, database=place.database
        )
        if not jobs:
            raise NotFound(
                f"no pg_cron job {place.job_name!r} for database {place.database!r}"
                " (that this role may see)"
            )
        for job in jobs:
            db.fetch_one(cron_conn, "pg_cron_unschedule", jobid=job["jobid"])
    return Removed(name=place.job_name, database=place.database)


def last_run(conn: db.Connection) -> dict[str, Any] | None:
    """For `status`: this database's job and its latest finished run, where pg_cron lives in
    this database and this role may read its tables (pg_cron shows a role only its own
    jobs, a superuser every one); None otherwise."""
    if not db.fetch_one(conn, "pg_cron_readable")["readable"]:
        return None
    found = db.fetch_optional(conn, "pg_cron_last_run", job_name=JOB_NAME)
    if found is None:
        return None
    return {
        "name": found["jobname"],
        "schedule": found["schedule"],
        "role": found["username"],
        "active": found["active"],
        "last_run": (
            {
                "status": found["status"],
                "message": found["return_message"],
                "start_time": _time(found["start_time"]),
                "end_time": _time(found["end_time"]),
            }
            if found["status"] is not None
            else None
        ),
    }


def _time(moment: Any) -> str | None:
    return rfc3339(moment) if moment is not None else None
