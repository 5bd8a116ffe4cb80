"""`status`: the health of scheduling, for people and for monitoring checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from schedctl import db, pgcron
from schedctl.durations import duration
from schedctl.errors import DatabaseUnavailable
from schedctl.migrate import head_migration
from schedctl.models import plain, rfc3339


def status(conn: db.Connection, org_id: Any, max_lag: timedelta) -> dict[str, Any]:
    """Reachability, schema version, scheduler counts, worst lag and the last tick."""
    version_row = db.fetch_optional(conn, "schema_version")
    version = version_row["migration_id"] if version_row else None
    head = head_migration()
    if version is None or version < head:
        raise DatabaseUnavailable(
            f"the database schema is at {version or 'nothing'}, not {head}: run `schedctl migrate`"
        )
    counts = db.fetch_one(conn, "status_schedulers", organisation_id=org_id)
    last = db.fetch_optional(conn, "status_last_tick")
    lag = float(counts["worst_lag_seconds"])
    problems = []
    if lag > max_lag.total_seconds():
        limit = duration(max_lag.total_seconds())
        worst = db.fetch_optional(conn, "status_most_overdue", organisation_id=org_id)
        who = (
            f"the scheduler of {worst['domain']} ({worst['id']}, organisation "
            f"{worst['organisation']})"
            if worst is not None
            else "a scheduler"
        )
        problems.append(f"{who} has waited {duration(lag)} (more than {limit})")
    if last is not None and not last["ok"]:
        problems.append(f"the last tick failed: {last['message']}")
    cron = pgcron.last_run(conn)
    cron_run = cron["last_run"] if cron else None
    if cron is not None and cron_run is not None and cron_run["status"] == "failed":
        message = (cron_run["message"] or "no message").strip().splitlines()[0]
        problems.append(
            f"the last pg_cron run of {cron['name']} failed at {cron_run['start_time']}: {message}"
        )
    return {
        "ok": not problems,
        "problems": problems,
        "database": "reachable",
        "connection": conn.target,
        "schema_version": version,
        "enabled": counts["enabled"],
        "paused": counts["paused"],
        "due": counts["due"],
        "worst_lag_seconds": round(lag, 3),
        "max_lag_seconds": max_lag.total_seconds(),
        "last_tick": plain(dict(last)) if last else None,
        "last_tick_age_seconds": (
            round(max(0.0, (counts["now"] - last["ticked_at"]).total_seconds()), 3)
            if last
            else None
        ),
        "now": rfc3339(counts["now"]),
        "pg_cron": cron,
    }


def scheduler_counts(conn: db.Connection) -> dict[str, Any]:
    """Enabled, paused and due schedulers of every organisation, and the worst lag."""
    return dict(db.fetch_one(conn, "status_schedulers", organisation_id=None))
