"""`schedctl doctor`: the checks of what breaks deployments, each ok, warn or fail with one
line of remedy. Every check reads; none writes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

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


def failed(checks: list[Check]) -> bool:
    """Whether any check failed (doctor exits 1 then)."""
    return any(check.status == FAIL for check in checks)


# What each group of commands needs: (kind, object, column, privilege). Kinds: table,
# column, function, schema.
_TICK = "tick"
_READ = "status, list, show, history, log, timeline"
_CHANGE = "create, update, pause, resume, delete"
_RUN = "run"
_ORG = "org create, rename, delete"
_HOOKS = "hooks set, clear"
_NEEDS: dict[str, list[tuple[str, str, str | None, str]]] = {
    _READ: [
        ("table", "public.organisations", None, "SELECT"),
        ("table", "public.schedulers", None, "SELECT"),
        ("column", "public.domains", "name", "SELECT"),
        ("table", "schedctl.scheduler_settings", None, "SELECT"),
        ("table", "schedctl.tick_heartbeats", None, "SELECT"),
        ("table", "schedctl._yoyo_migration", None, "SELECT"),
    ],
    _TICK: [
        ("table", "public.schedulers", None, "SELECT"),
        ("column", "public.schedulers", "next_run_at", "UPDATE"),
        ("column", "public.domains", "name", "SELECT"),
        ("column", "public.jobs", "status", "SELECT"),
        ("column", "public.jobs", "id", "INSERT"),
        ("column", "public.jobs", "scheduler_id", "INSERT"),
        ("column", "public.jobs", "status", "UPDATE"),
        ("table", "schedctl.scheduler_settings", None, "SELECT"),
        ("table", "schedctl.served_slots", None, "INSERT"),
        ("table", "schedctl.served_slots", None, "SELECT"),
        ("column", "schedctl.audit", "action", "INSERT"),
        ("table", "schedctl.hooks", None, "SELECT"),
        ("table", "schedctl.tick_heartbeats", None, "INSERT"),
        ("table", "schedctl.tick_heartbeats", None, "UPDATE"),
        (
            "function",
            "schedctl.plan_slot(timestamptz, timestamptz, timestamptz, integer, timestamp, "
            "text, interval, integer)",
            None,
            "EXECUTE",
        ),
        ("function", "schedctl.resume_paused(timestamptz, text)", None, "EXECUTE"),
    ],
    _CHANGE: [
        ("table", "public.schedulers", None, "INSERT"),
        ("table", "public.schedulers", None, "UPDATE"),
        ("table", "public.schedulers", None, "DELETE"),
        ("table", "public.domains", None, "INSERT"),
        ("table", "schedctl.scheduler_settings", None, "INSERT"),
        ("table", "schedctl.scheduler_settings", None, "UPDATE"),
        ("table", "schedctl.audit", None, "INSERT"),
        ("column", "public.jobs", "scheduler_id", "UPDATE"),
    ],
    _RUN: [
        ("table", "public.jobs", None, "INSERT"),
        ("table", "schedctl.audit", None, "INSERT"),
    ],
    _ORG: [
        ("table", "public.organisations", None, "INSERT"),
        ("table", "public.organisations", None, "UPDATE"),
        ("table", "public.organisations", None, "DELETE"),
    ],
    _HOOKS: [("table", "schedctl.hooks", None, "UPDATE")],
}


def run(settings: Settings, *, client_clock: Callable[[], float] = time.time) -> list[Check]:
    """Every check, in order; the first (the connection) decides whether the rest run."""
    url = db.database_url(settings, announce=False)
    checks: list[Check] = []
    try:
        with db.connect(settings, url) as conn:
            checks.append(_connection(conn, settings))
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
                checks.append(_guarded(name, check))
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


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check that could not read what it needs says so instead of failing the rest."""
    try:
        return check()
    except pgerrors.InsufficientPrivilege as exc:
        return Check(
            name,
            WARN,
            f"not checked: {db.first_line(exc)}",
            "run doctor as the operator's role to check this too",
        )
    except (psycopg.Error, SchedctlError) as exc:
        message = exc.message if isinstance(exc, SchedctlError) else db.first_line(exc)
        return Check(name, FAIL, f"the check broke off: {message}", "see the message")


