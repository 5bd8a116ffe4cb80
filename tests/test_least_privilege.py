"""contrib/grants.sql: a role that can do what `tick` does and nothing more, and the
contrib files that run tick keep the database URL out of sight."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import (
    ENV_VARS,
    MIGRATIONS,
    Cli,
    Conn,
    as_uri,
    assert_error,
    cli_against,
    fetch_one,
    fingerprint,
    make_due,
    make_org,
    make_scheduler,
    with_database,
)
from tests.helpers import insert_active_job as _insert_active_job

CONTRIB = Path(__file__).resolve().parents[1] / "contrib"
GRANTS = CONTRIB / "grants.sql"


@dataclass
class TickRole:
    group: str
    login: str
    url: str


def _apply_grants(database_url: str, group: str) -> None:
    # Roles are server-wide: the test's own name keeps parallel runs apart.
    script = GRANTS.read_text().replace("schedctl_tick", group)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(script)


@pytest.fixture
def tick_role(database_url: str) -> Iterator[TickRole]:
    """grants.sql applied to this test's database, and a login role that is a member."""
    with _tick_role(database_url) as role:
        yield role


@contextmanager
def _tick_role(database_url: str) -> Iterator[TickRole]:
    suffix = uuid.uuid4().hex[:10]
    group, login, password = f"schedctl_tick_{suffix}", f"schedctl_cron_{suffix}", suffix
    _apply_grants(database_url, group)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(login), sql.Literal(password), sql.Identifier(group)
            )
        )
    params = conninfo_to_dict(database_url) | {"user": login, "password": password}
    url = as_uri(" ".join(f"{k}={v}" for k, v in params.items()))
    try:
        yield TickRole(group, login, url)
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            for role in (login, group):
                # Revokes its privileges here and on this database; then the role can go.
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _every_path_of_tick(cli: Cli, conn: Conn) -> dict[str, Any]:
    """Due schedulers that take each path of the pass: a plain job, a replaced active
    job, a slot skipped under the skip policy (an audit entry)."""
    make_org(cli, "Acme")
    docs = {
        "plain.com": make_scheduler(cli, "plain.com", "--include", "/blog"),
        "replace.com": make_scheduler(cli, "replace.com", "--overlap", "replace"),
        "skip.com": make_scheduler(cli, "skip.com", "--overlap", "skip"),
        "later.com": make_scheduler(cli, "later.com"),
    }
    for domain in ("plain.com", "replace.com", "skip.com"):
        make_due(conn, docs[domain]["id"], "13 hours")
    return {
        "docs": docs,
        "replaced": _insert_active_job(conn, docs["replace.com"]["id"]),
        "blocking": _insert_active_job(conn, docs["skip.com"]["id"]),
    }


def test_tick_runs_as_the_least_privileged_role(cli: Cli, conn: Conn, tick_role: TickRole) -> None:
    setup = _every_path_of_tick(cli, conn)
    docs = setup["docs"]
    env = {"SCHEDCTL_DATABASE_URL": tick_role.url}

    dry = cli("tick", "--dry-run", "--json", env=env)
    assert dry.code == 0, dry.stderr
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (2,)

    result = cli("tick", "--json", env=env)
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["due"], summary["created"], summary["skipped"], summary["failed"]) == (
        3,
        2,
        1,
        0,
    )
    assert summary["missed"] == 6
    assert {j["scheduler_id"] for j in summary["jobs"]} == {
        docs["plain.com"]["id"],
        docs["replace.com"]["id"],
    }
    assert [j | {"job_id": None} for j in summary["jobs"]] == json.loads(dry.stdout)["jobs"]
    made = conn.execute(
        "SELECT scheduler_id::text, status, include_paths, source_type FROM jobs "
        "WHERE id = ANY(%s) ORDER BY include_paths NULLS LAST",
        [[j["job_id"] for j in summary["jobs"]]],
    ).fetchall()
    assert made == [
        (docs["plain.com"]["id"], "pending", '["/blog"]', "scheduler"),
        (docs["replace.com"]["id"], "pending", None, "scheduler"),
    ]
    assert conn.execute(
        "SELECT status, completed_at IS NOT NULL FROM jobs WHERE id = %s", [setup["replaced"]]
    ).fetchone() == ("cancelled", True)
    assert conn.execute(
        "SELECT status FROM jobs WHERE id = %s", [setup["blocking"]]
    ).fetchone() == ("running",)
    assert conn.execute(
        "SELECT actor, scheduler_id::text FROM schedctl.audit WHERE action = 'skip'"
    ).fetchall() == [("tick", docs["skip.com"]["id"])]
    assert conn.execute("SELECT ok, created, skipped FROM schedctl.tick_heartbeats").fetchall() == [
        (True, 2, 1)
    ]
    assert conn.execute(
        "SELECT count(*) FROM schedulers WHERE next_run_at <= now() AND is_enabled"
    ).fetchone() == (0,)

    quiet = cli("tick", "--quiet", env=env)
    assert (quiet.code, quiet.stdout, quiet.stderr) == (0, "", "")


