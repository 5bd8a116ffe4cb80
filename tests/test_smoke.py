"""The seed plan's integration test: create a scheduler, it becomes due, tick, a job exists."""

from __future__ import annotations

import json

from tests.helpers import Cli, Conn


def test_scheduler_becomes_due_and_tick_makes_its_job(cli: Cli, conn: Conn) -> None:
    assert cli("org", "create", "Acme").code == 0
    created = cli("create", "example.com", "--every", "6h", "--json")
    assert created.code == 0, created.stderr
    scheduler = json.loads(created.stdout)
    conn.execute(
        "UPDATE schedulers SET next_run_at = now() - interval '1 minute' WHERE id = %s",
        [scheduler["id"]],
    )
    ticked = cli("tick", "--json")
    assert ticked.code == 0, ticked.stderr
    summary = json.loads(ticked.stdout)
    assert (summary["due"], summary["created"]) == (1, 1)
    job_id = summary["jobs"][0]["job_id"]
    row = conn.execute(
        "SELECT scheduler_id::text, status, source_type, source_detail FROM jobs WHERE id = %s",
        [job_id],
    ).fetchone()
    assert row == (scheduler["id"], "pending", "scheduler", scheduler["id"])
