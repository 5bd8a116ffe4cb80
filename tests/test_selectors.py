"""`pause` and `resume` with `--all` or `--match GLOB`: exactly the matching schedulers change,
in one transaction with one audit entry each; other organisations are left alone; a dry run
writes nothing; more than one scheduler needs --yes."""

from __future__ import annotations

from typing import Any

from tests.helpers import (
    Cli,
    Conn,
    assert_error,
    fingerprint,
    make_org,
    make_scheduler,
    ok_json,
    run_cli_subprocess,
)


def _world(cli: Cli) -> dict[str, Any]:
    acme, other = make_org(cli, "acme"), make_org(cli, "other")
    ids = {}
    for domain in ("a.example.com", "b.example.com", "example.com", "shop.example.org"):
        ids[("acme", domain)] = make_scheduler(cli, domain, "--org", acme)["id"]
    for domain in ("c.example.com", "d.example.org"):
        ids[("other", domain)] = make_scheduler(cli, domain, "--org", other)["id"]
    return {"acme": acme, "other": other, "ids": ids}


def _paused(conn: Conn) -> set[str]:
    rows = conn.execute("SELECT id::text FROM schedulers WHERE NOT is_enabled").fetchall()
    return {row[0] for row in rows}


def _audit(conn: Conn, action: str) -> list[tuple[str, str | None]]:
    rows = conn.execute(
        "SELECT scheduler_id::text, reason FROM schedctl.audit WHERE action = %s ORDER BY id",
        (action,),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def test_match_pauses_exactly_the_matching_schedulers_of_the_organisation(
    cli: Cli, conn: Conn
) -> None:
    world = _world(cli)
    ids = world["ids"]
    doc = ok_json(
        cli(
            "pause", "--match", "*.EXAMPLE.com", "--org", "acme", "--reason", "incident 7",
            "--yes", "--json",
        )
    )  # fmt: skip
    wanted = {ids[("acme", "a.example.com")], ids[("acme", "b.example.com")]}
    assert doc["dry_run"] is False
    assert {s["id"] for s in doc["schedulers"]} == wanted
    assert all(s["pause_reason"] == "incident 7" and not s["is_enabled"] for s in doc["schedulers"])
    assert _paused(conn) == wanted  # not example.com itself, nor the other organisation's
    audit = _audit(conn, "pause")
    assert sorted(audit) == sorted((i, "incident 7") for i in wanted)


def test_all_pauses_every_scheduler_of_the_organisation_until_a_time(cli: Cli, conn: Conn) -> None:
    world = _world(cli)
    ids = world["ids"]
    doc = ok_json(cli("pause", "--all", "--org", "acme", "--until", "2h", "--yes", "--json"))
    acme_ids = {i for (org, _), i in ids.items() if org == "acme"}
    assert {s["id"] for s in doc["schedulers"]} == acme_ids
    assert all(s["paused_until"] is not None for s in doc["schedulers"])
    assert _paused(conn) == acme_ids
    assert len(_audit(conn, "pause")) == 4
    # pausing them again the same way changes none, and writes no audit entry
    again = ok_json(cli("pause", "--all", "--org", "acme", "--yes", "--json", "--until", "2h"))
    assert len(again["schedulers"]) == 4  # a new --until is a change
    assert len(_audit(conn, "pause")) == 8


def test_all_orgs_reaches_every_organisation_and_resume_undoes_it(cli: Cli, conn: Conn) -> None:
    world = _world(cli)
    ids = world["ids"]
    ok_json(cli("pause", "--match", "*.org", "--all-orgs", "--yes", "--json"))
    wanted = {ids[("acme", "shop.example.org")], ids[("other", "d.example.org")]}
    assert _paused(conn) == wanted
    resumed = ok_json(cli("resume", "--all", "--all-orgs", "--yes", "--json"))
    assert {s["id"] for s in resumed["schedulers"]} == wanted  # only those that were paused
    assert _paused(conn) == set()
    assert sorted(i for i, _ in _audit(conn, "resume")) == sorted(wanted)


def test_dry_run_lists_what_would_change_and_writes_nothing(cli: Cli, conn: Conn) -> None:
    world = _world(cli)
    before = fingerprint(conn)
    result = cli("pause", "--all", "--org", "acme", "--dry-run")
    assert result.code == 0, result.stderr
    assert result.stdout.count("would pause") == 4
    doc = ok_json(cli("pause", "--match", "*.example.com", "--org", "acme", "--dry-run", "--json"))
    assert doc["dry_run"] is True and len(doc["schedulers"]) == 2
    assert fingerprint(conn) == before
    assert _paused(conn) == set() and _audit(conn, "pause") == []
    assert world["ids"]


def test_more_than_one_without_yes_and_without_a_terminal_is_exit_2(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    _world(cli)
    before = fingerprint(conn)
    # a real process, stdin not a terminal
    result = run_cli_subprocess(
        ["pause", "--all", "--org", "acme"], {"SCHEDCTL_DATABASE_URL": database_url}
    )
    message = assert_error(result, 2)
    assert "--yes" in message and "4 schedulers" in message
    assert fingerprint(conn) == before
    assert _audit(conn, "pause") == []


def test_one_match_needs_no_yes(cli: Cli, conn: Conn) -> None:
    world = _world(cli)
    result = cli("pause", "--match", "a.example.*", "--org", "acme")
    assert result.code == 0, result.stderr
    assert _paused(conn) == {world["ids"][("acme", "a.example.com")]}
    assert "paused a.example.com" in result.stdout


def test_wildcards_of_like_are_literal_in_a_glob(cli: Cli, conn: Conn) -> None:
    _world(cli)
    doc = ok_json(cli("pause", "--match", "%", "--org", "acme", "--yes", "--json"))
    assert doc["schedulers"] == [] and _paused(conn) == set()
    doc = ok_json(cli("pause", "--match", "_.example.com", "--org", "acme", "--json"))
    assert doc["schedulers"] == []


def test_selectors_are_refused_when_mixed_with_a_ref(cli: Cli) -> None:
    _world(cli)
    for args in (
        ("pause", "a.example.com", "--all", "--org", "acme"),
        ("pause", "--all", "--match", "*", "--org", "acme"),
        ("pause", "--org", "acme"),
        ("pause", "a.example.com", "--all-orgs"),
        ("pause", "a.example.com", "--org", "acme", "--dry-run"),
        ("resume", "--all", "--org", "acme", "--all-orgs"),
    ):
        assert_error(cli(*args), 2)
