"""Small helpers shared by the command-line tests: making organisations and schedulers,
reading the database clock, and fingerprinting every table a command could write."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

# Every table a schedctl command may write; a refused command must leave them all as they were.
WRITABLE_TABLES = (
    "organisations",
    "domains",
    "schedulers",
    "jobs",
    "schedctl.audit",
    "schedctl.scheduler_settings",
    "schedctl.served_slots",
)


def parse_time(text: str) -> datetime:
    """An RFC 3339 string from schedctl's JSON as an aware datetime (Python 3.10 safe)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def db_now(conn: Any) -> datetime:
    """The database's clock."""
    value: datetime = conn.execute("SELECT now()").fetchone()[0]
    return value


def make_org(cli: Any, name: str) -> str:
    """Create an organisation through the CLI and return its id."""
    result = cli("org", "create", name, "--json")
    assert result.code == 0, result.stderr
    org_id: str = json.loads(result.stdout)["id"]
    return org_id


def make_scheduler(cli: Any, domain: str, *options: str) -> dict[str, Any]:
    """Create a scheduler through the CLI (`--every 6h` unless given) and return its JSON."""
    args = ["create", domain, *options, "--json"]
    if "--every" not in options:
        args += ["--every", "6h"]
    result = cli(*args)
    assert result.code == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def make_due(conn: Any, scheduler_id: str, ago: str = "1 minute") -> datetime:
    """Move a scheduler's next run into the past (by the database clock); return it."""
    row = conn.execute(
        "UPDATE schedulers SET next_run_at = now() - %s::interval WHERE id = %s "
        "RETURNING next_run_at",
        [ago, scheduler_id],
    ).fetchone()
    assert row is not None, scheduler_id
    value: datetime = row[0]
    return value


def fingerprint(conn: Any) -> dict[str, tuple[int, str | None]]:
    """Row count and an md5 of the full contents of every writable table."""
    out: dict[str, tuple[int, str | None]] = {}
    for table in WRITABLE_TABLES:
        count, digest = conn.execute(
            f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
        ).fetchone()
        out[table] = (count, digest)
    return out


def assert_error(result: Any, code: int) -> str:
    """The command failed with `code`, one `error:` line on stderr and nothing on stdout;
    return the message."""
    assert result.code == code, (result.code, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0][len("error: ") :]
