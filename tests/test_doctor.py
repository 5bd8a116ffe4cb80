"""`schedctl doctor`: ok on a healthy database (exit 0); a dropped hook function, an
unmigrated schema or the host's own scheduler loop still running fail it (exit 1, named);
run as the tick role it names what that role cannot do."""

from __future__ import annotations

import json
from typing import Any

from tests.helpers import Cli, Conn, make_org, make_scheduler, ok_json, run_cli_subprocess
from tests.test_least_privilege import TickRole, tick_role  # noqa: F401 (a fixture)


def _checks(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in doc["checks"]}


def _healthy(cli: Cli) -> None:
    make_org(cli, "acme")
    make_scheduler(cli, "a.com")
    tick = cli("tick", "--json")
    assert tick.code == 0, tick.stderr


def test_a_healthy_database_passes(cli: Cli) -> None:
    _healthy(cli)
    result = cli("doctor", "--json")
    doc = ok_json(result)
    checks = _checks(doc)
    assert doc["ok"] is True
    assert {c["status"] for c in doc["checks"]} == {"ok"}, doc
    assert set(checks) >= {
        "connection",
        "pooler",
        "schema",
        "role",
        "row-level security",
        "hooks",
        "active-jobs index",
        "ticks",
        "host scheduler loop",
        "clock",
    }
    plain = cli("doctor")
    assert plain.code == 0, plain.stderr
    assert all(line.startswith(("ok ", "      ")) for line in plain.stdout.splitlines())


def test_a_dropped_hook_function_fails_naming_it(cli: Cli, conn: Conn) -> None:
    _healthy(cli)
    conn.execute(
        "CREATE FUNCTION public.make_crawl_job(scheduler_id uuid, slot timestamptz) "
        "RETURNS text LANGUAGE sql AS $$ SELECT NULL::text $$"
    )
    ok_json(cli("hooks", "set", "--create-job", "public.make_crawl_job", "--json"))
    assert cli("doctor", "--json").code == 0
    conn.execute("DROP FUNCTION public.make_crawl_job(uuid, timestamptz)")
    result = cli("doctor", "--json")
    assert result.code == 1, result.stderr
    doc = json.loads(result.stdout)
    hook = _checks(doc)["hook create-job"]
    assert hook["status"] == "fail"
    assert "make_crawl_job" in hook["detail"]
    assert doc["ok"] is False
    plain = cli("doctor")
    assert plain.code == 1
    assert any(
        line.startswith("fail") and "make_crawl_job" in line for line in plain.stdout.splitlines()
    )


def test_a_dropped_set_based_hook_function_fails_naming_it(cli: Cli, conn: Conn) -> None:
    _healthy(cli)
    conn.execute(
        "CREATE FUNCTION public.make_crawl_jobs(scheduler_ids uuid[], slots timestamptz[]) "
        "RETURNS TABLE(scheduler_id uuid, slot timestamptz, job_id text) LANGUAGE sql "
        "AS $$ SELECT NULL::uuid, NULL::timestamptz, NULL::text WHERE FALSE $$"
    )
    ok_json(cli("hooks", "set", "--create-jobs", "public.make_crawl_jobs", "--json"))
    assert cli("doctor", "--json").code == 0
    conn.execute("DROP FUNCTION public.make_crawl_jobs(uuid[], timestamptz[])")
    result = cli("doctor", "--json")
    assert result.code == 1, result.stdout
    hook = _checks(json.loads(result.stdout))["hook create-jobs"]
    assert hook["status"] == "fail" and "make_crawl_jobs" in hook["detail"], hook


def test_the_tick_role_is_told_what_it_cannot_do(
    cli: Cli,
    conn: Conn,
    tick_role: TickRole,  # noqa: F811
) -> None:
    _healthy(cli)
    result = run_cli_subprocess(["doctor", "--json"], {"SCHEDCTL_DATABASE_URL": tick_role.url})
    assert result.code in (0, 1), result.stderr
    role = _checks(json.loads(result.stdout))["role"]
    assert role["status"] == "warn"
    can, cannot = role["detail"].split("cannot run:")
    assert "tick" in can
    assert "create, update, pause, resume, delete" in cannot
    assert "INSERT on public.schedulers" in cannot
    assert tick_role.login in role["detail"]


def test_an_unmigrated_database_fails(empty_database_url: str) -> None:
    result = run_cli_subprocess(["doctor", "--json"], {"SCHEDCTL_DATABASE_URL": empty_database_url})
    assert result.code == 1, result.stderr
    schema = _checks(json.loads(result.stdout))["schema"]
    assert schema["status"] == "fail" and "migrate" in schema["remedy"]


def test_the_host_scheduler_loop_still_running_fails(cli: Cli, conn: Conn) -> None:
    _healthy(cli)
    conn.execute(
        "INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at, "
        "concurrency, find_links, max_pages, source_type, source_detail, scheduler_id) "
        "SELECT gen_random_uuid()::text, domain_id, organisation_id, 'pending', 0, now(), 20, "
        "true, 0, 'scheduler', id::text, id FROM schedulers"
    )
    result = cli("doctor", "--json")
    assert result.code == 1
    loop = _checks(json.loads(result.stdout))["host scheduler loop"]
    assert loop["status"] == "fail" and "1 job" in loop["detail"]


def test_an_unreachable_database_fails_the_connection_check(cli: Cli) -> None:
    result = cli(
        "doctor",
        "--json",
        env={"SCHEDCTL_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert result.code == 1
    doc = json.loads(result.stdout)
    assert [c["name"] for c in doc["checks"]] == ["connection"]
    assert doc["checks"][0]["status"] == "fail"
