"""The guarantees behind `tick`, each checked where it is enforced: the database refuses a
second job for one slot; the overlap policies look at the scheduler's own organisation
only; `tick --json` prints one line of JSON; a job is reported only once it is committed;
a killed tick keeps the batches it committed and the next tick serves the rest; and a slot
is due from the very microsecond it names."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg import errors as pgerrors

from schedctl import db, tick
from schedctl.config import Settings
from tests.helpers import Result, cli_env, make_due, make_org, make_scheduler, run_cli_subprocess

Cli = Callable[..., Result]
Conn = psycopg.Connection[tuple[Any, ...]]

TICK_KEYS = {"due", "created", "skipped", "failed", "missed", "resumed", "jobs", "errors"}
MICRO = timedelta(microseconds=1)
# One batch of schedctl.tick_batch by the database clock, as tick sends it.
BATCH: dict[str, Any] = {
    "batch": 10,
    "exclude": [],
    "now": None,
    "actor": "tick",
    "dry_run": False,
    "lock_timeout": None,
}
TICK_BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = 'schedctl'"
)


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """schedctl's settings for this test's database (for tick.run in this process)."""
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", database_url)
    return Settings()


@pytest.fixture
def tick_conn(settings: Settings) -> Iterator[db.Connection]:
    """A connection as `schedctl tick` opens it."""
    with db.connect(settings) as connection:
        yield connection


def _row(conn: Conn, query: str, *params: Any) -> tuple[Any, ...]:
    row = conn.execute(query, list(params)).fetchone()
    assert row is not None, query
    return row


def _job_row(conn: Conn, job_id: str) -> tuple[Any, ...]:
    """Every column of one job, to tell whether anything in it changed."""
    return _row(conn, "SELECT j.* FROM jobs j WHERE j.id = %s", job_id)


def _host_job(conn: Conn, scheduler_id: str, status: str, org: str | None = None) -> str:
    """A job the host made itself for the scheduler's domain, in the scheduler's
    organisation or in `org`."""
    (job_id,) = _row(
        conn,
        """
        INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                          started_at, concurrency, find_links, max_pages, source_type)
        SELECT gen_random_uuid()::text, domain_id, COALESCE(%s::uuid, organisation_id), %s,
               0.5, now() - interval '1 hour', now() - interval '1 hour', 5, TRUE, 0,
               'dashboard'
        FROM schedulers WHERE id = %s
        RETURNING id
        """,
        org,
        status,
        scheduler_id,
    )
    return str(job_id)


def _json(result: Result, code: int = 0) -> Any:
    assert result.code == code, (result.code, result.stdout, result.stderr)
    return json.loads(result.stdout)


# ------------------------------------------------------------ 1. the database refuses


def test_the_database_itself_refuses_a_second_job_for_one_slot(
    cli: Cli, conn: Conn, tick_conn: db.Connection
) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")  # overlap replace, the default
    slot = make_due(conn, doc["id"])
    first = _json(cli("tick", "--json"))
    assert first["created"] == 1
    served_job = first["jobs"][0]["job_id"]
    assert _row(
        conn,
        "SELECT job_id FROM schedctl.served_slots WHERE scheduler_id = %s AND slot = %s",
        doc["id"],
        slot,
    ) == (served_job,)

    # A second row for the same (scheduler, slot), from any session, is refused by the
    # table's key, whatever tick itself checks first.
    with pytest.raises(pgerrors.UniqueViolation) as refused:
        conn.execute(
            "INSERT INTO schedctl.served_slots (scheduler_id, slot, job_id) VALUES (%s, %s, %s)",
            [doc["id"], slot, str(uuid.uuid4())],
        )
    assert refused.value.diag.schema_name == "schedctl"
    assert refused.value.diag.table_name == "served_slots"
    # The key is the pair: another slot of the scheduler, or the same instant of another
    # scheduler, is accepted (then rolled back).
    other = make_scheduler(cli, "other.com")
    with conn.transaction(force_rollback=True):
        conn.execute(
            "INSERT INTO schedctl.served_slots (scheduler_id, slot, job_id)"
            " VALUES (%s, %s, 'x'), (%s, %s, 'y')",
            [doc["id"], slot + MICRO, other["id"], slot],
        )

    # An operator sets the schedule back onto the served slot, and the host has started a
    # job of its own for the domain meanwhile.
    host_job = _host_job(conn, doc["id"], "running")
    conn.execute("UPDATE schedulers SET next_run_at = %s WHERE id = %s", [slot, doc["id"]])
    jobs_before = {job_id: _job_row(conn, job_id) for job_id in (served_job, host_job)}
    slots_before = conn.execute("SELECT * FROM schedctl.served_slots").fetchall()

    # The batch function itself, over the due scheduler, in one committed statement.
    outcomes = db.fetch_tuples(tick_conn, "tick_batch", **BATCH)
    ((scheduler_id, job_id, _org, _domain, out_slot, next_run_at, missed, skip, error),) = outcomes
    assert error is None
    assert (str(scheduler_id), job_id, out_slot, missed, skip) == (doc["id"], None, slot, 0, True)

    # No job made, nothing cancelled (replace has nothing to replace for a served slot),
    # the slot's row untouched; the schedule moved on past now.
    assert {job_id: _job_row(conn, job_id) for job_id in jobs_before} == jobs_before
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (2,)
    assert conn.execute("SELECT * FROM schedctl.served_slots").fetchall() == slots_before
    (now,) = _row(conn, "SELECT now()")
    assert _row(conn, "SELECT next_run_at FROM schedulers WHERE id = %s", doc["id"]) == (
        next_run_at,
    )
    assert slot < next_run_at and next_run_at > now


# ------------------------------------------------------------ 2. another organisation


def _two_orgs_and_a_foreign_job(cli: Cli, conn: Conn, policy: str) -> tuple[dict[str, Any], str]:
    """Acme's scheduler for example.com under `policy`, and an active job of example.com
    that belongs to another organisation (which schedules the domain too)."""
    acme = make_org(cli, "Acme")
    other = make_org(cli, "Other")
    doc = make_scheduler(cli, "example.com", "--org", acme, "--overlap", policy)
    theirs = make_scheduler(cli, "example.com", "--org", other)
    foreign = _host_job(conn, theirs["id"], "running")
    return doc, foreign


def test_run_under_replace_leaves_another_organisations_active_job_running(
    cli: Cli, conn: Conn
) -> None:
    doc, foreign = _two_orgs_and_a_foreign_job(cli, conn, "replace")
    before = _job_row(conn, foreign)
    own = _host_job(conn, doc["id"], "running")  # Acme's own active job is replaced

    job = _json(cli("run", "example.com", "--org", "Acme", "--json"))

    assert (job["scheduler_id"], job["status"]) == (doc["id"], "pending")
    assert _job_row(conn, foreign) == before
    assert _row(conn, "SELECT status FROM jobs WHERE id = %s", own) == ("cancelled",)


@pytest.mark.parametrize("command", ["run", "tick"])
def test_skip_is_not_blocked_by_another_organisations_active_job(
    cli: Cli, conn: Conn, command: str
) -> None:
    doc, foreign = _two_orgs_and_a_foreign_job(cli, conn, "skip")
    before = _job_row(conn, foreign)
    make_due(conn, doc["id"])

    if command == "run":
        job = _json(cli("run", "example.com", "--org", "Acme", "--json"))
        made = [job["id"]]
    else:
        summary = _json(cli("tick", "--json"))
        assert (summary["due"], summary["created"], summary["skipped"]) == (1, 1, 0)
        made = [entry["job_id"] for entry in summary["jobs"]]

    assert _job_row(conn, foreign) == before
    rows = conn.execute(
        "SELECT id, scheduler_id::text, organisation_id::text, status FROM jobs WHERE id <> %s",
        [foreign],
    ).fetchall()
    assert rows == [(made[0], doc["id"], doc["organisation_id"], "pending")]
    # No skip was recorded for Acme's scheduler.
    assert conn.execute("SELECT count(*) FROM schedctl.audit WHERE action = 'skip'").fetchone() == (
        0,
    )


# ------------------------------------------------------------ 3. one line of JSON


def _one_json_line(result: Result, code: int = 0) -> dict[str, Any]:
    """stdout is exactly one line holding one JSON object with tick's keys, and nothing
    else; the counts add up."""
    assert result.code == code, (result.code, result.stdout, result.stderr)
    assert result.stdout.endswith("\n"), repr(result.stdout)
    assert result.stdout.count("\n") == 1, repr(result.stdout)
    assert "\r" not in result.stdout
    summary = json.loads(result.stdout)
    assert isinstance(summary, dict)
    assert set(summary) == TICK_KEYS
    assert summary["due"] == summary["created"] + summary["skipped"] + summary["failed"]
    for entry in summary["jobs"]:
        uuid.UUID(entry["scheduler_id"])  # not cut short by any wrapping
        if entry["job_id"] is not None:
            uuid.UUID(entry["job_id"])
    return summary


def test_tick_json_prints_exactly_one_line_of_json_as_a_real_process(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url, "COLUMNS": "40"}
    make_org(cli, "Acme")
    make_org(cli, "Other")
    domains = [f"a-rather-long-domain-name-{n}.com" for n in range(4)]
    docs = [
        make_scheduler(cli, domain, "--org", "Acme" if n % 2 else "Other")
        for n, domain in enumerate(domains)
    ]
    for doc in docs:
        make_due(conn, doc["id"], "7 hours")

    dry = _one_json_line(run_cli_subprocess(["tick", "--json", "--dry-run"], env))
    assert (dry["due"], dry["created"], dry["missed"]) == (4, 4, 4)
    assert [entry["job_id"] for entry in dry["jobs"]] == [None] * 4
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)

    # One of them is refused by a host rule: tick exits 1 and still prints its summary
    # (a dry run too, as the real pass would).
    (refused_domain,) = _row(conn, "SELECT domain_id FROM schedulers WHERE id = %s", docs[3]["id"])
    conn.execute(
        f"ALTER TABLE jobs ADD CONSTRAINT host_rule CHECK (domain_id <> {int(refused_domain)})"
    )
    for args in (["tick", "--json", "--dry-run"], ["tick", "--json"]):
        failing = _one_json_line(run_cli_subprocess(args, env), code=1)
        assert (failing["due"], failing["created"], failing["failed"]) == (4, 3, 1)
        assert (len(failing["jobs"]), len(failing["errors"])) == (3, 1)
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (3,)

    conn.execute("ALTER TABLE jobs DROP CONSTRAINT host_rule")
    last = _one_json_line(run_cli_subprocess(["tick", "--json"], env))
    assert (last["due"], last["created"]) == (1, 1)

    # Nothing is due.
    for args in (["tick", "--json"], ["tick", "--json", "--dry-run"]):
        idle = _one_json_line(run_cli_subprocess(args, env))
        assert idle == {
            "due": 0,
            "created": 0,
            "skipped": 0,
            "failed": 0,
            "missed": 0,
            "resumed": 0,
            "jobs": [],
            "errors": [],
        }


# ------------------------------------------------------------ 4. reported once committed


def _seed_due(conn: Conn, count: int, orgs: int = 5) -> None:
    """`count` due schedulers over `orgs` organisations, set-based, slots from a minute
    ago backwards one second apart (the next grid time hours away), policy replace."""
    conn.execute(
        """
        WITH new_orgs AS (
            INSERT INTO organisations (name)
            SELECT 'Org ' || g FROM generate_series(1, %(orgs)s) g
            RETURNING id
        ),
        orgs AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM new_orgs),
        new_domains AS (
            INSERT INTO domains (name)
            SELECT 'guarantee-' || g || '.com' FROM generate_series(1, %(n)s) g
            RETURNING id
        ),
        doms AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM new_domains)
        INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours,
                                next_run_at)
        SELECT doms.id, orgs.id, (ARRAY[6, 12, 24, 48])[1 + doms.k %% 4],
               now() - interval '1 minute' - doms.k * interval '1 second'
        FROM doms JOIN orgs ON orgs.k = doms.k %% %(orgs)s
        """,
        {"n": count, "orgs": orgs},
    )


def _due_slots(conn: Conn) -> set[tuple[str, datetime]]:
    return {
        (str(sid), slot)
        for sid, slot in conn.execute(
            "SELECT id, next_run_at FROM schedulers WHERE is_enabled AND next_run_at <= now()"
        )
    }


@pytest.mark.parametrize("connections", [1, 2])
def test_every_job_a_tick_reports_was_already_committed(
    conn: Conn, database_url: str, settings: Settings, connections: int
) -> None:
    total = 10
    _seed_due(conn, total)
    due = _due_slots(conn)
    failures: list[str] = []
    reported: list[dict[str, Any]] = []
    visible_at_report: list[int] = []

    with psycopg.connect(database_url, autocommit=True) as observer:

        def on_job(entry: dict[str, Any]) -> None:
            """Look from another session: what is reported must already be there."""
            reported.append(entry)
            job_id, scheduler_id = entry["job_id"], str(entry["scheduler_id"])
            job = observer.execute(
                "SELECT scheduler_id::text, status FROM jobs WHERE id = %s", [job_id]
            ).fetchone()
            if job != (scheduler_id, "pending"):
                failures.append(f"job {job_id} of {scheduler_id}: {job}")
            slot = observer.execute(
                "SELECT job_id FROM schedctl.served_slots WHERE scheduler_id = %s AND slot = %s",
                [scheduler_id, entry["slot"]],
            ).fetchone()
            if slot != (job_id,):
                failures.append(f"slot {entry['slot']} of {scheduler_id}: {slot}")
            moved = observer.execute(
                "SELECT next_run_at FROM schedulers WHERE id = %s", [scheduler_id]
            ).fetchone()
            if moved != (entry["next_run_at"],):
                failures.append(f"next_run_at of {scheduler_id}: {moved}")
            (count,) = observer.execute("SELECT count(*) FROM jobs").fetchone() or (None,)
            visible_at_report.append(count)

        opened: list[int] = []

        def connect() -> AbstractContextManager[db.Connection]:
            opened.append(1)
            return db.connect(settings)

        with db.connect(settings) as tick_conn:
            summary = tick.run(
                tick_conn,
                on_job=on_job,
                batch_size=2,
                max_batch_size=2,
                connect=connect if connections == 2 else None,
            )

    assert failures == []
    assert len(opened) == connections - 1  # the second worker did start
    assert (summary.due, summary.created, summary.failed) == (total, total, 0)
    assert len(reported) == total  # called once for every job made
    assert {(str(e["scheduler_id"]), e["slot"]) for e in reported} == due
    made = {job_id for (job_id,) in conn.execute("SELECT id FROM jobs")}
    assert {e["job_id"] for e in reported} == made
    if connections == 1:
        # Batches of two, each reported after its own commit and before the next one.
        assert visible_at_report == [2, 2, 4, 4, 6, 6, 8, 8, 10, 10]


# ------------------------------------------------------------ 5. killed mid-pass


def _slow_down_each_batch(conn: Conn, seconds: float) -> None:
    """Each statement inserting jobs (one per batch) takes `seconds` longer, as a host's
    trigger may make it: a pass then lasts long enough for a kill to land between its
    first commit and its last."""
    conn.execute(
        f"""
        CREATE FUNCTION test_slow_batch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_sleep({seconds});
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER test_slow_batch AFTER INSERT ON jobs
            FOR EACH STATEMENT EXECUTE FUNCTION test_slow_batch();
        """
    )


def _start_tick(database_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "schedctl", "tick", "--json"],
        env=cli_env({"SCHEDCTL_DATABASE_URL": database_url, "SCHEDCTL_LOCK_TIMEOUT": "120"}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(conn: Conn, query: str, expected: Any, timeout: float) -> float:
    """Poll until `query` gives `expected`; the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while True:
        (value,) = _row(conn, query)
        if value == expected:
            return time.monotonic()
        assert time.monotonic() < deadline, f"{query!r} stayed {value}, expected {expected}"
        time.sleep(0.02)


