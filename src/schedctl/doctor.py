"""`schedctl doctor`: the checks of what breaks deployments, each ok, warn or fail with one
line of remedy. Every check reads; none writes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

import psycopg
from psycopg import errors as pgerrors
from psycopg.types.json import Jsonb

from schedctl import db
from schedctl.config import Settings
from schedctl.errors import SchedctlError
from schedctl.models import describe

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_SERVER_VERSION = 130000
# A host whose last tick is older than this has stopped ticking (status's default --max-lag).
HEARTBEAT_STALE_SECONDS = 300
CLOCK_SKEW_SECONDS = 10.0


@dataclass(frozen=True)
class Check:
    """One check's outcome: `detail` says what was found, `remedy` what to do (empty when
    there is nothing to do)."""

    name: str
    status: str
    detail: str
    remedy: str = ""


class Finding(NamedTuple):
    """What a check found; run() names it (Check)."""

    status: str
    detail: str
    remedy: str = ""


def failed(checks: list[Check]) -> bool:
    """Whether any check failed (doctor exits 1 then)."""
    return any(check.status == FAIL for check in checks)


# What each group of commands needs, as GRANT names it: (privilege, object) or, for one
# column, (privilege, table, column); an object with arguments is a function.
_TICK = "tick"
_READ = "status, list, show, history, log, timeline"
_CHANGE = "create, update, pause, resume, delete"
_RUN = "run"
_ORG = "org create, rename, delete"
_HOOKS = "hooks set, clear"
_NEEDS: dict[str, list[tuple[str, ...]]] = {
    _READ: [
        ("SELECT", "public.organisations"),
        ("SELECT", "public.schedulers"),
        ("SELECT", "public.domains", "name"),
        ("SELECT", "schedctl.scheduler_settings"),
        ("SELECT", "schedctl.tick_heartbeats"),
        ("SELECT", "schedctl._yoyo_migration"),
    ],
    _TICK: [
        ("SELECT", "public.schedulers"),
        ("UPDATE", "public.schedulers", "next_run_at"),
        ("SELECT", "public.domains", "name"),
        ("SELECT", "public.jobs", "status"),
        ("INSERT", "public.jobs", "id"),
        ("INSERT", "public.jobs", "scheduler_id"),
        ("UPDATE", "public.jobs", "status"),
        ("SELECT", "schedctl.scheduler_settings"),
        ("INSERT", "schedctl.served_slots"),
        ("SELECT", "schedctl.served_slots"),
        ("INSERT", "schedctl.audit", "action"),
        ("SELECT", "schedctl.hooks"),
        ("INSERT", "schedctl.tick_heartbeats"),
        ("UPDATE", "schedctl.tick_heartbeats"),
        (
            "EXECUTE",
            "schedctl.plan_slot(timestamptz, timestamptz, timestamptz, integer, timestamp, "
            "text, interval, integer)",
        ),
        ("EXECUTE", "schedctl.resume_paused(timestamptz, text)"),
    ],
    _CHANGE: [
        ("INSERT", "public.schedulers"),
        ("UPDATE", "public.schedulers"),
        ("DELETE", "public.schedulers"),
        ("INSERT", "public.domains"),
        ("INSERT", "schedctl.scheduler_settings"),
        ("UPDATE", "schedctl.scheduler_settings"),
        ("INSERT", "schedctl.audit"),
        ("UPDATE", "public.jobs", "scheduler_id"),
    ],
    _RUN: [
        ("INSERT", "public.jobs"),
        ("INSERT", "schedctl.audit"),
    ],
    _ORG: [
        ("INSERT", "public.organisations"),
        ("UPDATE", "public.organisations"),
        ("DELETE", "public.organisations"),
    ],
    _HOOKS: [("UPDATE", "schedctl.hooks")],
}


def _requirements() -> list[dict[str, str | None]]:
    """_NEEDS as doctor_privileges reads them: one row per group and privilege, with the
    kind of object (table, column or function)."""
    rows: list[dict[str, str | None]] = []
    for group, needs in _NEEDS.items():
        for privilege, obj, *column in needs:
            kind = "column" if column else "function" if "(" in obj else "table"
            col = column[0] if column else None
            rows.append(
                {"command": group, "kind": kind, "object": obj, "col": col, "privilege": privilege}
            )
    return rows


def run(settings: Settings, *, client_clock: Callable[[], float] = time.time) -> list[Check]:
    """Every check, in order; the first (the connection) decides whether the rest run."""
    url = db.database_url(settings, announce=False)
    checks: list[Check] = []
    try:
        with db.connect(settings, url) as conn:
            checks.append(Check("connection", *_connection(conn, settings)))
            for name, check in (
                ("pooler", lambda: _pooler(conn, settings)),
                ("schema", lambda: _schema(conn)),
                ("role", lambda: _role(conn)),
                ("row-level security", lambda: _row_level_security(conn)),
                *_hook_checks(conn),
                ("active-jobs index", lambda: _active_jobs_index(conn)),
                ("ticks", lambda: _heartbeats(conn)),
                ("host scheduler loop", lambda: _host_loop(conn)),
                ("clock", lambda: _clock(conn, client_clock)),
            ):
                checks.append(Check(name, *_guarded(check)))
    except SchedctlError as exc:
        checks.append(
            Check(
                "connection",
                FAIL,
                exc.message,
                "check SCHEDCTL_DATABASE_URL (host, port, database, user, password) and that "
                "the server accepts connections",
            )
        )
    return checks


def _guarded(check: Callable[[], Finding]) -> Finding:
    """A check that could not read what it needs says so instead of failing the rest."""
    try:
        return check()
    except pgerrors.InsufficientPrivilege as exc:
        return Finding(
            WARN,
            f"not checked: {db.first_line(exc)}",
            "run doctor as the operator's role to check this too",
        )
    except (psycopg.Error, SchedctlError) as exc:
        message = exc.message if isinstance(exc, SchedctlError) else db.first_line(exc)
        return Finding(FAIL, f"the check broke off: {message}", "see the message")


def _connection(conn: db.Connection, settings: Settings) -> Finding:
    row = db.fetch_one(conn, "doctor_server")
    where = describe(conn.target or {})
    detail = f"PostgreSQL {row['version']}, {where}"
    if settings.database_url is None:
        return Finding(
            WARN,
            detail + " (the embedded server: no database is configured)",
            "set SCHEDCTL_DATABASE_URL to the crawling service's database",
        )
    if row["version_num"] < MIN_SERVER_VERSION:
        return Finding(FAIL, detail, "schedctl needs PostgreSQL 13 or later")
    return Finding(OK, detail)


def _pooler(conn: db.Connection, settings: Settings) -> Finding:
    server_pid = db.fetch_one(conn, "backend_pid")["pid"]
    pooled = conn.info.backend_pid != server_pid
    migrate_url = settings.migrate_database_url is not None
    if not pooled:
        extra = "; SCHEDCTL_MIGRATE_DATABASE_URL is set" if migrate_url else ""
        return Finding(OK, "a direct connection: migrate can use it" + extra)
    if migrate_url:
        return Finding(OK, "through a pooler; migrate uses SCHEDCTL_MIGRATE_DATABASE_URL instead")
    return Finding(
        WARN,
        "through a connection pooler, and SCHEDCTL_MIGRATE_DATABASE_URL is not set: "
        "migrate will refuse",
        "set SCHEDCTL_MIGRATE_DATABASE_URL to the server's direct address",
    )


def _schema(conn: db.Connection) -> Finding:
    from schedctl.migrate import migrations_dir

    shipped = {p.stem for p in migrations_dir().glob("*.sql") if ".rollback" not in p.name}
    row = db.fetch_one(conn, "doctor_schema")
    if not row["migrated"]:
        return Finding(FAIL, "not migrated", "run `schedctl migrate`")
    applied = set(db.fetch_one(conn, "doctor_migrations")["ids"] or [])
    behind = sorted(shipped - applied)
    ahead = sorted(applied - shipped)
    if behind:
        return Finding(
            FAIL, f"behind this schedctl: {', '.join(behind)} not applied", "run `schedctl migrate`"
        )
    if ahead:
        return Finding(
            WARN,
            f"ahead of this schedctl: {', '.join(ahead)} applied by a newer one",
            "upgrade this schedctl to the version that migrated the database",
        )
    return Finding(OK, f"up to date ({max(shipped)})")


def _role(conn: db.Connection) -> Finding:
    rows = db.fetch_all(conn, "doctor_privileges", requirements=Jsonb(_requirements()))
    role = rows[0]["role"] if rows else "?"
    missing: dict[str, list[str]] = {group: [] for group in _NEEDS}
    for row in rows:
        if not row["granted"]:
            target = row["object"] + (f" ({row['col']})" if row["col"] else "")
            missing[row["command"]].append(f"{row['privilege']} on {target}")
    can = [group for group, lacking in missing.items() if not lacking]
    cannot = {group: lacking for group, lacking in missing.items() if lacking}
    if not cannot:
        return Finding(OK, f"role {role} can run every command")
    lacking_text = "; ".join(
        f"{group} (needs {', '.join(lacking[:3])}{', …' if len(lacking) > 3 else ''})"
        for group, lacking in cannot.items()
    )
    detail = (
        f"role {role} can run: {', '.join(can) if can else 'nothing'}; cannot run: {lacking_text}"
    )
    return Finding(
        WARN if can else FAIL,
        detail,
        "fine for a role made for one job (contrib/grants.sql); otherwise grant what is named",
    )


def _row_level_security(conn: db.Connection) -> Finding:
    found = db.fetch_one(conn, "preflight")
    if found["filtered_tables"]:
        return Finding(
            FAIL,
            f"policies may hide rows of {', '.join(found['filtered_tables'])} from {found['role']}",
            "give the login role BYPASSRLS, or policies that show it every row "
            "(contrib/grants.sql)",
        )
    return Finding(OK, "every row of the host's tables is visible")


def _hook_checks(conn: db.Connection) -> list[tuple[str, Callable[[], Finding]]]:
    """One check per hook function set (or one saying none is)."""
    from schedctl import hooks

    try:
        found = hooks.read(conn)
    except (psycopg.Error, SchedctlError):

        def unreadable() -> Finding:
            return Finding(WARN, "the hooks could not be read", "run `schedctl migrate`")

        return [("hooks", unreadable)]
    functions = [
        (kind, function)
        for kind in hooks.FUNCTION_KINDS
        if (function := getattr(found, kind)) is not None
    ]
    if not functions:
        return [("hooks", lambda: Finding(OK, "none set: schedctl makes and cancels jobs itself"))]

    def check_one(kind: str, function: Any) -> tuple[str, Callable[[], Finding]]:
        option = kind.replace("_", "-")

        def check() -> Finding:
            try:
                hooks._check_function(conn, kind, function)
            except SchedctlError as exc:
                return Finding(
                    FAIL,
                    exc.message.split(": ", 1)[-1],
                    f"create or fix {function}, or `schedctl hooks clear --{option}`; until then "
                    "tick fails",
                )
            return Finding(OK, f"{function} exists, has the hook's form and may be run")

        return f"hook {option}", check

    return [check_one(kind, function) for kind, function in functions]


def _active_jobs_index(conn: db.Connection) -> Finding:
    from schedctl.migrate import INDEX_ADVICE_ROWS

    state = db.fetch_one(conn, "active_jobs_index_state")
    if state["invalid"]:
        return Finding(
            WARN,
            "the opt-in index was left invalid by a build that was stopped",
            "run `schedctl migrate --active-jobs-index` again",
        )
    if not state["present"] and state["jobs_estimate"] >= INDEX_ADVICE_ROWS:
        return Finding(
            WARN,
            f"jobs holds about {state['jobs_estimate']} rows and no index finds active jobs by "
            "domain and organisation",
            "`schedctl migrate --active-jobs-index` builds one without blocking writes",
        )
    return Finding(OK, "not needed or present")


def _heartbeats(conn: db.Connection) -> Finding:
    from schedctl.durations import duration

    rows = db.fetch_all(conn, "doctor_heartbeats")
    if not rows:
        return Finding(
            WARN,
            "no tick has run against this database",
            "run `schedctl tick` every minute from cron or a systemd timer (contrib/)",
        )
    stale = [row for row in rows if row["age_seconds"] > HEARTBEAT_STALE_SECONDS]
    failed = [row for row in rows if not row["ok"]]
    parts = [
        f"{row['host']} {duration(row['age_seconds'])} ago{'' if row['ok'] else ' (failed)'}"
        for row in rows
    ]
    detail = "last tick per host: " + ", ".join(parts)
    if stale and len(stale) == len(rows):
        return Finding(
            FAIL,
            detail,
            f"no host ticked in the last {duration(HEARTBEAT_STALE_SECONDS)}: check cron or the "
            "timer",
        )
    if stale or failed:
        return Finding(
            WARN,
            detail,
            "a host that stopped ticking or failed: see its log (a retired host's row stays)",
        )
    return Finding(OK, detail)


def _host_loop(conn: db.Connection) -> Finding:
    row = db.fetch_one(conn, "doctor_foreign_scheduled_jobs")
    if row["jobs"]:
        return Finding(
            FAIL,
            f"{row['jobs']} job(s) with source_type 'scheduler' in the last day were not made by "
            "schedctl: the host's own scheduler loop still serves the schedulers",
            "switch the host's scheduler loop off, or the two serve the same slots",
        )
    return Finding(OK, "every scheduled job of the last day is schedctl's")


def _clock(conn: db.Connection, client_clock: Callable[[], float]) -> Finding:
    before = client_clock()
    server: datetime = db.fetch_one(conn, "doctor_clock")["now"]
    after = client_clock()
    client = datetime.fromtimestamp((before + after) / 2, tz=timezone.utc)
    skew = (client - server).total_seconds()
    side = "ahead of" if skew > 0 else "behind"
    detail = f"this host's clock is {abs(skew):.1f} s {side} the server's"
    if abs(skew) > CLOCK_SKEW_SECONDS:
        return Finding(
            WARN,
            detail,
            "tick uses the server's clock; times given without an offset and relative times "
            "shown here are off by as much: sync this host (NTP)",
        )
    return Finding(OK, detail)