@pytest.fixture(scope="module")
def refusing_world(
    server_url: str,
    template_db: str,
    _dropper: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Conn, TickRole]]:
    """One migrated database, with the schedulers of _every_path_of_tick and the tick role,
    shared by the checks that the role is refused a statement (each changes nothing)."""
    name = f"schedctl_t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    try:
        url = with_database(server_url, name)
        with psycopg.connect(url, autocommit=True) as conn, _tick_role(url) as role:
            with pytest.MonkeyPatch.context() as monkeypatch:  # as _clean_environment does
                for var in ENV_VARS:
                    monkeypatch.delenv(var, raising=False)
                monkeypatch.chdir(tmp_path_factory.mktemp("refusing_world"))
                _every_path_of_tick(cli_against(url, monkeypatch), conn)
            yield conn, role
    finally:
        _dropper.drop(name)


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM schedulers",
        "DELETE FROM jobs",
        "TRUNCATE jobs",
        "UPDATE schedulers SET concurrency = 1",
        "UPDATE schedulers SET is_enabled = FALSE",
        "UPDATE jobs SET progress = 1",
        "INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours, "
        "next_run_at) SELECT domain_id, organisation_id, 6, now() FROM schedulers",
        "INSERT INTO domains (name) VALUES ('other.com')",
        "INSERT INTO organisations (name) VALUES ('Mallory')",
        "SELECT * FROM organisations",
        "SELECT user_id FROM jobs",
        "DELETE FROM schedctl.tick_heartbeats",
        "DROP TABLE schedulers",
    ],
)
def test_the_role_cannot_do_anything_else(
    refusing_world: tuple[Conn, TickRole], statement: str
) -> None:
    conn, tick_role = refusing_world
    with psycopg.connect(tick_role.url) as role_conn:
        assert role_conn.execute("SELECT current_user").fetchone() == (tick_role.login,)
        # In a transaction that is rolled back: a statement wrongly allowed changes nothing
        # the other statements of this world are tried against.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            role_conn.execute(statement)
        role_conn.rollback()
    assert conn.execute("SELECT count(*) FROM schedulers").fetchone() == (4,)
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (2,)