def _connection(conn: db.Connection, settings: Settings) -> Check:
    row = db.fetch_one(conn, "doctor_server")
    where = describe(conn.target or {})
    detail = f"PostgreSQL {row['version']}, {where}"
    if settings.database_url is None:
        return Check(
            "connection",
            WARN,
            detail + " (the embedded server: no database is configured)",
            "set SCHEDCTL_DATABASE_URL to the crawling service's database",
        )
    if row["version_num"] < MIN_SERVER_VERSION:
        return Check("connection", FAIL, detail, "schedctl needs PostgreSQL 13 or later")
    return Check("connection", OK, detail)


def _pooler(conn: db.Connection, settings: Settings) -> Check:
    server_pid = db.fetch_one(conn, "backend_pid")["pid"]
    pooled = conn.info.backend_pid != server_pid
    migrate_url = settings.migrate_database_url is not None
    if not pooled:
        extra = "; SCHEDCTL_MIGRATE_DATABASE_URL is set" if migrate_url else ""
        return Check("pooler", OK, "a direct connection: migrate can use it" + extra)
    if migrate_url:
        return Check(
            "pooler", OK, "through a pooler; migrate uses SCHEDCTL_MIGRATE_DATABASE_URL instead"
        )
    return Check(
        "pooler",
        WARN,
        "through a connection pooler, and SCHEDCTL_MIGRATE_DATABASE_URL is not set: "
        "migrate will refuse",
        "set SCHEDCTL_MIGRATE_DATABASE_URL to the server's direct address",
    )


def _schema(conn: db.Connection) -> Check:
    from schedctl.migrate import migrations_dir

    shipped = {p.stem for p in migrations_dir().glob("*.sql") if ".rollback" not in p.name}
    row = db.fetch_one(conn, "doctor_schema")
    if not row["migrated"]:
        return Check("schema", FAIL, "not migrated", "run `schedctl migrate`")
    applied = set(db.fetch_one(conn, "doctor_migrations")["ids"] or [])
    behind = sorted(shipped - applied)
    ahead = sorted(applied - shipped)
    if behind:
        return Check(
            "schema",
            FAIL,
            f"behind this schedctl: {', '.join(behind)} not applied",
            "run `schedctl migrate`",
        )
    if ahead:
        return Check(
            "schema",
            WARN,
            f"ahead of this schedctl: {', '.join(ahead)} applied by a newer one",
            "upgrade this schedctl to the version that migrated the database",
        )
    return Check("schema", OK, f"up to date ({max(shipped)})")


def _role(conn: db.Connection) -> Check:
    needs = [
        {"command": group, "kind": kind, "object": obj, "col": column, "privilege": privilege}
        for group, items in _NEEDS.items()
        for kind, obj, column, privilege in items
    ]
    rows = db.fetch_all(conn, "doctor_privileges", requirements=Jsonb(needs))
    role = rows[0]["role"] if rows else "?"
    missing: dict[str, list[str]] = {group: [] for group in _NEEDS}
    for row in rows:
        if not row["granted"]:
            target = row["object"] + (f" ({row['col']})" if row["col"] else "")
            missing[row["command"]].append(f"{row['privilege']} on {target}")
    can = [group for group, lacking in missing.items() if not lacking]
    cannot = {group: lacking for group, lacking in missing.items() if lacking}
    if not cannot:
        return Check("role", OK, f"role {role} can run every command")
    lacking_text = "; ".join(
        f"{group} (needs {', '.join(lacking[:3])}{', …' if len(lacking) > 3 else ''})"
        for group, lacking in cannot.items()
    )
    detail = (
        f"role {role} can run: {', '.join(can) if can else 'nothing'}; cannot run: {lacking_text}"
    )
    return Check(
        "role",
        WARN if can else FAIL,
        detail,
        "fine for a role made for one job (contrib/grants.sql); otherwise grant what is named",
    )


def _row_level_security(conn: db.Connection) -> Check:
    found = db.fetch_one(conn, "preflight")
    if found["filtered_tables"]:
        return Check(
            "row-level security",
            FAIL,
            f"policies may hide rows of {', '.join(found['filtered_tables'])} from {found['role']}",
            "give the login role BYPASSRLS, or policies that show it every row "
            "(contrib/grants.sql)",
        )
    return Check("row-level security", OK, "every row of the host's tables is visible")


