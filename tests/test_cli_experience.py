"""What a newcomer trips over, fixed: unique organisation names (and renaming and deleting
them), contradictory flags refused, changes that change nothing writing nothing, id
prefixes, organisation names matched loosely, help that reads well, and the last run and
slot of each job in `list` and `history`."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from schedctl import embedded
from tests.helpers import (
    Cli,
    Conn,
    SharedWorld,
    SharedWorlds,
    as_uri,
    assert_error,
    check_result,
    cli_env,
    fetch_one,
    fingerprint,
    make_due,
    make_org,
    make_scheduler,
    ok_json,
    run_cli,
    run_cli_subprocess,
    run_in_terminal,
)
from tests.test_terminal_output import _visible


def _audit(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT action, scheduler_id, organisation_id::text, domain, changes"
        " FROM schedctl.audit ORDER BY id"
    ).fetchall()


def _host_org(conn: Conn, name: str) -> str:
    """An organisation the host made itself, outside schedctl."""
    return str(
        fetch_one(conn, "INSERT INTO organisations (name) VALUES (%s) RETURNING id", [name])[0]
    )


# ------------------------------------------------------------------ unique names


@pytest.mark.parametrize("again", ["Acme", "acme", "  ACME  "])
def test_org_create_of_a_taken_name_is_a_conflict_in_any_letter_case(
    cli: Cli, conn: Conn, again: str
) -> None:
    first = make_org(cli, "Acme")
    before = fingerprint(conn)
    message = assert_error(cli("org", "create", again), 4)
    assert "'Acme' already exists" in message and first in message
    assert fingerprint(conn) == before


def test_org_create_writes_an_audit_entry_without_a_scheduler(cli: Cli, conn: Conn) -> None:
    org = make_org(cli, "Acme")
    assert _audit(conn) == [("org_create", None, org, None, {"name": [None, "Acme"]})]


def test_the_hosts_own_duplicate_names_still_work_by_id_and_block_a_new_one(
    cli: Cli, conn: Conn
) -> None:
    first, second = _host_org(conn, "Twin"), _host_org(conn, "Twin")
    assert_error(cli("org", "create", "twin"), 4)
    assert_error(cli("list", "--org", "Twin"), 2)  # ambiguous: by id
    for org in (first, second):
        assert ok_json(cli("list", "--org", org, "--json")) == []


def test_concurrent_creates_of_one_name_make_one_organisation(
    database_url: str, conn: Conn
) -> None:
    env = cli_env({"SCHEDCTL_DATABASE_URL": database_url})
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "schedctl", "org", "create", name],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("Race", "race", "RACE", "Race", "rAce", "Race")
    ]
    codes = sorted(proc.wait(timeout=120) for proc in procs)
    for proc in procs:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert codes == [0, 4, 4, 4, 4, 4]
    assert fetch_one(conn, "SELECT count(*) FROM organisations WHERE lower(name) = 'race'") == (1,)


# ------------------------------------------------------------------ rename


def test_org_rename(cli: Cli, conn: Conn) -> None:
    org = make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    renamed = ok_json(cli("org", "rename", "acme", "Acme Ltd", "--json"))
    assert (renamed["id"], renamed["name"], renamed["changed"]) == (org, "Acme Ltd", True)
    assert renamed["schedulers"] == 1
    assert fetch_one(conn, "SELECT name FROM organisations WHERE id = %s", [org]) == ("Acme Ltd",)
    assert _audit(conn)[-1] == ("org_rename", None, org, None, {"name": ["Acme", "Acme Ltd"]})
    # Its own name in another letter case is no conflict.
    assert ok_json(cli("org", "rename", org, "ACME LTD", "--json"))["name"] == "ACME LTD"
    plain = cli("org", "rename", "ACME LTD", "Acme")
    assert plain.code == 0 and plain.stdout == f"renamed organisation ACME LTD to Acme ({org})\n"


def test_org_rename_to_another_organisations_name_is_a_conflict(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_org(cli, "Beta")
    before = fingerprint(conn)
    assert "'Acme' already exists" in assert_error(cli("org", "rename", "Beta", "ACME"), 4)
    assert_error(cli("org", "rename", "Nobody", "Gamma"), 3)
    assert_error(cli("org", "rename", "Beta", "  "), 2)
    assert fingerprint(conn) == before


def test_org_rename_to_its_own_name_changes_nothing(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    before = fingerprint(conn)
    doc = ok_json(cli("org", "rename", "Acme", "Acme", "--json"))
    assert (doc["name"], doc["changed"]) == ("Acme", False)
    plain = cli("org", "rename", "Acme", "Acme")
    assert plain.code == 0 and plain.stdout.startswith("nothing changed:")
    assert fingerprint(conn) == before


# ------------------------------------------------------------------ delete


def test_org_delete_of_an_unused_organisation(cli: Cli, conn: Conn) -> None:
    org = make_org(cli, "Acme")
    make_org(cli, "Beta")
    doc = ok_json(cli("org", "delete", "acme", "--yes", "--json"))
    assert doc == {
        "id": org,
        "name": "Acme",
        "deleted": True,
        "schedulers_deleted": 0,
        "jobs_deleted": 0,
    }
    assert fetch_one(conn, "SELECT count(*) FROM organisations WHERE id = %s", [org]) == (0,)
    assert _audit(conn)[-1][:4] == ("org_delete", None, org, None)
    # Its entries stay, under --all-orgs (no organisation names it any more).
    logged = ok_json(cli("log", "--all-orgs", "--json"))
    assert [e["action"] for e in logged if e["organisation_id"] == org] == [
        "org_delete",
        "org_create",
    ]
    table = cli("log", "--all-orgs")
    assert table.code == 0
    header, *rows = table.stdout.splitlines()
    assert header.split("\t")[-1] == "organisation"
    assert [row.split("\t")[-1] for row in rows].count(org) == 2
    assert "org_delete\t-\tname was Acme" in table.stdout


def test_org_delete_in_use_needs_cascade(cli: Cli, conn: Conn) -> None:
    org = make_org(cli, "Acme")
    make_org(cli, "Beta")
    doc = make_scheduler(cli, "example.com", "--org", "Acme")
    make_scheduler(cli, "example.com", "--org", "Beta")
    make_due(conn, doc["id"])
    ok_json(cli("tick", "--json"))
    before = fingerprint(conn)
    message = assert_error(cli("org", "delete", "Acme", "--yes"), 4)
    assert "1 scheduler(s) and 1 job(s)" in message and "--cascade" in message
    assert fingerprint(conn) == before

    deleted = ok_json(cli("org", "delete", "Acme", "--yes", "--cascade", "--json"))
    assert (deleted["schedulers_deleted"], deleted["jobs_deleted"]) == (1, 1)
    assert fetch_one(conn, "SELECT count(*) FROM schedulers") == (1,)  # Beta's
    assert fetch_one(conn, "SELECT count(*) FROM jobs WHERE organisation_id = %s", [org]) == (0,)
    assert fetch_one(
        conn, "SELECT count(*) FROM schedctl.served_slots WHERE scheduler_id = %s", [doc["id"]]
    ) == (0,)
    actions = [(a[0], a[3]) for a in _audit(conn) if a[2] == org]
    assert actions[-2:] == [("delete", "example.com"), ("org_delete", None)]


def test_org_delete_refused_by_a_host_table_changes_nothing(cli: Cli, conn: Conn) -> None:
    org = make_org(cli, "Acme")
    conn.execute("CREATE TABLE invoices (organisation_id uuid REFERENCES organisations (id))")
    conn.execute("INSERT INTO invoices VALUES (%s)", [org])
    before = fingerprint(conn)
    assert "invoices" in assert_error(cli("org", "delete", "Acme", "--yes", "--cascade"), 4)
    assert fingerprint(conn) == before


def test_org_delete_without_a_terminal_needs_yes(cli: Cli, database_url: str, conn: Conn) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url}
    make_org(cli, "Acme")
    before = fingerprint(conn)
    assert_error(run_cli_subprocess(["org", "delete", "Acme"], env), 2)
    assert fingerprint(conn) == before


# ------------------------------------------------------------------ conflicting flags

CONFLICTS = [
    ["update", "example.com", "--enable", "--disable"],
    ["update", "example.com", "--find-links", "--no-find-links"],
    ["create", "example.org", "--every", "6h", "--find-links", "--no-find-links"],
    ["list", "--enabled", "--disabled"],
    ["list", "--due", "--disabled"],
    ["list", "--all-orgs", "--org", "Acme"],
    ["log", "--all-orgs", "--org", "Acme"],
    ["status", "--all-orgs", "--org", "Acme"],
    ["update", "example.com", "--include", "/a", "--add-include", "/b"],
    ["update", "example.com", "--clear-exclude", "--remove-exclude", "/a"],
    ["update", "example.com", "--add-include", "/a", "--remove-include", "/a"],
]


def _one_scheduler(cli: Cli, conn: Conn, folder: Path) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")


@pytest.fixture(scope="module")
def one_scheduler_world(
    shared_worlds: SharedWorlds, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedWorld]:
    """One scheduler, shared by the contradictory flags (none may change anything)."""
    with shared_worlds(tmp_path_factory.mktemp("one"), _one_scheduler) as world:
        yield world


@pytest.mark.parametrize("args", CONFLICTS, ids=" ".join)
def test_contradictory_flags_are_a_usage_error_before_connecting(
    one_scheduler_world: SharedWorld, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    cli = one_scheduler_world.cli_for(monkeypatch)
    with psycopg.connect(one_scheduler_world.url, autocommit=True) as conn:
        before = fingerprint(conn)
        assert "cannot be used" in assert_error(cli(*args), 2)
        assert fingerprint(conn) == before
    # Checked before any connection: an unreachable database is not what is reported.
    result = cli(*args, env={"SCHEDCTL_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"})
    assert_error(result, 2)


# ------------------------------------------------------------------ several organisations


def test_list_all_orgs_names_each_schedulers_organisation(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_org(cli, "Beta")
    make_scheduler(cli, "a.com", "--org", "Acme", "--start-at", "2030-01-01T00:00:00Z")
    make_scheduler(cli, "b.com", "--org", "Beta", "--start-at", "2031-01-01T00:00:00Z")
    plain = cli("list", "--all-orgs")
    assert plain.code == 0, plain.stderr
    header, *rows = (line.split("\t") for line in plain.stdout.splitlines())
    assert header[-1] == "organisation"
    assert [(row[0], row[-1]) for row in rows] == [("a.com", "Acme"), ("b.com", "Beta")]
    # One organisation's list has no such column.
    assert "organisation" not in cli("list", "--org", "Acme").stdout.splitlines()[0]


def test_list_all_orgs_on_a_terminal_has_an_organisation_column(
    database_url: str, cli: Cli
) -> None:
    make_org(cli, "Acme")
    make_org(cli, "Beta")
    make_scheduler(cli, "a.com", "--org", "Acme")
    make_scheduler(cli, "b.com", "--org", "Beta")
    code, out = run_in_terminal(
        ["list", "--all-orgs"], {"SCHEDCTL_DATABASE_URL": database_url}, 160
    )
    assert code == 0, out
    text = "\n".join(_visible(out))
    assert "Organisation" in text
    assert re.search(r"│ Acme +│ a\.com", text) and re.search(r"│ Beta +│ b\.com", text)


# ------------------------------------------------------------------ changes that change nothing


def test_a_change_to_what_it_already_is_writes_nothing(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com", "--every", "6h", "--include", "/blog")
    before = fingerprint(conn)
    for args in (
        ["update", "example.com", "--every", "6h"],
        ["update", "example.com", "--every", "6", "--enable", "--concurrency", "20"],
        ["update", "example.com", "--include", "/blog", "--find-links"],
        ["update", "example.com", "--add-include", "/blog", "--remove-exclude", "/x"],
        ["resume", "example.com"],
    ):
        doc = ok_json(cli(*args, "--json"))
        assert doc["changed"] is False, args
        plain = cli(*args)
        assert plain.code == 0 and plain.stdout.startswith("nothing changed:"), args
        assert fingerprint(conn) == before, args


def test_pausing_a_paused_scheduler_with_the_same_reason_writes_nothing(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    assert ok_json(cli("pause", "example.com", "--reason", "hold", "--json"))["changed"] is True
    before = fingerprint(conn)
    assert ok_json(cli("pause", "example.com", "--reason", "hold", "--json"))["changed"] is False
    assert fingerprint(conn) == before
    moved = ok_json(cli("pause", "example.com", "--reason", "longer hold", "--json"))
    assert (moved["changed"], moved["pause_reason"]) == (True, "longer hold")
    assert ok_json(cli("resume", "example.com", "--json"))["changed"] is True
    assert [a[0] for a in _audit(conn)] == ["org_create", "create", "pause", "pause", "resume"]


# ------------------------------------------------------------------ include and exclude edits


def test_add_and_remove_include_and_exclude_paths(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com", "--include", "/blog", "--exclude", "/tmp")
    doc = ok_json(
        cli(
            "update",
            "example.com",
            "--add-include",
            "/docs",
            "--add-include",
            "/blog",
            "--remove-exclude",
            "/tmp",
            "--add-exclude",
            "/drafts",
            "--json",
        )
    )
    assert (doc["include_paths"], doc["exclude_paths"]) == (["/blog", "/docs"], ["/drafts"])
    doc = ok_json(cli("update", "example.com", "--remove-include", "/blog", "--json"))
    assert doc["include_paths"] == ["/docs"]
    # --include replaces the whole list.
    doc = ok_json(cli("update", "example.com", "--include", "/shop", "--json"))
    assert doc["include_paths"] == ["/shop"]
    before = fingerprint(conn)
    assert_error(cli("update", "example.com", "--add-include", "blog"), 2)
    assert fingerprint(conn) == before


# ------------------------------------------------------------------ REF prefixes


def _scheduler_with_id(conn: Conn, scheduler_id: str, domain: str) -> None:
    conn.execute(
        "WITH d AS (INSERT INTO domains (name) VALUES (%s) RETURNING id)"
        " INSERT INTO schedulers (id, domain_id, organisation_id, schedule_interval_hours,"
        " next_run_at) SELECT %s, d.id, (SELECT id FROM organisations WHERE name = 'Acme'),"
        " 6, now() + interval '1 hour' FROM d",
        [domain, scheduler_id],
    )


def test_a_unique_id_prefix_names_a_scheduler(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    for prefix in (doc["id"][:8], doc["id"][:13], doc["id"][:13].upper()):
        assert ok_json(cli("show", prefix, "--json"))["id"] == doc["id"]
    assert ok_json(cli("update", doc["id"][:8], "--concurrency", "5", "--json"))["concurrency"] == 5
    assert [e["action"] for e in ok_json(cli("log", doc["id"][:10], "--json"))] == [
        "update",
        "create",
    ]
    # Fewer than 8 characters is no prefix (and no domain).
    assert_error(cli("show", doc["id"][:7]), 3)


def test_an_ambiguous_prefix_lists_the_candidates(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    first, second = "abcdef01-0000-4000-8000-000000000001", "abcdef01-1000-4000-8000-000000000002"
    _scheduler_with_id(conn, first, "one.com")
    _scheduler_with_id(conn, second, "two.com")
    before = fingerprint(conn)
    for command in (["show"], ["update", "--concurrency", "3"], ["pause"], ["delete", "--yes"]):
        message = assert_error(cli(command[0], "abcdef01", *command[1:]), 2)
        assert f"{first} (one.com)" in message and f"{second} (two.com)" in message
    assert fingerprint(conn) == before
    assert ok_json(cli("show", "abcdef01-0", "--json"))["id"] == first
    assert ok_json(cli("show", "ABCDEF011", "--json"))["id"] == second


def test_a_prefix_of_another_organisations_scheduler_is_not_found(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_org(cli, "Beta")
    theirs = make_scheduler(cli, "example.com", "--org", "Beta")
    before = fingerprint(conn)
    message = assert_error(cli("update", theirs["id"][:8], "--every", "12h", "--org", "Acme"), 3)
    assert message == f"no scheduler {theirs['id'][:8]!r} in organisation 'Acme'"
    assert fingerprint(conn) == before


# ------------------------------------------------------------------ --org


def test_org_names_match_in_any_letter_case_and_a_near_miss_gets_a_hint(cli: Cli) -> None:
    acme = make_org(cli, "Acme Corp")
    make_org(cli, "Beta")
    assert (
        ok_json(cli("create", "example.com", "--every", "6h", "--org", "acme corp", "--json"))[
            "organisation_id"
        ]
        == acme
    )
    message = assert_error(cli("list", "--org", "Acme Crop"), 3)
    assert message == "organisation 'Acme Crop' not found; did you mean 'Acme Corp'?"
    assert assert_error(cli("list", "--org", "Zzzzzz"), 3) == "organisation 'Zzzzzz' not found"


def test_an_exact_name_wins_over_names_differing_in_case(cli: Cli, conn: Conn) -> None:
    lower, upper = _host_org(conn, "acme"), _host_org(conn, "ACME")
    assert (
        ok_json(cli("create", "a.com", "--every", "6h", "--org", "ACME", "--json"))[
            "organisation_id"
        ]
        == upper
    )
    assert (
        ok_json(cli("create", "b.com", "--every", "6h", "--org", "acme", "--json"))[
            "organisation_id"
        ]
        == lower
    )
    assert_error(cli("list", "--org", "Acme"), 2)


def test_scheduler_not_found_names_the_organisation(cli: Cli) -> None:
    make_org(cli, "Acme")
    assert assert_error(cli("show", "nowhere.com"), 3) == (
        "no scheduler 'nowhere.com' in organisation 'Acme'"
    )


# ------------------------------------------------------------------ --start-at now


def test_update_start_at_now_anchors_at_a_whole_second(cli: Cli) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    doc = ok_json(cli("update", "example.com", "--start-at", "now", "--json"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["next_run_at"]), doc


# ------------------------------------------------------------------ last run and slots


def test_list_shows_the_last_run_and_history_the_slot_and_trigger(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    ticked = make_scheduler(cli, "ticked.com")
    make_scheduler(cli, "manual.com")
    make_scheduler(cli, "never.com")
    slot = make_due(conn, ticked["id"])
    job_id = ok_json(cli("tick", "--json"))["jobs"][0]["job_id"]
    run_id = ok_json(cli("run", "manual.com", "--json"))["id"]

    listed = {d["domain"]: d["last_run"] for d in ok_json(cli("list", "--json"))}
    assert listed["never.com"] is None
    assert (listed["ticked.com"]["job_id"], listed["ticked.com"]["status"]) == (job_id, "pending")
    assert listed["manual.com"]["job_id"] == run_id
    plain = cli("list").stdout.splitlines()
    assert plain[0].split("\t")[6:8] == ["last_run", "last_status"]

    # A manual run of the ticked one is newer than its slot's job.
    again = ok_json(cli("run", "ticked.com", "--json"))
    assert again["trigger"] == "manual" and again["slot"] is None
    listed = {d["domain"]: d["last_run"] for d in ok_json(cli("list", "--json"))}
    assert listed["ticked.com"]["job_id"] == again["id"]

    jobs = ok_json(cli("history", "ticked.com", "--json"))
    assert [(j["id"], j["trigger"]) for j in jobs] == [
        (again["id"], "manual"),
        (job_id, "scheduled"),
    ]
    assert jobs[1]["slot"] == slot.isoformat().replace("+00:00", "Z")
    rows = [line.split("\t") for line in cli("history", "ticked.com").stdout.splitlines()]
    assert rows[0][-2:] == ["slot", "trigger"]
    assert rows[1][-2:] == ["-", "manual"] and rows[2][-1] == "scheduled"


def test_list_reads_the_last_run_without_scanning_the_jobs_of_a_scheduler(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    make_due(conn, doc["id"])
    ok_json(cli("tick", "--json"))
    # Years of the scheduler's history, made by the host's own loop before schedctl.
    conn.execute(
        """
        INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                          concurrency, find_links, max_pages, source_type, scheduler_id)
        SELECT gen_random_uuid()::text, s.domain_id, s.organisation_id, 'completed', 1,
               now() - g * interval '6 hours', 20, TRUE, 0, 'scheduler', s.id
        FROM schedulers s, generate_series(1, 5000) g WHERE s.id = %s
        """,
        [doc["id"]],
    )
    conn.execute("ANALYZE jobs")
    from schedctl.sql import query

    plan = "\n".join(
        row[0]
        for row in conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
            + query("scheduler_list").rstrip(";"),
            {"organisation_id": None, "is_enabled": None, "due_only": False},
        )
    )
    # jobs is read by its primary key only: no scan of the scheduler's jobs.
    job_reads = [line for line in plan.splitlines() if " on jobs" in line]
    assert job_reads and all("jobs_pkey" in line for line in job_reads), plan
    listed = ok_json(cli("list", "--json"))
    assert listed[0]["last_run"]["status"] == "pending"


# ------------------------------------------------------------------ help


def _commands() -> list[list[str]]:
    import typer.main

    import schedctl.cli

    group = typer.main.get_command(schedctl.cli.app)
    found: list[list[str]] = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found += [[name, sub] for sub in subcommands]
        else:
            found.append([name])
    return found


def test_every_command_takes_h_and_shows_readable_metavars() -> None:
    commands = _commands()
    assert ["org", "rename"] in commands and ["org", "delete"] in commands
    for command in commands:
        short = run_cli([*command, "-h"])
        assert short.code == 0, (command, short.stderr)
        assert short.stdout == run_cli([*command, "--help"]).stdout
        assert "{" not in short.stdout, short.stdout
        assert not re.search(r"<(str|int|list|text)", short.stdout), short.stdout
        assert "-h, --help" in short.stdout
    create = run_cli(["create", "-h"]).stdout
    assert "Usage: schedctl create [OPTIONS] DOMAIN" in create
    assert "--include PATH" in create and "--concurrency INTEGER" in create
    assert "Usage: schedctl log [OPTIONS] [REF]" in run_cli(["log", "-h"]).stdout
    assert "replace" in run_cli(["update", "-h"]).stdout.lower()  # --include replaces


def test_top_level_help_names_the_configuration_json_and_exit_codes() -> None:
    result = run_cli(["-h"])
    assert result.code == 0
    text = result.stdout
    assert "SCHEDCTL_DATABASE_URL" in text and "--json" in text
    for code in range(6):
        assert re.search(rf"^ +{code}  \S", text, re.M), text
    summaries = text.split("Commands:")[1].split("Exit codes:")[0]
    assert "..." not in summaries, summaries


def test_version() -> None:
    from schedctl import __version__

    result = run_cli(["--version"])
    assert (result.code, result.stdout) == (0, f"schedctl {__version__}\n")
    check_result(result)


# ------------------------------------------------------------------ tables


def test_a_long_domain_folds_at_dots_on_a_narrow_terminal(database_url: str, cli: Cli) -> None:
    make_org(cli, "Acme")
    domain = "assets.eu-west.static.marketing-department.example-company.co.uk"
    doc = make_scheduler(cli, domain)
    code, out = run_in_terminal(["list"], {"SCHEDCTL_DATABASE_URL": database_url}, 80)
    assert code == 0, out
    body = [line for line in _visible(out) if line.startswith("│")]
    pieces = [line.split("│")[1].strip() for line in body]
    pieces = [piece for piece in pieces if piece]
    assert len(pieces) > 1 and "".join(pieces) == domain
    assert all(piece.endswith(".") for piece in pieces[:-1]), pieces
    assert any(f" {doc['id'][:8]} " in line for line in body)


def test_plain_output_keeps_whole_ids(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    assert doc["id"] in cli("list").stdout
    org_list = cli("org", "list").stdout
    assert ok_json(cli("org", "list", "--json"))[0]["id"] in org_list


# ------------------------------------------------------------------ the embedded notice


def test_the_embedded_notice_is_once_per_terminal_session(tmp_path: Path) -> None:
    assert embedded.notice_due(tmp_path, terminal=True, session=101)
    assert not embedded.notice_due(tmp_path, terminal=True, session=101)
    assert not embedded.notice_due(tmp_path, terminal=True, session=101)
    assert embedded.notice_due(tmp_path, terminal=True, session=202)  # another terminal
    # Without a terminal (cron, a log) it is always said.
    assert embedded.notice_due(tmp_path, terminal=False, session=202)
    assert embedded.notice_due(tmp_path, terminal=False, session=202)
    # A data folder that cannot keep the marker: said every time.
    assert embedded.notice_due(tmp_path / "missing", terminal=True, session=101)
    assert embedded.notice_due(tmp_path / "missing", terminal=True, session=101)


def test_json_of_org_create_keeps_its_shape(cli: Cli) -> None:
    doc = ok_json(cli("org", "create", "Acme", "--json"))
    assert set(doc) == {"id", "name", "created_at", "schedulers"}
    assert uuid.UUID(doc["id"])


# ------------------------------------------------------------------ list under the monitor role


def test_list_with_its_last_run_runs_as_the_monitor_role(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    make_due(conn, doc["id"])
    ok_json(cli("tick", "--json"))
    ok_json(cli("run", "example.com", "--json"))
    suffix = uuid.uuid4().hex[:10]
    group, login = f"schedctl_monitor_{suffix}", f"schedctl_watch_{suffix}"
    grants = (Path(__file__).resolve().parents[1] / "contrib" / "grants.sql").read_text()
    # Roles are server-wide: this test's own names keep parallel runs apart.
    grants = grants.replace("schedctl_monitor", group).replace("schedctl_tick", f"t_{suffix}")
    conn.execute(grants)
    conn.execute(f"CREATE ROLE {login} LOGIN PASSWORD '{suffix}' IN ROLE {group}")
    try:
        params = conninfo_to_dict(database_url) | {"user": login, "password": suffix}
        url = as_uri(" ".join(f"{k}={v}" for k, v in params.items()))
        listed = ok_json(cli("list", "--json", env={"SCHEDCTL_DATABASE_URL": url}))
        assert listed[0]["last_run"]["status"] == "pending"
    finally:
        for role in (login, group, f"t_{suffix}"):
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