def test_the_role_ticks_zoned_windowed_and_paused_until_schedulers(
    cli: Cli, conn: Conn, tick_role: TickRole
) -> None:
    """A wall-clock grid, a catch-up window and a pause that has run out: the role computes
    the slots, records the missed one and resumes the paused scheduler (through the function
    granted for it), though it may not enable or disable a scheduler itself."""
    make_org(cli, "Acme")
    zoned = make_scheduler(cli, "zoned.com", "--at", "03:00", "--time-zone", "Europe/London")
    late = make_scheduler(cli, "late.com", "--catchup-window", "1m")
    paused = make_scheduler(cli, "paused.com", "--disabled", "--until", "1h")
    make_due(conn, zoned["id"], "1 minute")
    make_due(conn, late["id"], "1 hour")
    conn.execute(
        "UPDATE schedctl.scheduler_settings SET paused_until = now() - interval '1 second'"
        " WHERE scheduler_id = %s",
        [paused["id"]],
    )
    result = cli("tick", "--json", env={"SCHEDCTL_DATABASE_URL": tick_role.url})
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["due"], summary["created"], summary["skipped"], summary["missed"]) == (
        2,
        1,
        1,
        1,
    )
    assert conn.execute(
        "SELECT action, actor FROM schedctl.audit WHERE actor = 'tick' ORDER BY action"
    ).fetchall() == [("missed", "tick"), ("resume", "tick")]
    assert fetch_one(conn, "SELECT is_enabled FROM schedulers WHERE id = %s", [paused["id"]]) == (
        True,
    )
    with psycopg.connect(tick_role.url, autocommit=True) as role_conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            role_conn.execute("UPDATE schedulers SET is_enabled = TRUE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            role_conn.execute("UPDATE schedctl.scheduler_settings SET paused_until = NULL")


def test_the_role_cannot_create_tables_on_postgresql_15_and_later(
    conn: Conn, tick_role: TickRole
) -> None:
    version = int(fetch_one(conn, "SHOW server_version_num")[0])
    if version < 150000:
        pytest.skip("PostgreSQL 13 and 14 let PUBLIC create in the public schema (see grants.sql)")
    with (
        psycopg.connect(tick_role.url, autocommit=True) as role_conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        role_conn.execute("CREATE TABLE stash (x int)")


def test_schedctl_commands_that_change_schedulers_fail_as_the_role(
    cli: Cli, conn: Conn, tick_role: TickRole
) -> None:
    docs = _every_path_of_tick(cli, conn)["docs"]
    env = {"SCHEDCTL_DATABASE_URL": tick_role.url}
    org = docs["plain.com"]["organisation_id"]
    for args in (
        ["delete", docs["plain.com"]["id"], "--yes", "--org", org],
        ["pause", "plain.com", "--org", org],
        ["update", "plain.com", "--every", "12h", "--org", org],
        ["create", "new.com", "--every", "6h", "--org", org],
    ):
        result = cli(*args, "--json", env=env)
        assert result.code != 0, args
        assert result.stdout == ""
        assert re.match(r"^error: .*permission denied", result.stderr), result.stderr
    assert conn.execute("SELECT count(*) FROM schedulers").fetchone() == (4,)
    assert conn.execute(
        "SELECT schedule_interval_hours, is_enabled FROM schedulers WHERE id = %s",
        [docs["plain.com"]["id"]],
    ).fetchone() == (6, True)


def test_grants_can_be_applied_again(
    cli: Cli, conn: Conn, database_url: str, tick_role: TickRole
) -> None:
    _apply_grants(database_url, tick_role.group)
    _every_path_of_tick(cli, conn)
    result = cli("tick", "--json", env={"SCHEDCTL_DATABASE_URL": tick_role.url})
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["created"] == 2
    with (
        psycopg.connect(tick_role.url, autocommit=True) as role_conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        role_conn.execute("DELETE FROM jobs")


# ---------------------------------------------------------------- the files that run tick


def test_the_systemd_unit_runs_tick_quietly_with_basic_hardening() -> None:
    service = (CONTRIB / "systemd" / "schedctl-tick.service").read_text()
    settings = dict(
        line.split("=", 1) for line in service.splitlines() if re.match(r"^[A-Z]\w*=", line)
    )
    assert settings["Type"] == "oneshot"
    assert settings["User"] == "schedctl"
    assert settings["EnvironmentFile"] == "/etc/schedctl/env"
    assert settings["ExecStart"] == "/usr/local/bin/schedctl tick --quiet"
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["PrivateTmp"] == "yes"
    assert settings["ProtectSystem"] == "strict"
    assert settings["ProtectHome"] in ("yes", "read-only")
    assert "postgresql://" not in "\n".join(
        line for line in service.splitlines() if not line.startswith("#")
    )
    timer = (CONTRIB / "systemd" / "schedctl-tick.timer").read_text()
    assert re.search(r"^OnCalendar=\*-\*-\* \*:\*:00$", timer, re.M)
    assert re.search(r"^WantedBy=timers.target$", timer, re.M)


def test_the_crontab_runs_tick_every_minute_reading_the_url_from_a_file() -> None:
    lines = [
        line
        for line in (CONTRIB / "crontab.example").read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert lines == [
        "* * * * * schedctl set -a && . /etc/schedctl/env && set +a"
        " && exec /usr/local/bin/schedctl tick --quiet"
    ]
    assert "SCHEDCTL_DATABASE_URL=postgresql" not in "\n".join(lines)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_the_crontab_command_ticks_quietly_as_the_role(
    cli: Cli, conn: Conn, tick_role: TickRole, tmp_path: Path
) -> None:
    """The crontab line's command, run by sh as cron would, with the env file elsewhere."""
    _every_path_of_tick(cli, conn)
    env_file = tmp_path / "env"
    env_file.write_text(f"SCHEDCTL_DATABASE_URL='{tick_role.url}'\n")
    env_file.chmod(0o600)
    line = next(
        line
        for line in (CONTRIB / "crontab.example").read_text().splitlines()
        if line.startswith("* * * * * schedctl ")
    )
    command = (
        line.removeprefix("* * * * * schedctl ")
        .replace("/etc/schedctl/env", str(env_file))
        .replace("/usr/local/bin/schedctl", str(Path(sys.executable).parent / "schedctl"))
    )
    path = os.pathsep.join(["/usr/bin", "/bin"])  # Debian cron's
    proc = subprocess.run(
        ["sh", "-c", command],
        env={"PATH": path, "HOME": str(tmp_path)},  # cron's bare environment
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert conn.execute("SELECT count(*) FROM jobs WHERE source_type = 'scheduler'").fetchone() == (
        2,
    )


# ---------------------------------------------------------------- schedctl_monitor


@pytest.fixture
def monitor_url(database_url: str) -> Iterator[str]:
    """grants.sql applied with its monitoring role under a name of this test's own, and a
    login role that is a member of it (and of nothing else)."""
    suffix = uuid.uuid4().hex[:10]
    tick, group = f"schedctl_tick_{suffix}", f"schedctl_monitor_{suffix}"
    login, password = f"schedctl_nagios_{suffix}", uuid.uuid4().hex
    script = GRANTS.read_text().replace("schedctl_tick", tick).replace("schedctl_monitor", group)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(script)
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(login), sql.Literal(password), sql.Identifier(group)
            )
        )
    params = conninfo_to_dict(database_url) | {"user": login, "password": password}
    try:
        yield as_uri(" ".join(f"{k}={v}" for k, v in params.items()))
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            for role in (login, group, tick):
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_status_and_list_run_as_the_monitoring_role(cli: Cli, conn: Conn, monitor_url: str) -> None:
    _every_path_of_tick(cli, conn)
    assert cli("tick", "--json").code == 0
    env = {"SCHEDCTL_DATABASE_URL": monitor_url}
    status = cli("status", "--all-orgs", "--json", env=env)
    assert status.code == 0, status.stderr
    report = json.loads(status.stdout)
    assert (report["enabled"], report["schema_version"]) == (4, MIGRATIONS[-1])
    assert report["last_tick"]["created"] == 2
    org = cli("status", "--org", "Acme", "--json", env=env)
    assert org.code == 0, org.stderr
    listed = cli("list", "--org", "Acme", "--json", env=env)
    assert listed.code == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 4


def test_the_monitoring_role_writes_nothing(cli: Cli, conn: Conn, monitor_url: str) -> None:
    """A command that writes fails as the monitoring role with exit 5, naming what was denied."""
    _every_path_of_tick(cli, conn)
    before = fingerprint(conn)
    env = {"SCHEDCTL_DATABASE_URL": monitor_url}
    for args in (
        ["pause", "plain.com", "--org", "Acme"],
        ["tick"],
        ["org", "create", "Mallory"],
    ):
        message = assert_error(cli(*args, env=env), 5)
        assert "permission denied for " in message, message
        assert "contrib/grants.sql" in message, message
    assert fingerprint(conn) == before


def test_a_missing_privilege_names_the_privilege_and_the_object(
    cli: Cli, conn: Conn, monitor_url: str, database_url: str
) -> None:
    """status without SELECT on yoyo's table (as before the monitoring role had it)."""
    make_org(cli, "Acme")
    group = conninfo_to_dict(monitor_url)["user"]
    assert isinstance(group, str)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("REVOKE SELECT ON schedctl._yoyo_migration FROM {}").format(
                sql.Identifier(group.replace("schedctl_nagios_", "schedctl_monitor_"))
            )
        )
    result = cli("status", "--all-orgs", env={"SCHEDCTL_DATABASE_URL": monitor_url})
    message = assert_error(result, 5)
    assert message.startswith(
        f"permission denied for table _yoyo_migration: role {group} has no SELECT, INSERT, "
        "UPDATE, DELETE privilege on table schedctl._yoyo_migration (contrib/grants.sql "
        "grants role schedctl_monitor what the reading commands need"
    ), message


def test_the_systemd_unit_adds_the_cheap_hardening_and_a_drop_in_for_the_database() -> None:
    service = (CONTRIB / "systemd" / "schedctl-tick.service").read_text()
    settings = dict(
        line.split("=", 1) for line in service.splitlines() if re.match(r"^[A-Z]\w*=", line)
    )
    assert settings["SystemCallFilter"] == "@system-service"
    assert settings["ProtectProc"] == "invisible"
    assert settings["ProcSubset"] == "pid"
    assert settings["IPAddressDeny"] == "any"
    drop_in = (CONTRIB / "systemd" / "schedctl-tick.service.d" / "database.conf").read_text()
    assert re.search(r"^\[Service\]$", drop_in, re.M)
    assert re.search(r"^IPAddressAllow=\S+$", drop_in, re.M)
    timer = (CONTRIB / "systemd" / "schedctl-tick.timer").read_text()
    assert re.search(r"^RandomizedDelaySec=\d+s$", timer, re.M)
    assert re.search(r"^FixedRandomDelay=true$", timer, re.M)