def _jobs_per_slot(conn: Conn) -> list[tuple[str, datetime]]:
    """(scheduler, slot) of every job tick made, through its served_slots row."""
    return [
        (str(sid), slot)
        for sid, slot in conn.execute(
            "SELECT j.scheduler_id, ss.slot FROM jobs j"
            " JOIN schedctl.served_slots ss ON ss.job_id = j.id"
        )
    ]


def _assert_one_job_per_served_slot(conn: Conn) -> None:
    assert conn.execute(
        "SELECT count(*) FROM jobs j"
        " LEFT JOIN schedctl.served_slots ss ON ss.job_id = j.id WHERE ss.job_id IS NULL"
    ).fetchone() == (0,)  # every job has its slot's row ...
    assert conn.execute(
        "SELECT count(*) FROM schedctl.served_slots ss"
        " LEFT JOIN jobs j ON j.id = ss.job_id WHERE j.id IS NULL"
    ).fetchone() == (0,)  # ... every slot's row its job ...
    per_slot = _jobs_per_slot(conn)
    assert len(per_slot) == len(set(per_slot))  # ... and no slot two jobs


def _make_served_due_again(conn: Conn) -> None:
    """Every scheduler whose slot was served gets a new slot in the past."""
    conn.execute(
        "UPDATE schedulers SET next_run_at = now() - interval '1 minute'"
        " - (random() * interval '1 hour') WHERE next_run_at > now()"
    )


