"""The plans of a tick batch do not depend on fresh statistics: with running jobs inserted
after the jobs table's last ANALYZE (autovacuum off on it, as between two of its runs on a
busy host), no statement of a batch plans a nested loop whose inner side is the batch or the
active jobs. A plan test (the plans auto_explain shows), not a timing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.helpers import Conn, seed_due

# The batch's own sets: the claimed schedulers and what is derived from them, the active
# jobs, and the arrays a statement unnests.
BATCH_SETS = {"planned", "active", "decided", "cancelled", "to_serve", "made", "recorded"}
BATCH = 1000


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _batch_or_active(node: dict[str, Any]) -> str | None:
    """What makes a node's rows the batch or the active jobs, if anything."""
    if node["Node Type"] == "CTE Scan" and node.get("CTE Name") in BATCH_SETS:
        return f"CTE {node['CTE Name']}"
    if node["Node Type"] == "Function Scan" and node.get("Function Name") == "unnest":
        return "unnest"
    if node["Node Type"] in {"Seq Scan", "Bitmap Heap Scan"} and node.get("Relation Name") == (
        "jobs"
    ):
        return f"{node['Node Type']} on jobs"
    return None


def nested_loops_over_the_batch(plan: dict[str, Any]) -> list[str]:
    """Every nested loop whose inner side reads the batch or the active jobs."""
    found = []
    for node in _nodes(plan):
        if node["Node Type"] != "Nested Loop":
            continue
        (inner,) = [c for c in node["Plans"] if c.get("Parent Relationship") == "Inner"]
        for below in _nodes(inner):
            what = _batch_or_active(below)
            if what is not None:
                found.append(f"nested loop, inner side {what}")
    return found


@pytest.fixture
def stale_host(conn: Conn) -> dict[str, Any]:
    """A jobs table with years of finished jobs, analyzed; then, unknown to the statistics,
    two running jobs for each due scheduler's domain (half of them under `skip`, half under
    `replace`)."""
    seed_due(conn, BATCH)
    conn.execute("ALTER TABLE jobs SET (autovacuum_enabled = off)")
    conn.execute(
        """
        INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                          concurrency, find_links, max_pages, source_type)
        SELECT gen_random_uuid()::text, s.domain_id, s.organisation_id, 'completed', 1,
               now() - g * interval '1 hour', 5, TRUE, 0, 'dashboard'
        FROM schedulers s CROSS JOIN generate_series(1, 30) g
        """
    )
    conn.execute("ANALYZE jobs")
    conn.execute(
        """
        INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                          concurrency, find_links, max_pages, source_type)
        SELECT gen_random_uuid()::text, s.domain_id, s.organisation_id, 'running', 0.5,
               now(), 5, TRUE, 0, 'dashboard'
        FROM schedulers s CROSS JOIN generate_series(1, 2)
        """
    )
    conn.execute(
        """
        INSERT INTO schedctl.scheduler_settings (scheduler_id, overlap_policy)
        SELECT id, CASE WHEN row_number() OVER (ORDER BY id) % 2 = 0 THEN 'skip'
                        ELSE 'replace' END
        FROM schedulers
        ON CONFLICT (scheduler_id) DO UPDATE SET overlap_policy = EXCLUDED.overlap_policy
        """
    )
    return {}


def batch_plans(database_url: str, batch: int = BATCH) -> list[dict[str, Any]]:
    """The plan of every statement one batch runs (auto_explain, in this session only), the
    batch rolled back."""
    plans: list[dict[str, Any]] = []
    with psycopg.connect(database_url, autocommit=True) as session:

        def keep(notice: psycopg.errors.Diagnostic) -> None:
            message = notice.message_primary or ""
            if message.startswith("duration:"):
                plans.append(json.loads(message.partition("\n")[2]))

        session.add_notice_handler(keep)
        try:
            session.execute("LOAD 'auto_explain'")
        except psycopg.errors.UndefinedFile:
            pytest.skip("this server ships no auto_explain (the embedded one does not)")
        for setting, value in {
            "auto_explain.log_min_duration": "0",
            "auto_explain.log_nested_statements": "on",
            "auto_explain.log_format": "json",
            "auto_explain.log_level": "notice",
            "client_min_messages": "notice",
        }.items():
            session.execute("SELECT set_config(%s, %s, false)", [setting, value])
        with session.transaction(force_rollback=True):
            rows = session.execute(
                "SELECT * FROM schedctl.tick_batch(%s, '{}', NULL, 'tick', FALSE, NULL)", [batch]
            ).fetchall()
            assert len(rows) == batch
            assert {row[7] for row in rows} == {True, False}  # some skipped, some replaced
    return [plan["Plan"] for plan in plans if "Plan" in plan]


def _probes_the_active_jobs_index(plan: dict[str, Any]) -> bool:
    """Whether a nested loop looks up schedctl's index of active jobs once per outer row."""
    for node in _nodes(plan):
        if node["Node Type"] != "Nested Loop":
            continue
        (inner,) = [c for c in node["Plans"] if c.get("Parent Relationship") == "Inner"]
        if any(below.get("Index Name") == "schedctl_jobs_active_idx" for below in _nodes(inner)):
            return True
    return False


# A batch of 1,000 finds its active jobs in one pass over them all; one of 20, whose index of
# active jobs (2,000 running jobs) holds more than 20 for each of its schedulers, probes that
# index per key.
@pytest.mark.parametrize(
    ("batch", "probes"), [(BATCH, False), (20, True)], ids=["one pass", "index probes"]
)
def test_no_step_of_a_batch_nests_a_loop_over_the_batch_under_stale_statistics(
    stale_host: dict[str, Any], database_url: str, batch: int, probes: bool
) -> None:
    plans = batch_plans(database_url, batch)

    assert len(plans) >= 3, plans  # the claim, the step that makes the jobs, and more
    found = [loop for plan in plans for loop in nested_loops_over_the_batch(plan)]
    assert found == [], found
    assert any(_probes_the_active_jobs_index(plan) for plan in plans) == probes
