"""Shell completion of values read from the database: scheduler REFs (domains and id
prefixes), organisation names and the server's time zone names; --every from its fixed
choices. An answer that takes longer than SCHEDCTL_COMPLETION_TIMEOUT (half a second),
or any error, completes nothing:
a shell must never hang or print a traceback on TAB."""

from __future__ import annotations

import threading
from typing import Any

_EVERY = ("6h", "12h", "24h", "48h")


def _fetch(name: str, params: dict[str, Any]) -> list[str]:
    """The first column of a named query's rows, or nothing when the database does not answer
    in time (the connection is left to a daemon thread that dies with the process)."""
    found: list[str] = []
    try:
        # Imported before the clock starts: half a second is the database's to answer in.
        import psycopg

        from schedctl.config import Settings
        from schedctl.sql import query

        settings = Settings()
        statement = query(name)
    except Exception:
        return []
    if settings.database_url is None:  # never start the embedded server on TAB
        return []
    url = settings.database_url.get_secret_value()

    def ask() -> None:
        try:
            with psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=2,
                application_name="schedctl completion",
            ) as conn:
                rows = conn.execute(statement, params).fetchall()
            found.extend(str(row[0]) for row in rows)
        except Exception:
            found.clear()

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    worker.join(settings.completion_timeout)
    return list(found) if not worker.is_alive() else []


def _org(ctx: Any) -> str | None:
    """The organisation the command line names so far, else SCHEDCTL_ORG."""
    given = (getattr(ctx, "params", None) or {}).get("org")
    if given:
        return str(given)
    import os

    return os.environ.get("SCHEDCTL_ORG") or None


def refs(ctx: Any, incomplete: str) -> list[str]:
    """Domains of the organisation's schedulers, and ids, beginning with what was typed."""
    return _fetch("completion_refs", {"org": _org(ctx), "prefix": incomplete})


def organisations(incomplete: str) -> list[str]:
    return _fetch("completion_organisations", {"prefix": incomplete})


def time_zones(incomplete: str) -> list[str]:
    return _fetch("completion_time_zones", {"prefix": incomplete})


def every(incomplete: str) -> list[str]:
    return [value for value in _EVERY if value.startswith(incomplete)]