@pytest.mark.slow
def test_sigkill_leaves_passes_cut_mid_way_that_the_next_tick_finishes(
    conn: Conn, database_url: str
) -> None:
    """Ticks as real processes, each killed with SIGKILL at a random moment of its pass.
    Counting its jobs tells whether it committed none, some or all of its batches; a pass
    that commits batch by batch must be cut part-way by some of the kills (a pass that
    were one transaction never would be), and what it committed stays exactly once."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    total = 9000  # batches of 1000, 2000, 2000, 2000, 2000
    rounds = 12  # at most: it stops once enough kills landed mid-pass
    _seed_due(conn, total, orgs=25)
    _slow_down_each_batch(conn, 0.3)

    # How long a whole pass takes on this machine, from its connection to its exit.
    calibration = _start_tick(database_url)
    started = _wait_for(conn, f"SELECT ({TICK_BACKENDS}) > 0", True, timeout=60)
    out, err = calibration.communicate(timeout=120)
    pass_seconds = time.monotonic() - started
    assert calibration.returncode == 0, err
    assert json.loads(out)["created"] == total
    expected = set(_jobs_per_slot(conn))
    _make_served_due_again(conn)

    outcomes: Counter[str] = Counter()
    for _ in range(rounds):
        if outcomes["killed mid-pass"] >= 3:
            break
        due = _due_slots(conn)
        expected |= due
        (jobs_before,) = _row(conn, "SELECT count(*) FROM jobs")
        proc = _start_tick(database_url)
        started = _wait_for(conn, f"SELECT ({TICK_BACKENDS}) > 0", True, timeout=60)
        delay = rng.uniform(0.2, 0.8) * pass_seconds
        time.sleep(max(0.0, started + delay - time.monotonic()))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), (seed, proc.returncode)
        # The killed tick's session ends once the server notices, rolling back its open
        # batch; until then it holds its rows.
        _wait_for(conn, TICK_BACKENDS, 0, timeout=60)

        (jobs_after,) = _row(conn, "SELECT count(*) FROM jobs")
        created = jobs_after - jobs_before
        left = _due_slots(conn)
        # What it committed is whole: each job moved its own scheduler on, nothing else.
        assert left <= due, seed
        assert len(due) - len(left) == created, (seed, created, len(due), len(left))
        _assert_one_job_per_served_slot(conn)
        if proc.returncode == 0:
            outcomes["finished before the kill"] += 1
        elif created == 0:
            outcomes["killed before its first commit"] += 1
            pass_seconds *= 1.3  # the machine got slower: aim later
        elif created == len(due):
            outcomes["killed after its last commit"] += 1
            pass_seconds *= 0.6  # the passes got faster than the first: aim earlier
        else:
            outcomes["killed mid-pass"] += 1
        _make_served_due_again(conn)

    print(f"seed {seed}: pass {pass_seconds:.2f} s; {dict(outcomes)}")
    assert outcomes["killed mid-pass"] >= 2, (seed, pass_seconds, outcomes)

    # The next tick serves every slot the killed ones left, and nothing twice.
    left = _due_slots(conn)
    expected |= left
    final = _start_tick(database_url)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    summary = json.loads(out)
    assert (summary["due"], summary["created"]) == (len(left), len(left)), seed
    _assert_one_job_per_served_slot(conn)
    assert set(_jobs_per_slot(conn)) == expected, seed
    assert _due_slots(conn) == set()


# ------------------------------------------------------------ 6. the "due now" boundary


def _add_scheduler(conn: Conn, domain: str, next_run_at: datetime | None) -> str:
    """A 6-hourly scheduler of a new organisation (due at `next_run_at`, or far ahead)."""
    (scheduler_id,) = _row(
        conn,
        """
        WITH org AS (INSERT INTO organisations (name) VALUES ('Acme') RETURNING id),
        dom AS (INSERT INTO domains (name) VALUES (%s) RETURNING id)
        INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours, next_run_at)
        SELECT dom.id, org.id, 6, COALESCE(%s, now() + interval '1 year') FROM dom, org
        RETURNING id::text
        """,
        domain,
        next_run_at,
    )
    return str(scheduler_id)


def test_a_slot_is_due_from_the_exact_microsecond_now_reaches_it(
    conn: Conn, tick_conn: db.Connection
) -> None:
    """`next_run_at <= now()`, inclusive, to the microsecond: in one pass a slot equal to
    the pass's clock is served while one a microsecond later is not; by the database's
    clock, a slot equal to the transaction's now() is claimed and one a microsecond
    later is not."""
    six_hours = timedelta(hours=6)
    at = datetime(2031, 6, 1, 12, 0, 0, 123_456, tzinfo=timezone.utc)
    on_time = _add_scheduler(conn, "on-time.com", at)
    a_micro_later = _add_scheduler(conn, "a-micro-later.com", at + MICRO)
    row_before = _row(conn, "SELECT * FROM schedulers WHERE id = %s", a_micro_later)

    jobs: list[dict[str, Any]] = []
    # A limit, so that a claim that misreads the boundary ends the pass instead of taking
    # a not-yet-due slot again and again.
    summary = tick.run(tick_conn, on_job=jobs.append, now=at, limit=10)
    assert (summary.due, summary.created, summary.missed) == (1, 1, 0)
    assert [(str(e["scheduler_id"]), e["slot"], e["next_run_at"]) for e in jobs] == [
        (on_time, at, at + six_hours)
    ]
    assert _row(conn, "SELECT * FROM schedulers WHERE id = %s", a_micro_later) == row_before

    # One microsecond on, the other one's slot is reached, exactly.
    jobs.clear()
    summary = tick.run(tick_conn, on_job=jobs.append, now=at + MICRO, limit=10)
    assert (summary.due, summary.created, summary.missed) == (1, 1, 0)
    assert [(str(e["scheduler_id"]), e["slot"]) for e in jobs] == [(a_micro_later, at + MICRO)]

    # The database's clock: within one transaction now() does not move, so a slot set to
    # it is exactly "now" for the batch function run in that transaction.
    by_clock = _add_scheduler(conn, "by-clock.com", None)
    by_clock_later = _add_scheduler(conn, "by-clock-later.com", None)
    with tick_conn.work():
        row = tick_conn.execute(
            "UPDATE schedulers SET next_run_at = now() WHERE id = %s RETURNING next_run_at",
            [by_clock],
        ).fetchone()
        assert row is not None
        now = row["next_run_at"]
        tick_conn.execute(
            "UPDATE schedulers SET next_run_at = now() + interval '1 microsecond' WHERE id = %s",
            [by_clock_later],
        )
        outcomes = db.fetch_tuples(tick_conn, "tick_batch", **BATCH)
    ((scheduler_id, job_id, _org, _domain, slot, next_run_at, missed, skip, error),) = outcomes
    assert error is None
    assert (str(scheduler_id), slot, next_run_at, missed, skip) == (
        by_clock,
        now,
        now + six_hours,
        0,
        False,
    )
    assert _row(conn, "SELECT slot FROM schedctl.served_slots WHERE job_id = %s", job_id) == (now,)
    assert _row(conn, "SELECT next_run_at FROM schedulers WHERE id = %s", by_clock_later) == (
        now + MICRO,
    )
    assert conn.execute(
        "SELECT count(*) FROM jobs WHERE scheduler_id = %s", [by_clock_later]
    ).fetchone() == (0,)
