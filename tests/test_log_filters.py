"""`log --since/--until/--action/--actor/--source` and `history` without a REF (`--since`,
`--status`, `--all-orgs`): the filters return exactly the matching entries."""

from __future__ import annotations

from typing import Any

from tests.helpers import Cli, Conn, assert_error, make_due, make_org, make_scheduler, ok_json


def _entries(cli: Cli, *args: str) -> list[dict[str, Any]]:
    doc: list[dict[str, Any]] = ok_json(cli("log", "--json", "--limit", "1000", *args))
    return doc


def _keys(entries: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    return [(e["action"], e["domain"], e["source"]) for e in entries]


def test_filters_return_exactly_the_matching_entries(cli: Cli, conn: Conn) -> None:
    acme, other = make_org(cli, "acme"), make_org(cli, "other")
    make_scheduler(cli, "a.com", "--org", acme)
    make_scheduler(cli, "b.com", "--org", acme)
    make_scheduler(cli, "c.com", "--org", other)
    assert cli("pause", "a.com", "--org", acme, "--reason", "x").code == 0
    assert cli("pause", "b.com", "--org", acme, env={"SCHEDCTL_ACTOR": "alice"}).code == 0
    apply = "schedulers:\n  - domain: d.com\n    every: 6h\n"
    (path := __import__("pathlib").Path("s.yaml")).write_text(apply)
    assert cli("apply", "-f", str(path), "--org", acme, env={"SCHEDCTL_ACTOR": "bob"}).code == 0
    # An entry an hour old, and one a tick wrote (a pause that ran out).
    conn.execute("ALTER TABLE schedctl.audit DISABLE TRIGGER audit_append_only")
    conn.execute(
        "INSERT INTO schedctl.audit (at, actor, action, scheduler_id, organisation_id, domain, "
        "reason) SELECT now() - interval '1 hour', 'tick', 'resume', id, organisation_id, "
        "'a.com', 'paused until 2030-01-01T00:00:00Z' FROM schedulers WHERE organisation_id = %s "
        "LIMIT 1",
        (acme,),
    )
    conn.execute("ALTER TABLE schedctl.audit ENABLE TRIGGER audit_append_only")

    everything = _entries(cli, "--org", acme)
    # org_create, create a, create b, pause a, pause b, apply d, tick resume
    assert len(everything) == 7
    assert _keys(_entries(cli, "--org", acme, "--action", "pause")) == [
        ("pause", "b.com", "cli"),
        ("pause", "a.com", "cli"),
    ]
    assert _keys(_entries(cli, "--org", acme, "--action", "pause", "--action", "resume")) == [
        ("pause", "b.com", "cli"),
        ("pause", "a.com", "cli"),
        ("resume", "a.com", "tick"),
    ]
    assert _keys(_entries(cli, "--org", acme, "--actor", "alice")) == [("pause", "b.com", "cli")]
    assert _keys(_entries(cli, "--org", acme, "--source", "apply")) == [
        ("create", "d.com", "apply")
    ]
    assert _keys(_entries(cli, "--org", acme, "--source", "tick")) == [("resume", "a.com", "tick")]
    assert len(_entries(cli, "--org", acme, "--source", "cli")) == 5
    recent = _entries(cli, "--org", acme, "--since", "30m")
    assert len(recent) == 6 and ("resume", "a.com", "tick") not in _keys(recent)
    assert _keys(_entries(cli, "--org", acme, "--until", "30m")) == [("resume", "a.com", "tick")]
    assert _entries(cli, "--org", acme, "--since", "2099-01-01T00:00:00Z") == []
    assert len(_entries(cli, "--org", acme, "--until", "2099-01-01")) == 7
    # another organisation's entries are not among them
    assert _keys(_entries(cli, "--org", other)) == [
        ("create", "c.com", "cli"),
        ("org_create", None, "cli"),
    ]


def test_source_is_a_column_of_the_table(cli: Cli) -> None:
    make_org(cli, "acme")
    make_scheduler(cli, "a.com")
    result = cli("log")
    assert result.code == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split("\t")[-1] == "source"
    assert row.split("\t")[-1] == "cli"


def test_bad_filters_are_exit_2(cli: Cli) -> None:
    make_org(cli, "acme")
    assert_error(cli("log", "--action", "explode"), 2)
    assert_error(cli("log", "--source", "cron"), 2)
    assert_error(cli("log", "--since", "yesterday"), 2)
    for option in ("--since", "--until"):  # a time that is no date names its own option
        assert assert_error(cli("log", option, "2025-13-01"), 2).startswith(f"{option} must ")
    assert_error(cli("history", "--status", "exploded"), 2)
    assert_error(cli("history", "a.com", "--status", "failed"), 2)


def _tick(cli: Cli) -> None:
    result = cli("tick", "--json")
    assert result.code == 0, result.stderr


def test_history_without_ref_lists_the_jobs_schedctl_made_newest_first(
    cli: Cli, conn: Conn
) -> None:
    acme, other = make_org(cli, "acme"), make_org(cli, "other")
    a = make_scheduler(cli, "a.com", "--org", acme)
    b = make_scheduler(cli, "b.com", "--org", acme)
    c = make_scheduler(cli, "c.com", "--org", other)
    for scheduler in (a, b, c):
        make_due(conn, scheduler["id"])
    _tick(cli)
    run = ok_json(cli("run", "b.com", "--org", acme, "--json"))  # replaces b's scheduled job
    # A job the host made itself, linked to a.com's scheduler: not schedctl's.
    conn.execute(
        "INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at, "
        "concurrency, find_links, max_pages, source_type, scheduler_id) "
        "SELECT 'host-job', domain_id, organisation_id, 'pending', 0, now(), 1, true, 0, "
        "'manual', id FROM schedulers WHERE id = %s",
        (a["id"],),
    )
    # An old failed job of a.com's.
    conn.execute(
        "UPDATE jobs SET status = 'failed', created_at = now() - interval '2 days' "
        "WHERE scheduler_id = %s AND id <> 'host-job'",
        (a["id"],),
    )
    jobs = ok_json(cli("history", "--org", acme, "--json"))
    assert [j["domain"] for j in jobs] == ["b.com", "b.com", "a.com"]
    assert jobs[0]["id"] == run["id"] and jobs[0]["trigger"] == "manual"
    assert [j["status"] for j in jobs] == ["pending", "cancelled", "failed"]
    assert "host-job" not in {j["id"] for j in jobs}
    assert [
        j["domain"] for j in ok_json(cli("history", "--org", acme, "--since", "1d", "--json"))
    ] == [
        "b.com",
        "b.com",
    ]
    failed = ok_json(cli("history", "--org", acme, "--status", "failed", "--json"))
    assert [j["domain"] for j in failed] == ["a.com"]
    everyone = ok_json(cli("history", "--all-orgs", "--json"))
    assert sorted(j["domain"] for j in everyone) == ["a.com", "b.com", "b.com", "c.com"]
    page = ok_json(cli("history", "--org", acme, "--limit", "1", "--offset", "1", "--json"))
    assert [j["status"] for j in page] == ["cancelled"]
    table = cli("history", "--org", acme)
    assert table.code == 0, table.stderr
    assert table.stdout.splitlines()[0].split("\t")[0] == "domain"
