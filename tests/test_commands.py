"""Scheduler operations through the command line, against real PostgreSQL."""

from __future__ import annotations

import io
import itertools
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.helpers import (
    JOB_KEYS,
    LIST_KEYS,
    SCHEDULER_KEYS,
    Cli,
    Conn,
    assert_error,
    db_now,
    fetch_one,
    make_due,
    make_org,
    make_scheduler,
    parse_time,
    run_cli_subprocess,
)
from tests.helpers import ok_json as _json
from tests.helpers import scheduler_row as _row

UTC = timezone.utc


def _insert_job(
    conn: Conn, scheduler: dict[str, Any], created_at: datetime, status: str = "completed"
) -> str:
    job_id = str(uuid.uuid4())
    conn.execute(
        """
        INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                          concurrency, find_links, max_pages, source_type, source_detail,
                          scheduler_id)
        SELECT %(id)s, s.domain_id, s.organisation_id, %(status)s, 1, %(created_at)s,
               s.concurrency, s.find_links, s.max_pages, 'scheduler', s.id::text, s.id
        FROM schedulers s WHERE s.id = %(sid)s
        """,
        {"id": job_id, "status": status, "created_at": created_at, "sid": scheduler["id"]},
    )
    return job_id


# ------------------------------------------------------------------ organisations


def test_org_create_and_list(cli: Cli, conn: Conn) -> None:
    created = cli("org", "create", "  Acme  ", "--json")
    doc = _json(created)
    assert doc["name"] == "Acme"
    assert uuid.UUID(doc["id"])
    assert conn.execute("SELECT name FROM organisations WHERE id = %s", [doc["id"]]).fetchone() == (
        "Acme",
    )
    plain = cli("org", "create", "Beta")
    assert plain.code == 0
    assert plain.stdout.startswith("created organisation Beta (")

    make_scheduler(cli, "example.com", "--org", "Acme")
    listed = _json(cli("org", "list", "--json"))
    assert [(o["name"], o["schedulers"]) for o in listed] == [("Acme", 1), ("Beta", 0)]
    assert listed[0]["id"] == doc["id"]


def test_org_list_is_an_empty_array_without_organisations(cli: Cli) -> None:
    result = cli("org", "list", "--json")
    assert result.code == 0
    assert result.stdout == "[]\n"


def _host_org(conn: Conn, name: str) -> str:
    """An organisation the host made itself (its names need not be unique)."""
    row = fetch_one(conn, "INSERT INTO organisations (name) VALUES (%s) RETURNING id", [name])
    return str(row[0])


# ------------------------------------------------------------------ create


def test_create_applies_the_defaults_of_the_spec(cli: Cli, conn: Conn) -> None:
    org_id = make_org(cli, "Acme")
    doc = make_scheduler(cli, "Example.com", "--every", "6h")
    assert set(doc) == SCHEDULER_KEYS
    assert doc["organisation_id"] == org_id
    assert doc["domain"] == "example.com"
    assert doc["schedule_interval_hours"] == 6
    assert doc["is_enabled"] is True
    assert doc["pause_reason"] is None
    assert doc["overlap_policy"] == "replace"
    assert doc["concurrency"] == 20
    assert doc["find_links"] is True
    assert doc["max_pages"] == 0
    assert doc["include_paths"] == []
    assert doc["exclude_paths"] == []
    assert doc["required_workers"] == 1
    # First run: now + interval, by the database clock (created_at is the same now()).
    assert parse_time(doc["next_run_at"]) - parse_time(doc["created_at"]) == timedelta(hours=6)
    assert doc["created_at"] == doc["updated_at"]

    row = _row(conn, doc["id"])
    assert row["include_paths"] is None
    assert row["exclude_paths"] is None
    assert row["next_run_at"] == parse_time(doc["next_run_at"])
    assert row["required_workers"] == 1
    domain = conn.execute("SELECT name FROM domains WHERE id = %s", [row["domain_id"]]).fetchone()
    assert domain == ("example.com",)


