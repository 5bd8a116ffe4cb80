"""The overlap policy acts on the jobs of its own domain AND organisation, and on nothing
else: two organisations with schedulers of the same domain, due in the same tick batch (or one
of them run by hand), with and without the database's hooks. Each test here was checked to
fail on a realistic slip (a cancel or an "is a job active?" that joins on the domain alone, a
cancel hook called under `allow`) that the rest of the suite let through."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import (
    Cli,
    Conn,
    fetch_one,
    insert_active_job,
    make_due,
    make_org,
    make_scheduler,
    ok_json,
)

# A cancel-job hook that records each call and cancels the job as the host would.
RECORDING_CANCEL_HOOK = """
CREATE TABLE public.cancel_calls (job_id text NOT NULL);
CREATE FUNCTION public.record_cancel(job_id text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO public.cancel_calls VALUES ($1);
    UPDATE public.jobs SET status = 'cancelled', completed_at = now() WHERE id = $1;
$$;
"""
# A create-job hook that inserts the job as schedctl would (for `run` through both hooks).
CREATE_HOOK = """
CREATE FUNCTION public.plain_create(scheduler_id uuid, slot timestamptz) RETURNS text
LANGUAGE sql AS $$
    INSERT INTO public.jobs (id, domain_id, organisation_id, status, progress, created_at,
                             concurrency, find_links, max_pages, source_type, source_detail,
                             scheduler_id)
    SELECT gen_random_uuid()::text, s.domain_id, s.organisation_id, 'pending', 0, now(),
           s.concurrency, s.find_links, s.max_pages, 'scheduler', s.id::text, s.id
    FROM public.schedulers s WHERE s.id = $1
    RETURNING id;
$$;
"""


def _set_hooks(cli: Cli, conn: Conn, hooks: str) -> None:
    """No hook, a recording cancel-job hook, a create-job hook, or both."""
    options: list[str] = []
    if "cancel" in hooks:
        conn.execute(RECORDING_CANCEL_HOOK)
        options += ["--cancel-job", "public.record_cancel"]
    if "create" in hooks:
        conn.execute(CREATE_HOOK)
        options += ["--create-job", "public.plain_create"]
    if options:
        ok_json(cli("hooks", "set", *options, "--json"))


def _cancel_calls(conn: Conn) -> list[str]:
    if conn.execute("SELECT to_regclass('public.cancel_calls')").fetchone() == (None,):
        return []
    return [row[0] for row in conn.execute("SELECT job_id FROM public.cancel_calls ORDER BY 1")]


def _status(conn: Conn, job_id: str) -> str:
    (status,) = fetch_one(conn, "SELECT status FROM jobs WHERE id = %s", [job_id])
    value: str = status
    return value


def _two_organisations(cli: Cli, conn: Conn, policy_a: str, policy_b: str) -> dict[str, Any]:
    """Organisations A and B, each with a scheduler of shared.com under its policy, both due
    (so that one tick batch holds both)."""
    make_org(cli, "A")
    make_org(cli, "B")
    a = make_scheduler(cli, "shared.com", "--org", "A", "--overlap", policy_a)
    b = make_scheduler(cli, "shared.com", "--org", "B", "--overlap", policy_b)
    make_due(conn, a["id"])
    make_due(conn, b["id"])
    return {"a": a, "b": b}


HOOKS = ["none", "cancel", "create", "cancel and create"]


@pytest.fixture(params=["index probes", "one pass"])
def active_jobs_found_by(request: pytest.FixtureRequest, conn: Conn) -> str:
    """How a batch finds its active jobs: by a probe of schedctl's index of active jobs per
    domain and organisation (the index holds many more than 20 for each scheduler of the
    batch: here, running jobs of 3,000 domains of another organisation), or in one pass over
    the active jobs (no such index, as on a host's jobs table)."""
    if request.param == "one pass":
        conn.execute("DROP INDEX public.schedctl_jobs_active_idx")
    else:
        conn.execute(
            """
            WITH o AS (INSERT INTO organisations (name) VALUES ('Elsewhere') RETURNING id),
                 d AS (INSERT INTO domains (name)
                       SELECT 'elsewhere-' || g || '.com' FROM generate_series(1, 3000) g
                       RETURNING id)
            INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                              concurrency, find_links, max_pages, source_type)
            SELECT gen_random_uuid()::text, d.id, o.id, 'running', 0.5, now(), 5, TRUE, 0,
                   'dashboard'
            FROM o, d
            """
        )
    found_by: str = request.param
    return found_by


@pytest.mark.parametrize("hooks", HOOKS)
@pytest.mark.parametrize("policy_b", ["skip", "allow"])
def test_replace_in_one_organisation_never_cancels_another_organisations_job_in_the_batch(
    cli: Cli, conn: Conn, policy_b: str, hooks: str, active_jobs_found_by: str
) -> None:
    _set_hooks(cli, conn, hooks)
    world = _two_organisations(cli, conn, "replace", policy_b)
    a_active = insert_active_job(conn, world["a"]["id"])
    b_active = insert_active_job(conn, world["b"]["id"])

    summary = ok_json(cli("tick", "--json"))

    assert summary["due"] == 2
    assert _status(conn, b_active) == "running"  # B's job: B's policy keeps it
    assert _status(conn, a_active) == "cancelled"  # A's own job: replaced
    made = {job["scheduler_id"] for job in summary["jobs"]}
    assert world["a"]["id"] in made
    assert (world["b"]["id"] in made) == (policy_b == "allow")
    if "cancel" in hooks:
        assert _cancel_calls(conn) == [a_active]


def test_skip_in_one_organisation_ignores_another_organisations_active_job_in_the_batch(
    cli: Cli, conn: Conn, active_jobs_found_by: str
) -> None:
    world = _two_organisations(cli, conn, "skip", "allow")
    b_active = insert_active_job(conn, world["b"]["id"])

    summary = ok_json(cli("tick", "--json"))

    assert (summary["due"], summary["created"], summary["skipped"]) == (2, 2, 0)
    assert {job["scheduler_id"] for job in summary["jobs"]} == {
        world["a"]["id"],
        world["b"]["id"],
    }
    assert _status(conn, b_active) == "running"
    assert fetch_one(conn, "SELECT count(*) FROM schedctl.audit WHERE action = 'skip'") == (0,)


@pytest.mark.parametrize("hooks", ["cancel", "cancel and create"])
def test_allow_never_calls_the_cancel_hook_in_tick_or_run(cli: Cli, conn: Conn, hooks: str) -> None:
    _set_hooks(cli, conn, hooks)
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "allow.com", "--overlap", "allow")
    active = insert_active_job(conn, doc["id"])
    make_due(conn, doc["id"])

    summary = ok_json(cli("tick", "--json"))
    assert summary["created"] == 1
    job = ok_json(cli("run", doc["id"], "--json"))

    assert _status(conn, active) == "running"
    assert _status(conn, summary["jobs"][0]["job_id"]) == "pending"
    assert _status(conn, job["id"]) == "pending"
    assert _cancel_calls(conn) == []


@pytest.mark.parametrize("hooks", HOOKS)
def test_run_under_replace_cancels_only_its_own_organisations_job(
    cli: Cli, conn: Conn, hooks: str
) -> None:
    _set_hooks(cli, conn, hooks)
    make_org(cli, "A")
    other = make_org(cli, "B")
    doc = make_scheduler(cli, "shared.com", "--org", "A")
    own = insert_active_job(conn, doc["id"])
    others = insert_active_job(conn, doc["id"], org=other)  # B's job of the same domain

    job = ok_json(cli("run", doc["id"], "--org", "A", "--json"))

    assert _status(conn, others) == "running"
    assert _status(conn, own) == "cancelled"
    assert _status(conn, job["id"]) == "pending"
    if "cancel" in hooks:
        assert _cancel_calls(conn) == [own]