def _hook_checks(conn: db.Connection) -> list[tuple[str, Callable[[], Check]]]:
    """One check per hook function set (or one saying none is)."""
    from schedctl import hooks

    try:
        found = hooks.read(conn)
    except (psycopg.Error, SchedctlError):

        def unreadable() -> Check:
            return Check("hooks", WARN, "the hooks could not be read", "run `schedctl migrate`")

        return [("hooks", unreadable)]
    functions = [
        (kind, function)
        for kind, function in (("create_job", found.create_job), ("cancel_job", found.cancel_job))
        if function is not None
    ]
    if not functions:
        return [
            (
                "hooks",
                lambda: Check("hooks", OK, "none set: schedctl makes and cancels jobs itself"),
            )
        ]

    def check_one(kind: str, function: Any) -> tuple[str, Callable[[], Check]]:
        name = f"hook {kind.replace('_', '-')}"

        def check() -> Check:
            try:
                hooks._check_function(conn, kind, function)
            except SchedctlError as exc:
                message = exc.message.split(": ", 1)[-1]
                return Check(
                    name,
                    FAIL,
                    message,
                    f"create or fix {function}, or `schedctl hooks clear "
                    f"--{kind.replace('_', '-')}`; until then tick fails",
                )
            return Check(name, OK, f"{function} exists, has the hook's form and may be run")

        return name, check

    return [check_one(kind, function) for kind, function in functions]


def _active_jobs_index(conn: db.Connection) -> Check:
    from schedctl.migrate import INDEX_ADVICE_ROWS

    state = db.fetch_one(conn, "active_jobs_index_state")
    if state["invalid"]:
        return Check(
            "active-jobs index",
            WARN,
            "the opt-in index was left invalid by a build that was stopped",
            "run `schedctl migrate --active-jobs-index` again",
        )
    if not state["present"] and state["jobs_estimate"] >= INDEX_ADVICE_ROWS:
        return Check(
            "active-jobs index",
            WARN,
            f"jobs holds about {state['jobs_estimate']} rows and no index finds active jobs by "
            "domain and organisation",
            "`schedctl migrate --active-jobs-index` builds one without blocking writes",
        )
    return Check("active-jobs index", OK, "not needed or present")


def _heartbeats(conn: db.Connection) -> Check:
    from schedctl.durations import duration

    rows = db.fetch_all(conn, "doctor_heartbeats")
    if not rows:
        return Check(
            "ticks",
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
        return Check(
            "ticks",
            FAIL,
            detail,
            f"no host ticked in the last {duration(HEARTBEAT_STALE_SECONDS)}: check cron or the "
            "timer",
        )
    if stale or failed:
        return Check(
            "ticks",
            WARN,
            detail,
            "a host that stopped ticking or failed: see its log (a retired host's row stays)",
        )
    return Check("ticks", OK, detail)


def _host_loop(conn: db.Connection) -> Check:
    row = db.fetch_one(conn, "doctor_foreign_scheduled_jobs")
    if row["jobs"]:
        return Check(
            "host scheduler loop",
            FAIL,
            f"{row['jobs']} job(s) with source_type 'scheduler' in the last day were not made by "
            "schedctl: the host's own scheduler loop still serves the schedulers",
            "switch the host's scheduler loop off, or the two serve the same slots",
        )
    return Check("host scheduler loop", OK, "every scheduled job of the last day is schedctl's")


def _clock(conn: db.Connection, client_clock: Callable[[], float]) -> Check:
    before = client_clock()
    server: datetime = db.fetch_one(conn, "doctor_clock")["now"]
    after = client_clock()
    client = datetime.fromtimestamp((before + after) / 2, tz=timezone.utc)
    skew = (client - server).total_seconds()
    side = "ahead of" if skew > 0 else "behind"
    detail = f"this host's clock is {abs(skew):.1f} s {side} the server's"
    if abs(skew) > CLOCK_SKEW_SECONDS:
        return Check(
            "clock",
            WARN,
            detail,
            "tick uses the server's clock; times given without an offset and relative times "
            "shown here are off by as much: sync this host (NTP)",
        )
    return Check("clock", OK, detail)