def test_create_with_every_option(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "https://www.Shop.Example.co.uk/",
        "--every",
        "12h",
        "--concurrency",
        "7",
        "--no-find-links",
        "--max-pages",
        "2147483647",
        "--include",
        "/blog",
        "--include",
        "/news",
        "--exclude",
        "/private",
        "--required-workers",
        "3",
        "--overlap",
        "skip",
        "--start-at",
        "2031-02-03T04:05:06",
        "--disabled",
    )
    assert doc["domain"] == "shop.example.co.uk"
    assert doc["schedule_interval_hours"] == 12
    assert doc["concurrency"] == 7
    assert doc["find_links"] is False
    assert doc["max_pages"] == 2147483647
    assert doc["include_paths"] == ["/blog", "/news"]
    assert doc["exclude_paths"] == ["/private"]
    assert doc["required_workers"] == 3
    assert doc["overlap_policy"] == "skip"
    assert doc["is_enabled"] is False
    assert doc["next_run_at"] == "2031-02-03T04:05:06Z"  # no offset: UTC

    row = _row(conn, doc["id"])
    assert isinstance(row["include_paths"], str)
    assert json.loads(row["include_paths"]) == ["/blog", "/news"]
    assert json.loads(row["exclude_paths"]) == ["/private"]
    assert row["find_links"] is False
    assert row["max_pages"] == 2147483647
    assert row["overlap_policy"] == "skip"
    assert row["next_run_at"] == datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)


EVERY_FORMS = {
    "6": 6,
    "12": 12,
    "24": 24,
    "48": 48,
    "6h": 6,
    "12h": 12,
    "24h": 24,
    "48h": 48,
    "1d": 24,
    "2d": 48,
    "6H": 6,
    " 2D ": 48,
}


