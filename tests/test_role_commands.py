"""contrib/grants.sql gives each of its roles what the commands it documents for that role
need: every documented command, run as a login member of each role, succeeds."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import (
    Cli,
    Conn,
    as_uri,
    cli_against,
    fingerprint,
    make_due,
    make_org,
    make_scheduler,
)

GRANTS = Path(__file__).resolve().parents[1] / "contrib" / "grants.sql"
ROLES = ("schedctl_operator", "schedctl_tick", "schedctl_monitor")

# What grants.sql documents for each role, in its header, as `role: command, command, ...`.
_DOCUMENTED = re.compile(r"^--\s+(schedctl_\w+) runs: (.+)$", re.MULTILINE)


@dataclass
class Logins:
    urls: dict[str, str]  # role in grants.sql -> URL of a login member of it (alone)


@pytest.fixture
def logins(database_url: str) -> Iterator[Logins]:
    """grants.sql applied with its roles under names of this test's own, and one login role
    per group role, a member of that one only."""
    suffix = uuid.uuid4().hex[:10]
    names = {role: f"{role}_{suffix}" for role in ROLES}
    script = GRANTS.read_text()
    for role, name in names.items():
        script = script.replace(role, name)
    logins = {role: f"schedctl_login_{role.rpartition('_')[2]}_{suffix}" for role in ROLES}
    password = uuid.uuid4().hex
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(script)
        for role, login in logins.items():
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                    sql.Identifier(login), sql.Literal(password), sql.Identifier(names[role])
                )
            )
    urls = {}
    for role, login in logins.items():
        params = conninfo_to_dict(database_url) | {"user": login, "password": password}
        urls[role] = as_uri(" ".join(f"{k}={v}" for k, v in params.items()))
    try:
        yield Logins(urls)
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            for role in [*logins.values(), *names.values()]:
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def documented_commands() -> dict[str, set[str]]:
    found = {
        role: {c.strip() for c in text.split(",")}
        for role, text in _DOCUMENTED.findall(GRANTS.read_text())
    }
    return found


def _world(cli: Cli, conn: Conn) -> dict[str, str]:
    """An organisation with a plain scheduler, a zoned one with a spread (due), one under
    `skip`, a tick pass and a manual run behind them."""
    make_org(cli, "Acme")
    plain = make_scheduler(cli, "plain.com")
    zoned = make_scheduler(
        cli,
        "zoned.com",
        "--at",
        "09:00",
        "--time-zone",
        "Europe/Paris",
        "--spread",
        "1h",
    )
    make_scheduler(cli, "skip.com", "--overlap", "skip")
    make_due(conn, zoned["id"], "2 days")
    assert cli("tick").code == 0
    assert cli("run", "plain.com").code == 0
    return {"plain": plain["id"], "zoned": zoned["id"]}


def _commands(role: str, tmp: Path) -> list[list[str]]:
    """Each documented command of `role`, as it is run (in this order)."""
    reads = [
        ["status", "--all-orgs"],
        ["status", "--all-orgs", "--prometheus"],
        ["status", "--org", "Acme", "--json"],
        ["list", "--org", "Acme", "--json"],
        ["list", "--all-orgs"],
        ["show", "zoned.com", "--org", "Acme", "--next", "5", "--json"],
        ["show", "plain.com", "--org", "Acme"],
        ["history", "plain.com", "--org", "Acme", "--json"],
        ["log", "--org", "Acme", "--json"],
        ["log", "zoned.com", "--org", "Acme"],
        ["log", "--all-orgs"],
        ["org", "list", "--json"],
        ["hooks", "show", "--json"],
        ["export", "--org", "Acme"],
        ["export", "--all-orgs"],
    ]
    if role == "schedctl_monitor":
        return reads
    if role == "schedctl_tick":
        return [["tick", "--json"], ["tick", "--dry-run", "--json"], ["tick", "--quiet"]]
    schedules = tmp / "schedules.yaml"
    schedules.write_text(
        "schedulers:\n  - domain: applied.com\n    every: 12h\n  - domain: other.com\n"
        "    every: 24h\n    at: '03:00'\n    time-zone: Europe/London\n"
    )
    return [
        *reads,
        ["tick", "--dry-run", "--json"],
        ["org", "create", "Beta"],
        ["org", "rename", "Beta", "Gamma"],
        ["create", "new.com", "--org", "Acme", "--every", "6h", "--start-at", "now"],
        [
            "create",
            "newzone.com",
            "--org",
            "Acme",
            "--every",
            "24h",
            "--at",
            "03:00",
            "--time-zone",
            "Asia/Tokyo",
        ],
        ["update", "new.com", "--org", "Acme", "--every", "12h", "--max-pages", "10"],
        ["update", "zoned.com", "--org", "Acme", "--at", "10:00"],
        ["pause", "new.com", "--org", "Acme", "--reason", "maintenance"],
        ["resume", "new.com", "--org", "Acme"],
        ["pause", "plain.com", "--org", "Acme", "--until", "2h"],
        ["run", "zoned.com", "--org", "Acme", "--json"],
        ["tick", "--json"],
        ["apply", "-f", str(schedules), "--org", "Acme", "--dry-run"],
        ["apply", "-f", str(schedules), "--org", "Acme"],
        ["apply", "-f", str(schedules), "--org", "Acme", "--check"],
        ["apply", "-f", str(schedules), "--org", "Acme", "--prune"],
        ["hooks", "clear"],
        ["delete", "new.com", "--org", "Acme", "--yes"],
        ["org", "delete", "Gamma", "--yes"],
    ]


def test_grants_documents_the_commands_of_each_role() -> None:
    documented = documented_commands()
    assert set(documented) == set(ROLES), documented
    assert "show" in documented["schedctl_monitor"]
    assert "tick" in documented["schedctl_tick"]


@pytest.mark.parametrize("role", ROLES)
def test_every_documented_command_runs_as_its_role(
    cli: Cli,
    conn: Conn,
    logins: Logins,
    role: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _world(cli, conn)
    as_role = cli_against(logins.urls[role], monkeypatch)  # schedctl in this process, as role
    monkeypatch.setenv("SCHEDCTL_ORG", "Acme")
    documented = documented_commands()[role]
    before = fingerprint(conn)
    for args in _commands(role, tmp_path):
        assert any(" ".join(args).startswith(entry) for entry in documented), (role, args)
        result = as_role(*args)
        assert result.code == 0, (role, args, result.stderr)
        if "--json" in args:
            json.loads(result.stdout)
    if role == "schedctl_monitor":
        assert fingerprint(conn) == before  # it wrote nothing
    if role == "schedctl_operator":
        listed = as_role("list", "--org", "Acme", "--json")
        domains = {s["domain"] for s in json.loads(listed.stdout)}
        assert domains == {
            "applied.com",
            "other.com",
            "newzone.com",
            "zoned.com",
            "plain.com",
            "skip.com",
        }, domains