def test_create_every_forms(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    seen = {}
    for n, every in enumerate(EVERY_FORMS):
        doc = make_scheduler(cli, f"site{n}.com", "--every", every)
        row = _row(conn, doc["id"])
        seen[every] = (
            doc["schedule_interval_hours"],
            row["schedule_interval_hours"],
            row["next_run_at"] - row["created_at"],
        )
    assert seen == {
        every: (hours, hours, timedelta(hours=hours)) for every, hours in EVERY_FORMS.items()
    }


def test_create_start_at_now_and_with_an_offset(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    now_doc = make_scheduler(cli, "example.com", "--start-at", "now")
    # `now` is the database's clock at the change, to the whole second: the grid starts there.
    created = parse_time(now_doc["created_at"])
    assert parse_time(now_doc["next_run_at"]) == created.replace(microsecond=0)
    assert "." not in now_doc["next_run_at"]
    offset_doc = make_scheduler(cli, "example.org", "--start-at", "2031-01-01T08:00:00+02:00")
    assert offset_doc["next_run_at"] == "2031-01-01T06:00:00Z"
    # A past time is due at the next tick.
    past = make_scheduler(cli, "example.net", "--start-at", "2020-01-01T00:00:00Z")
    due = _json(cli("list", "--due", "--json"))
    assert {d["id"] for d in due} == {now_doc["id"], past["id"]}


def test_create_plain_output_shows_the_fields(cli: Cli) -> None:
    make_org(cli, "Acme")
    result = cli("create", "bücher.de", "--every", "24h")
    assert result.code == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines() if " " in line)
    assert "xn--bcher-kva.de (bücher.de)" in result.stdout
    assert lines["every"].strip() == "24h"


# ------------------------------------------------------------------ list


def test_list_is_an_empty_array_when_there_are_no_schedulers(cli: Cli) -> None:
    make_org(cli, "Acme")
    result = cli("list", "--json")
    assert result.code == 0, result.stderr
    assert result.stdout == "[]\n"
    assert result.stderr == ""


def test_list_soonest_first_and_filters(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    later = make_scheduler(cli, "later.com", "--start-at", "2031-01-01T00:00:00Z")
    sooner = make_scheduler(cli, "sooner.com", "--start-at", "2030-01-01T00:00:00Z")
    paused = make_scheduler(cli, "paused.com", "--start-at", "2020-06-01T00:00:00Z", "--disabled")
    due = make_scheduler(cli, "due.com", "--start-at", "2020-01-01T00:00:00Z")

    listed = _json(cli("list", "--json"))
    assert [d["domain"] for d in listed] == ["due.com", "paused.com", "sooner.com", "later.com"]
    assert all(set(d) == LIST_KEYS for d in listed)

    enabled = _json(cli("list", "--enabled", "--json"))
    assert [d["id"] for d in enabled] == [due["id"], sooner["id"], later["id"]]
    disabled = _json(cli("list", "--disabled", "--json"))
    assert [d["id"] for d in disabled] == [paused["id"]]
    due_only = _json(cli("list", "--due", "--json"))
    assert [d["id"] for d in due_only] == [due["id"]]  # the paused one is past but not due

    # Due by the database clock: a scheduler whose time came is due without any tick.
    make_due(conn, sooner["id"], "1 second")
    assert [d["id"] for d in _json(cli("list", "--due", "--json"))] == [due["id"], sooner["id"]]


def test_list_shows_only_the_organisations_own(cli: Cli) -> None:
    make_org(cli, "Acme")
    make_org(cli, "Beta")
    mine = make_scheduler(cli, "example.com", "--org", "Acme")
    make_scheduler(cli, "example.org", "--org", "Beta")
    listed = _json(cli("list", "--org", "Acme", "--json"))
    assert [d["id"] for d in listed] == [mine["id"]]


def test_list_plain_output_is_tab_separated_with_full_ids(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    result = cli("list")
    assert result.code == 0
    header, line = result.stdout.splitlines()
    assert header.split("\t")[0] == "domain"
    assert line.split("\t")[0] == "example.com"
    assert header.split("\t")[5] == "id"
    assert line.split("\t")[5] == doc["id"]


# ------------------------------------------------------------------ show


def test_show_json_shape_next_runs_and_last_job(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", "12h", "--start-at", "2031-05-01T00:00Z")
    shown = _json(cli("show", doc["id"], "--json"))
    assert set(shown) == SCHEDULER_KEYS | {"next_runs", "next_runs_local", "last_job"}
    assert {k: shown[k] for k in SCHEDULER_KEYS} == doc
    assert shown["last_job"] is None
    assert shown["next_runs"] == [
        "2031-05-01T00:00:00Z",
        "2031-05-01T12:00:00Z",
        "2031-05-02T00:00:00Z",
        "2031-05-02T12:00:00Z",
        "2031-05-03T00:00:00Z",
    ]
    three = _json(cli("show", doc["id"], "--next", "3", "--json"))
    assert three["next_runs"] == shown["next_runs"][:3]

    older = _insert_job(conn, doc, datetime(2030, 1, 1, tzinfo=UTC))
    newest = _insert_job(conn, doc, datetime(2030, 1, 2, tzinfo=UTC), status="running")
    assert older != newest
    last = _json(cli("show", "example.com", "--json"))["last_job"]
    assert set(last) == JOB_KEYS
    assert last["id"] == newest
    assert last["status"] == "running"
    assert last["scheduler_id"] == doc["id"]
    assert last["domain"] == "example.com"
    assert last["created_at"] == "2030-01-02T00:00:00Z"


def test_show_next_runs_of_a_due_scheduler_start_with_the_pending_slot(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", "6h")
    slot = make_due(conn, doc["id"], "13 hours")
    runs = [parse_time(t) for t in _json(cli("show", doc["id"], "--json"))["next_runs"]]
    now = db_now(conn)
    assert runs[0] == slot  # one job at the next tick for the overdue slot
    assert runs[1] == slot + timedelta(hours=18)  # then the grid strictly after now
    assert runs[1] > now
    assert [b - a for a, b in itertools.pairwise(runs[1:])] == [timedelta(hours=6)] * 3


def test_show_plain_output(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--include", "/a")
    result = cli("show", "example.com")
    assert result.code == 0
    assert f"id                {doc['id']}" in result.stdout
    assert "last job          -" in result.stdout
    assert "include           /a" in result.stdout


# ------------------------------------------------------------------ update


UPDATE_CASES: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--concurrency", "100"), {"concurrency": 100}),
    (("--concurrency", "1"), {"concurrency": 1}),
    (("--no-find-links",), {"find_links": False}),
    (("--max-pages", "0"), {"max_pages": 0}),
    (("--max-pages", "500"), {"max_pages": 500}),
    (("--include", "/x", "--include", "/y"), {"include_paths": ["/x", "/y"]}),
    (("--exclude", "/z"), {"exclude_paths": ["/z"]}),
    (("--required-workers", "100"), {"required_workers": 100}),
    (("--overlap", "allow"), {"overlap_policy": "allow"}),
    (("--overlap", "replace"), {"overlap_policy": "replace"}),
    (("--disable",), {"is_enabled": False}),
    (("--start-at", "2032-01-01T00:00:00Z"), {"next_run_at": "2032-01-01T00:00:00Z"}),
]


def test_update_each_option(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    for n, (options, expected) in enumerate(UPDATE_CASES):
        domain = f"site{n}.com"
        created = make_scheduler(
            cli,
            domain,
            "--concurrency",
            "5",
            "--max-pages",
            "10",
            "--include",
            "/old",
            "--exclude",
            "/gone",
            "--required-workers",
            "2",
            "--overlap",
            "skip",
        )
        conn.execute(
            "UPDATE schedulers SET updated_at = now() - interval '1 hour' WHERE id = %s",
            [created["id"]],
        )
        before = _json(cli("show", created["id"], "--json"))
        after = _json(cli("update", domain, *options, "--json"))
        assert after.pop("changed") is True
        assert set(after) == SCHEDULER_KEYS
        changed = {k for k in SCHEDULER_KEYS if after[k] != before[k]}
        assert changed == set(expected) | {"updated_at"}, options
        assert {k: after[k] for k in expected} == expected, options
        assert parse_time(after["updated_at"]) > parse_time(before["updated_at"])
        row = _row(conn, created["id"])
        for key, value in expected.items():
            if key.endswith("_paths"):
                assert json.loads(row[key]) == value, options
            elif key == "next_run_at":
                assert row[key] == parse_time(value), options
            else:
                assert row[key] == value, options


def test_update_enable_clears_the_pause(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--disabled")
    conn.execute(
        "INSERT INTO schedctl.scheduler_settings (scheduler_id, pause_reason) VALUES (%s, %s)"
        " ON CONFLICT (scheduler_id) DO UPDATE SET pause_reason = EXCLUDED.pause_reason",
        [doc["id"], "maintenance"],
    )
    after = _json(cli("update", doc["id"], "--enable", "--json"))
    assert after["is_enabled"] is True
    assert after["pause_reason"] is None
    assert _row(conn, doc["id"])["is_enabled"] is True


def test_update_clear_include_and_exclude_store_null(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--include", "/a", "--exclude", "/b")
    after = _json(cli("update", doc["id"], "--clear-include", "--json"))
    assert after["include_paths"] == []
    assert after["exclude_paths"] == ["/b"]
    assert _row(conn, doc["id"])["include_paths"] is None
    after = _json(cli("update", doc["id"], "--clear-exclude", "--json"))
    assert after["exclude_paths"] == []
    row = _row(conn, doc["id"])
    assert (row["include_paths"], row["exclude_paths"]) == (None, None)


def test_update_include_with_clear_include_is_refused(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--include", "/a")
    result = cli("update", doc["id"], "--include", "/b", "--clear-include")
    assert_error(result, 2)
    assert json.loads(_row(conn, doc["id"])["include_paths"]) == ["/a"]


GRID_CASES = [
    # old, new, new hours, next run before, next run after
    ("6h", "24h", 24, "2031-01-01T00:00:00Z", "2031-01-01T18:00:00Z"),
    ("48h", "6h", 6, "2031-01-03T00:00:00Z", "2031-01-01T06:00:00Z"),
    ("12", "1d", 24, "2031-01-01T12:00:00Z", "2031-01-02T00:00:00Z"),
    ("24h", "24h", 24, "2031-01-01T00:00:00Z", "2031-01-01T00:00:00Z"),
]


def test_update_every_keeps_the_grid(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    for n, (old, new, hours, start, expected) in enumerate(GRID_CASES):
        doc = make_scheduler(cli, f"site{n}.com", "--every", old, "--start-at", start)
        after = _json(cli("update", doc["id"], "--every", new, "--json"))
        assert (after["schedule_interval_hours"], after["next_run_at"]) == (hours, expected)
        row = _row(conn, doc["id"])
        assert (row["schedule_interval_hours"], row["next_run_at"]) == (
            hours,
            parse_time(expected),
        )


def test_update_every_into_the_past_is_due_at_the_next_tick_on_the_new_grid(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--every", "48h")
    old_next = make_due(conn, doc["id"], "-30 hours")  # 30 h in the future
    # It has existed for days: the grid time before its next run (18 h ago) was its own.
    conn.execute(
        "UPDATE schedulers SET created_at = created_at - interval '3 days' WHERE id = %s",
        [doc["id"]],
    )
    after = _json(cli("update", doc["id"], "--every", "6h", "--json"))
    expected = old_next - timedelta(hours=48) + timedelta(hours=6)  # 12 h ago
    assert parse_time(after["next_run_at"]) == expected
    assert expected <= db_now(conn)
    assert [d["id"] for d in _json(cli("list", "--due", "--json"))] == [doc["id"]]

    before_tick = db_now(conn)
    summary = _json(cli("tick", "--json"))
    after_tick = db_now(conn)
    assert summary["created"] == 1
    entry = summary["jobs"][0]
    assert parse_time(entry["slot"]) == expected
    next_run = parse_time(entry["next_run_at"])
    step = timedelta(hours=6)
    assert (next_run - expected) % step == timedelta(0)  # on the new grid
    assert next_run > before_tick
    assert next_run - step <= after_tick
    assert summary["missed"] == (next_run - expected) // step - 1


def test_update_with_nothing_to_change_is_a_usage_error(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    before = _row(conn, doc["id"])
    message = assert_error(cli("update", doc["id"]), 2)
    assert "nothing to change" in message
    assert _row(conn, doc["id"]) == before
    assert_error(cli("update", doc["id"], "--json"), 2)


def test_update_writes_an_audit_entry(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--concurrency", "5")
    _json(cli("update", doc["id"], "--concurrency", "9", "--json"))
    rows = conn.execute(
        "SELECT action, changes FROM schedctl.audit WHERE scheduler_id = %s ORDER BY id",
        [doc["id"]],
    ).fetchall()
    assert [r[0] for r in rows] == ["create", "update"]
    assert rows[1][1]["concurrency"] == [5, 9]


# ------------------------------------------------------------------ delete


def test_delete_refuses_without_yes_when_stdin_is_not_a_terminal(
    cli: Cli, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    message = assert_error(cli("delete", doc["id"]), 2)
    assert "--yes" in message
    assert conn.execute("SELECT count(*) FROM schedulers").fetchone() == (1,)


def test_delete_refuses_in_a_real_process_without_a_terminal(
    cli: Cli, database_url: str, conn: Conn
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url}
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    result = run_cli_subprocess(["delete", "example.com"], env, stdin="y\n")
    assert_error(result, 2)
    assert conn.execute("SELECT count(*) FROM schedulers").fetchone() == (1,)


def test_delete_with_yes_keeps_the_jobs(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    other = make_scheduler(cli, "example.org")
    make_due(conn, doc["id"])
    summary = _json(cli("tick", "--json"))
    job_id = summary["jobs"][0]["job_id"]

    deleted = _json(cli("delete", "https://www.example.com/", "--yes", "--json"))
    assert deleted == {"id": doc["id"], "deleted": True}
    assert conn.execute("SELECT id::text FROM schedulers").fetchall() == [(other["id"],)]
    job = conn.execute(
        "SELECT scheduler_id, source_type, source_detail FROM jobs WHERE id = %s", [job_id]
    ).fetchone()
    assert job == (None, "scheduler", doc["id"])
    assert_error(cli("show", doc["id"]), 3)

    plain = cli("delete", other["id"], "-y")
    assert plain.code == 0
    assert plain.stdout == f"deleted scheduler {other['id']} (example.org); its jobs are kept\n"
    assert conn.execute("SELECT count(*) FROM schedulers").fetchone() == (0,)


def test_delete_of_an_unknown_scheduler_is_not_found(cli: Cli) -> None:
    make_org(cli, "Acme")
    assert_error(cli("delete", "nothere.com", "--yes"), 3)


# ------------------------------------------------------------------ history


def test_history_newest_first_with_limit_and_offset(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    other = make_scheduler(cli, "example.org")
    _insert_job(conn, other, datetime(2030, 1, 9, tzinfo=UTC))
    base = datetime(2030, 1, 1, tzinfo=UTC)
    ids = [_insert_job(conn, doc, base + timedelta(days=n)) for n in range(5)]

    assert _json(cli("history", "example.org", "--json")) != []
    jobs = _json(cli("history", doc["id"], "--json"))
    assert [j["id"] for j in jobs] == ids[::-1]
    assert all(set(j) == JOB_KEYS for j in jobs)
    assert jobs[0]["created_at"] == "2030-01-05T00:00:00Z"
    assert jobs[0]["status"] == "completed"

    page = _json(cli("history", "example.com", "--limit", "2", "--offset", "1", "--json"))
    assert [j["id"] for j in page] == [ids[3], ids[2]]
    assert _json(cli("history", doc["id"], "--offset", "5", "--json")) == []
    assert len(_json(cli("history", doc["id"], "--limit", "1000", "--json"))) == 5
    assert len(_json(cli("history", doc["id"], "--limit", "1", "--json"))) == 1


def test_history_is_an_empty_array_without_jobs(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    result = cli("history", doc["id"], "--json")
    assert result.code == 0
    assert result.stdout == "[]\n"


def test_history_out_of_range_is_a_usage_error(cli: Cli) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    for options in (
        ("--limit", "0"),
        ("--limit", "1001"),
        ("--limit", "-1"),
        ("--offset", "-1"),
        ("--limit", "99999999999"),
        ("--offset", "99999999999"),
        ("--limit", "ten"),
    ):
        message = assert_error(cli("history", "example.com", *options, "--json"), 2)
        assert options[0] in message


# ------------------------------------------------------------------ REF and --org


def test_ref_by_domain_in_any_spelling(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    spellings = [
        "example.com",
        "EXAMPLE.COM",
        "https://WWW.Example.com/",
        "http://example.com.",
        " example.com ",
    ]
    found = {ref: _json(cli("show", ref, "--json"))["id"] for ref in spellings}
    assert found == dict.fromkeys(spellings, doc["id"])


def test_ref_by_id_in_upper_case(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    assert _json(cli("show", doc["id"].upper(), "--json"))["id"] == doc["id"]


def test_ref_by_unicode_domain(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "bücher.de")
    assert doc["domain"] == "xn--bcher-kva.de"
    assert _json(cli("show", "BÜCHER.de", "--json"))["id"] == doc["id"]


def test_org_by_id_by_name_and_by_environment(cli: Cli) -> None:
    acme = make_org(cli, "Acme")
    beta = make_org(cli, "Beta")
    by_id = make_scheduler(cli, "example.com", "--org", acme)
    by_name = make_scheduler(cli, "example.org", "--org", "Beta")
    assert by_id["organisation_id"] == acme
    assert by_name["organisation_id"] == beta

    assert [d["id"] for d in _json(cli("list", "--json", env={"SCHEDCTL_ORG": "Acme"}))] == [
        by_id["id"]
    ]
    assert [d["id"] for d in _json(cli("list", "--json", env={"SCHEDCTL_ORG": beta}))] == [
        by_name["id"]
    ]
    # --org wins over SCHEDCTL_ORG (still set to Beta's id here).
    assert [d["id"] for d in _json(cli("list", "--org", "Acme", "--json"))] == [by_id["id"]]


def test_exactly_one_organisation_is_the_default(cli: Cli) -> None:
    acme = make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    assert doc["organisation_id"] == acme
    assert [d["id"] for d in _json(cli("list", "--json"))] == [doc["id"]]


def test_several_organisations_and_none_chosen_is_a_usage_error(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_org(cli, "Beta")
    message = assert_error(cli("create", "example.com", "--every", "6h"), 2)
    assert "--org" in message
    assert "SCHEDCTL_ORG" in message
    assert_error(cli("list", "--json"), 2)
    assert conn.execute("SELECT count(*) FROM schedulers").fetchone() == (0,)


def test_ambiguous_organisation_name_is_a_usage_error_and_the_id_resolves_it(
    cli: Cli, conn: Conn
) -> None:
    first = _host_org(conn, "Twin")
    _host_org(conn, "Twin")
    message = assert_error(cli("list", "--org", "Twin"), 2)
    assert "--org" in message
    assert_error(cli("list", env={"SCHEDCTL_ORG": "Twin"}), 2)
    assert _json(cli("list", "--org", first, "--json")) == []


@pytest.mark.parametrize("org", ["Nobody", "00000000-0000-0000-0000-000000000000"])
def test_unknown_organisation_is_not_found(cli: Cli, conn: Conn, org: str) -> None:
    make_org(cli, "Acme")
    assert_error(cli("list", "--org", org), 3)
    assert_error(cli("create", "example.com", "--every", "6h", "--org", org), 3)
    assert_error(cli("list", env={"SCHEDCTL_ORG": org}), 3)
    assert conn.execute("SELECT count(*) FROM schedulers").fetchone() == (0,)


def test_no_organisation_at_all_says_how_to_create_one(cli: Cli) -> None:
    message = assert_error(cli("list"), 3)
    assert "schedctl org create" in message


# ------------------------------------------------------------------ the server's time zone


def test_a_server_time_zone_with_daylight_saving_changes_nothing(cli: Cli, conn: Conn) -> None:
    # Europe/Berlin moves its clocks at 01:00 UTC on 2031-03-30; every time must still be
    # exactly N hours apart, as the grid is absolute.
    dbname = conn.info.dbname
    conn.execute(f"ALTER DATABASE {dbname} SET timezone TO 'Europe/Berlin'")
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com", "--start-at", "2031-03-30T00:00:00Z")
    shown = _json(cli("show", doc["id"], "--next", "3", "--json"))
    assert shown["next_runs"] == [
        "2031-03-30T00:00:00Z",
        "2031-03-30T06:00:00Z",
        "2031-03-30T12:00:00Z",
    ]
    after = _json(cli("update", doc["id"], "--every", "24h", "--json"))
    assert after["next_run_at"] == "2031-03-30T18:00:00Z"
