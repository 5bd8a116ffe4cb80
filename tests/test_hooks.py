"""The database's hooks: `hooks show/set/clear` (checked against the catalog, audited,
kept by `migrate`), and tick and `run` calling them: the example host of
contrib/hooks/first-task.sql gets one job and its first task per slot, a declined slot is
skipped and audited, a hook that raises fails its scheduler only, replace skips the
replaced job's queued tasks, a dry run calls no hook and lets nothing out, and listeners
are told about committed batches."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import (
    Cli,
    Conn,
    as_uri,
    assert_error,
    fetch_one,
    fingerprint,
    insert_active_job,
    make_due,
    make_org,
    make_scheduler,
    ok_json,
)

CONTRIB = Path(__file__).resolve().parents[1] / "contrib" / "hooks"
FIRST_TASK = CONTRIB / "first-task.sql"
CREATE = "public.schedctl_create_job"
CANCEL = "public.schedctl_cancel_job"


def install_example(conn: Conn) -> None:
    """The example host's tasks table and hook functions, as its README installs them."""
    conn.execute(FIRST_TASK.read_text())


@pytest.fixture
def example(cli: Cli, conn: Conn) -> Cli:
    """The example hooks installed and set (no notification)."""
    install_example(conn)
    ok_json(cli("hooks", "set", "--create-job", CREATE, "--cancel-job", CANCEL, "--json"))
    return cli


def _count(conn: Conn, query: str, *params: Any) -> int:
    (value,) = fetch_one(conn, query, list(params))
    return int(value)


# ---------------------------------------------------------------- hooks show / set / clear


def test_show_tells_the_defaults_when_nothing_is_set(cli: Cli) -> None:
    assert ok_json(cli("hooks", "show", "--json")) == {
        "create_job": None,
        "cancel_job": None,
        "notify": None,
        "updated_at": None,
        "updated_by": None,
    }
    text = cli("hooks", "show")
    assert text.code == 0, text.stderr
    assert "create-job  not set: schedctl inserts the job itself" in text.stdout
    assert "cancel-job  not set: schedctl sets the job's status to cancelled" in text.stdout
    assert "notify      not set: no notification" in text.stdout


def test_set_and_clear_are_stored_and_audited_with_the_actor(cli: Cli, conn: Conn) -> None:
    install_example(conn)
    env = {"SCHEDCTL_ACTOR": "alice"}
    shown = ok_json(
        cli("hooks", "set", "--create-job", "Public.SCHEDCTL_CREATE_JOB", "--json", env=env)
    )
    assert (shown["create_job"], shown["cancel_job"], shown["notify"]) == (CREATE, None, None)
    assert shown["updated_by"] == "alice"
    shown = ok_json(cli("hooks", "set", "--cancel-job", CANCEL, "--notify", "new_jobs", "--json"))
    assert shown | {"updated_at": None} == {
        "create_job": CREATE,
        "cancel_job": CANCEL,
        "notify": "new_jobs",
        "updated_at": None,
        "updated_by": "alice",
    }
    assert ok_json(cli("hooks", "show", "--json")) == shown
    cleared = ok_json(cli("hooks", "clear", "--create-job", "--json"))
    assert (cleared["create_job"], cleared["cancel_job"]) == (None, CANCEL)
    everything = ok_json(cli("hooks", "clear", "--json", env={"SCHEDCTL_ACTOR": "bob"}))
    assert (everything["create_job"], everything["cancel_job"], everything["notify"]) == (
        None,
        None,
        None,
    )

    entries = conn.execute(
        "SELECT actor, action, scheduler_id, organisation_id, domain, changes"
        " FROM schedctl.audit ORDER BY id"
    ).fetchall()
    assert entries == [
        ("alice", "hooks", None, None, None, {"create_job": [None, CREATE]}),
        (
            "alice",
            "hooks",
            None,
            None,
            None,
            {"cancel_job": [None, CANCEL], "notify": [None, "new_jobs"]},
        ),
        ("alice", "hooks", None, None, None, {"create_job": [CREATE, None]}),
        (
            "bob",
            "hooks",
            None,
            None,
            None,
            {"cancel_job": [CANCEL, None], "notify": ["new_jobs", None]},
        ),
    ]
    # Setting what is already set changes nothing and writes nothing.
    before = fingerprint(conn)
    ok_json(cli("hooks", "clear", "--json"))
    assert fingerprint(conn) == before


def test_hooks_survive_migrate(cli: Cli, conn: Conn) -> None:
    install_example(conn)
    shown = ok_json(
        cli(
            "hooks",
            "set",
            "--create-job",
            CREATE,
            "--cancel-job",
            CANCEL,
            "--notify",
            "jobs_x",
            "--json",
        )
    )
    migrated = cli("migrate")
    assert migrated.code == 0, migrated.stderr
    assert ok_json(cli("hooks", "show", "--json")) == shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--create-job", "schedctl_create_job"], "must be schema-qualified"),
        (["--create-job", "public.f(uuid, timestamptz)"], "without its arguments"),
        (["--create-job", "public."], "expected SCHEMA.FUNCTION"),
        (["--cancel-job", "a.b.c"], "expected SCHEMA.FUNCTION"),
        (["--notify", "Has Space"], "lower-case identifier"),
        (["--notify", ""], "lower-case identifier"),
        (["--notify", "x" * 64], "lower-case identifier"),
        ([], "nothing to set"),
    ],
)
def test_set_refuses_malformed_input_before_connecting(
    cli: Cli, conn: Conn, args: list[str], message: str
) -> None:
    before = fingerprint(conn)
    assert message in assert_error(cli("hooks", "set", *args), 2)
    assert fingerprint(conn) == before


@pytest.mark.parametrize(
    ("option", "function", "message"),
    [
        ("--create-job", "public.no_such_function", "there is no function public.no_such_function"),
        ("--create-job", "public.wrong_args", "must be public.wrong_args(scheduler_id uuid"),
        (
            "--create-job",
            "public.wrong_result",
            "found public.wrong_result(uuid, timestamp with time zone) RETURNS integer",
        ),
        (
            "--cancel-job",
            "public.schedctl_create_job",
            "must be public.schedctl_create_job(job_id text) RETURNS void",
        ),
        (
            "--create-job",
            "public.schedctl_cancel_job",
            "must be public.schedctl_cancel_job(scheduler_id uuid",
        ),
        ("--create-job", "public.a_procedure", "must be public.a_procedure"),
    ],
)
def test_set_refuses_a_missing_function_or_the_wrong_signature(
    cli: Cli, conn: Conn, option: str, function: str, message: str
) -> None:
    install_example(conn)
    conn.execute(
        """
        CREATE FUNCTION public.wrong_args(uuid) RETURNS text LANGUAGE sql AS 'SELECT NULL::text';
        CREATE FUNCTION public.wrong_result(uuid, timestamptz) RETURNS integer
            LANGUAGE sql AS 'SELECT 1';
        CREATE PROCEDURE public.a_procedure(uuid, timestamptz) LANGUAGE sql AS 'SELECT 1';
        """
    )
    before = fingerprint(conn)
    assert message in assert_error(cli("hooks", "set", option, function, "--notify", "x"), 2)
    assert fingerprint(conn) == before


@pytest.fixture
def operator_url(database_url: str) -> Iterator[str]:
    """A login role that may change schedctl's tables but is not a superuser."""
    role = f"hooks_operator_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL(
                "CREATE ROLE {role} LOGIN PASSWORD 'pw';"
                "GRANT USAGE ON SCHEMA schedctl, public TO {role};"
                "GRANT ALL ON ALL TABLES IN SCHEMA schedctl, public TO {role};"
            ).format(role=sql.Identifier(role))
        )
    params = conninfo_to_dict(database_url) | {"user": role, "password": "pw"}
    try:
        yield as_uri(" ".join(f"{k}={v}" for k, v in params.items()))
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_set_refuses_a_function_the_role_may_not_execute(
    cli: Cli, conn: Conn, operator_url: str
) -> None:
    install_example(conn)  # EXECUTE revoked from PUBLIC
    before = fingerprint(conn)
    env = {"SCHEDCTL_DATABASE_URL": operator_url}
    message = assert_error(cli("hooks", "set", "--create-job", CREATE, env=env), 2)
    assert "may not execute public.schedctl_create_job(scheduler_id uuid, slot timestamp" in message
    assert fingerprint(conn) == before
    # Granted, the same role may set it.
    role = conninfo_to_dict(operator_url)["user"]
    conn.execute(
        sql.SQL(
            "GRANT EXECUTE ON FUNCTION public.schedctl_create_job(uuid, timestamptz) TO {}"
        ).format(sql.Identifier(str(role)))
    )
    assert (
        ok_json(cli("hooks", "set", "--create-job", CREATE, "--json", env=env))["create_job"]
        == CREATE
    )


# ---------------------------------------------------------------- tick and run with the hooks


def test_tick_makes_each_job_with_its_first_task_through_the_hook(example: Cli, conn: Conn) -> None:
    make_org(example, "Acme")
    docs = [make_scheduler(example, d) for d in ("one.com", "two.org", "three.net")]
    slots = {doc["id"]: make_due(conn, doc["id"], "7 hours") for doc in docs}

    summary = ok_json(example("tick", "--json"))

    assert (summary["due"], summary["created"], summary["skipped"], summary["missed"]) == (
        3,
        3,
        0,
        3,
    )
    made = conn.execute(
        "SELECT j.id, j.scheduler_id::text, j.status, t.url, t.status, ss.slot"
        " FROM jobs j JOIN tasks t ON t.job_id = j.id"
        " JOIN schedctl.served_slots ss ON ss.job_id = j.id ORDER BY t.url"
    ).fetchall()
    assert [(row[3], row[4]) for row in made] == [
        ("https://one.com/", "pending"),
        ("https://three.net/", "pending"),
        ("https://two.org/", "pending"),
    ]
    assert {row[0] for row in made} == {job["job_id"] for job in summary["jobs"]}
    assert {(row[1], row[5]) for row in made} == set(slots.items())
    # history and show find the hook's job, as it links it through jobs.scheduler_id.
    for doc in docs:
        history = ok_json(example("history", doc["id"], "--json"))
        assert [job["id"] for job in history] == [
            job["job_id"] for job in summary["jobs"] if job["scheduler_id"] == doc["id"]
        ]
        assert ok_json(example("show", doc["id"], "--json"))["last_job"]["id"] == history[0]["id"]


def test_a_declined_slot_is_skipped_audited_and_not_served_again(example: Cli, conn: Conn) -> None:
    conn.execute(
        """
        CREATE FUNCTION public.decline_some(scheduler_id uuid, slot timestamptz) RETURNS text
        LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT d.name FROM schedulers s JOIN domains d ON d.id = s.domain_id
                WHERE s.id = scheduler_id) = 'declined.com' THEN
                RETURN NULL;
            END IF;
            RETURN public.schedctl_create_job(scheduler_id, slot);
        END
        $$;
        """
    )
    ok_json(example("hooks", "set", "--create-job", "public.decline_some", "--json"))
    make_org(example, "Acme")
    declined = make_scheduler(example, "declined.com")
    served = make_scheduler(example, "served.com")
    slot = make_due(conn, declined["id"])
    make_due(conn, served["id"])

    summary = ok_json(example("tick", "--json"))

    assert (summary["due"], summary["created"], summary["skipped"], summary["failed"]) == (
        2,
        1,
        1,
        0,
    )
    assert [job["scheduler_id"] for job in summary["jobs"]] == [served["id"]]
    assert (
        _count(
            conn,
            "SELECT count(*) FROM schedctl.served_slots WHERE scheduler_id = %s",
            declined["id"],
        )
        == 0
    )
    assert _count(conn, "SELECT count(*) FROM jobs WHERE scheduler_id = %s", declined["id"]) == 0
    (reason, changes) = fetch_one(
        conn,
        "SELECT reason, changes FROM schedctl.audit WHERE action = 'skip' AND scheduler_id = %s",
        [declined["id"]],
    )
    assert reason == "the create-job hook declined the slot (it returned NULL)"
    assert changes["slot"] == slot.isoformat().replace("+00:00", "Z")
    # The schedule moved on: the declined slot is not offered again.
    assert ok_json(example("tick", "--json"))["due"] == 0
    shown = ok_json(example("show", declined["id"], "--json"))
    assert shown["next_run_at"] > changes["slot"]


@pytest.mark.parametrize(
    "errcode",
    [
        "P0001",  # RAISE EXCEPTION's own
        "42P01",  # undefined_table: a class that, outside a hook, ends the whole pass
    ],
)
def test_a_hook_that_raises_fails_its_scheduler_only(
    example: Cli, conn: Conn, errcode: str
) -> None:
    conn.execute(
        """
        CREATE FUNCTION public.refuse_one(scheduler_id uuid, slot timestamptz) RETURNS text
        LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT d.name FROM schedulers s JOIN domains d ON d.id = s.domain_id
                WHERE s.id = scheduler_id) = 'broken.com' THEN
                RAISE EXCEPTION 'the host cannot make a job for broken.com'
                    USING ERRCODE = '%s';
            END IF;
            RETURN public.schedctl_create_job(scheduler_id, slot);
        END
        $$;
        """.replace("%s", errcode)
    )
    ok_json(example("hooks", "set", "--create-job", "public.refuse_one", "--json"))
    make_org(example, "Acme")
    docs = {d: make_scheduler(example, d) for d in ("a.com", "broken.com", "c.com")}
    slots = {d: make_due(conn, doc["id"]) for d, doc in docs.items()}

    result = example("tick", "--json")

    assert result.code == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["due"], summary["created"], summary["failed"]) == (3, 2, 1)
    assert summary["errors"] == [
        {
            "scheduler_id": docs["broken.com"]["id"],
            "message": "the host cannot make a job for broken.com",
        }
    ]
    # The others have their job and task; the broken one nothing, and is still due on its slot.
    assert _count(conn, "SELECT count(*) FROM jobs j JOIN tasks t ON t.job_id = j.id") == 2
    assert fetch_one(
        conn, "SELECT next_run_at FROM schedulers WHERE id = %s", [docs["broken.com"]["id"]]
    ) == (slots["broken.com"],)
    # Retried by the next tick, once the host's problem is fixed.
    ok_json(example("hooks", "set", "--create-job", CREATE, "--json"))
    again = ok_json(example("tick", "--json"))
    assert (again["due"], again["created"]) == (1, 1)


def test_a_dropped_hook_function_stops_the_pass_and_writes_nothing(
    example: Cli, conn: Conn
) -> None:
    make_org(example, "Acme")
    make_due(conn, make_scheduler(example, "gone.com")["id"])
    conn.execute("DROP FUNCTION public.schedctl_create_job(uuid, timestamptz)")
    before = fingerprint(conn)

    result = example("tick", "--json")

    assert result.code == 1
    assert "function public.schedctl_create_job(uuid, timestamp with time zone) does not exist" in (
        result.stderr
    )
    after = fingerprint(conn)
    # Only the failed pass's heartbeat is left.
    assert {k: v for k, v in after.items() if k != "schedctl.tick_heartbeats"} == {
        k: v for k, v in before.items() if k != "schedctl.tick_heartbeats"
    }


def test_replace_calls_the_cancel_hook_which_skips_the_queued_tasks(
    example: Cli, conn: Conn
) -> None:
    make_org(example, "Acme")
    doc = make_scheduler(example, "replace.com")
    make_due(conn, doc["id"])
    first = ok_json(example("tick", "--json"))["jobs"][0]["job_id"]
    conn.execute(
        "INSERT INTO tasks (job_id, url, status) VALUES"
        " (%(j)s, 'https://replace.com/a', 'waiting'),"
        " (%(j)s, 'https://replace.com/b', 'completed')",
        {"j": first},
    )
    make_due(conn, doc["id"])

    second = ok_json(example("tick", "--json"))["jobs"][0]["job_id"]

    assert fetch_one(conn, "SELECT status FROM jobs WHERE id = %s", [first]) == ("cancelled",)
    assert conn.execute(
        "SELECT url, status FROM tasks WHERE job_id = %s ORDER BY url", [first]
    ).fetchall() == [
        ("https://replace.com/", "skipped"),
        ("https://replace.com/a", "skipped"),
        ("https://replace.com/b", "completed"),
    ]
    # `run` does the same, through both hooks.
    job = ok_json(example("run", doc["id"], "--json"))
    assert fetch_one(conn, "SELECT status FROM jobs WHERE id = %s", [second]) == ("cancelled",)
    assert conn.execute("SELECT status FROM tasks WHERE job_id = %s", [second]).fetchall() == [
        ("skipped",)
    ]
    assert conn.execute(
        "SELECT url, status FROM tasks WHERE job_id = %s", [job["id"]]
    ).fetchall() == [("https://replace.com/", "pending")]
    assert (job["scheduler_id"], job["status"]) == (doc["id"], "pending")
    # A manual run has no slot.
    assert (
        _count(conn, "SELECT count(*) FROM schedctl.served_slots WHERE job_id = %s", job["id"]) == 0
    )


def test_run_refused_by_a_declining_hook_writes_nothing(example: Cli, conn: Conn) -> None:
    conn.execute(
        "CREATE FUNCTION public.never(scheduler_id uuid, slot timestamptz) RETURNS text"
        " LANGUAGE sql AS 'SELECT NULL::text'"
    )
    make_org(example, "Acme")
    doc = make_scheduler(example, "never.com")
    active = insert_active_job(conn, doc["id"])
    ok_json(example("hooks", "set", "--create-job", "public.never", "--json"))
    before = fingerprint(conn)

    message = assert_error(example("run", doc["id"]), 4)

    assert "declined" in message
    assert fingerprint(conn) == before  # the active job was not cancelled either
    assert fetch_one(conn, "SELECT status FROM jobs WHERE id = %s", [active]) == ("running",)


def test_a_cancel_hook_alone_keeps_schedctls_own_insert(cli: Cli, conn: Conn) -> None:
    install_example(conn)
    ok_json(cli("hooks", "set", "--cancel-job", CANCEL, "--json"))
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "alone.com")
    active = insert_active_job(conn, doc["id"])
    conn.execute("INSERT INTO tasks (job_id, url) VALUES (%s, 'https://alone.com/')", [active])
    make_due(conn, doc["id"])

    summary = ok_json(cli("tick", "--json"))

    assert summary["created"] == 1
    assert fetch_one(conn, "SELECT status FROM jobs WHERE id = %s", [active]) == ("cancelled",)
    assert conn.execute("SELECT status FROM tasks").fetchall() == [("skipped",)]
    made = summary["jobs"][0]["job_id"]
    assert fetch_one(
        conn, "SELECT source_type, scheduler_id::text FROM jobs WHERE id = %s", [made]
    ) == (
        "scheduler",
        doc["id"],
    )


# ---------------------------------------------------------------- dry run and notifications


def _listen(database_url: str, channel: str) -> psycopg.Connection[Any]:
    listener = psycopg.connect(database_url, autocommit=True)
    listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
    return listener


def _received(listener: psycopg.Connection[Any], wait: float) -> list[psycopg.Notify]:
    """The notifications that arrived, waiting up to `wait` seconds for the first."""
    return list(listener.notifies(timeout=wait, stop_after=1000))


def test_dry_run_calls_no_hook_and_lets_nothing_out(
    example: Cli, conn: Conn, database_url: str
) -> None:
    # A hook that would leave a trace a rollback cannot undo (a sequence) and notify.
    conn.execute(
        """
        CREATE SEQUENCE public.hook_calls;
        CREATE FUNCTION public.traced_create(scheduler_id uuid, slot timestamptz) RETURNS text
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM nextval('public.hook_calls');
            PERFORM pg_notify('hook_trace', scheduler_id::text);
            RETURN public.schedctl_create_job(scheduler_id, slot);
        END
        $$;
        CREATE FUNCTION public.traced_cancel(job_id text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM nextval('public.hook_calls');
            PERFORM public.schedctl_cancel_job(job_id);
        END
        $$;
        """
    )
    ok_json(
        example(
            "hooks",
            "set",
            "--create-job",
            "public.traced_create",
            "--cancel-job",
            "public.traced_cancel",
            "--notify",
            "new_jobs",
            "--json",
        )
    )
    make_org(example, "Acme")
    docs = [make_scheduler(example, d) for d in ("dry.com", "run.org")]
    for doc in docs:
        make_due(conn, doc["id"])
    active = insert_active_job(conn, docs[0]["id"])
    before = fingerprint(conn)
    tasks_before = conn.execute("SELECT * FROM tasks").fetchall()

    with (
        _listen(database_url, "new_jobs") as jobs_listener,
        _listen(database_url, "hook_trace") as trace,
    ):
        dry = ok_json(example("tick", "--dry-run", "--json"))
        assert _received(jobs_listener, 1.0) == []
        assert _received(trace, 0.1) == []

    assert (dry["due"], dry["created"]) == (2, 2)
    assert [job["job_id"] for job in dry["jobs"]] == [None, None]
    assert fingerprint(conn) == before
    assert conn.execute("SELECT * FROM tasks").fetchall() == tasks_before
    assert fetch_one(conn, "SELECT is_called FROM public.hook_calls") == (False,)
    assert fetch_one(conn, "SELECT status FROM jobs WHERE id = %s", [active]) == ("running",)

    # The real pass does call them (and so the trace above would have shown a call).
    ok_json(example("tick", "--json"))
    assert fetch_one(conn, "SELECT last_value FROM public.hook_calls") == (3,)


def test_listeners_are_told_after_each_committed_batch(
    example: Cli, conn: Conn, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schedctl import db, tick
    from schedctl.config import Settings

    ok_json(example("hooks", "set", "--notify", "new_jobs", "--json"))
    make_org(example, "Acme")
    docs = [make_scheduler(example, f"n{i}.com") for i in range(5)]
    for doc in docs:
        make_due(conn, doc["id"])

    with _listen(database_url, "new_jobs") as listener:
        seen_at_commit: list[list[psycopg.Notify]] = []

        def on_job(entry: dict[str, Any]) -> None:
            seen_at_commit.append(_received(listener, 0.5))

        settings = Settings()
        with db.connect(settings) as tick_conn:
            summary = tick.run(tick_conn, on_job=on_job, batch_size=2, max_batch_size=2)
        later = _received(listener, 0.5)

    assert summary.created == 5
    notes = [note for batch in seen_at_commit for note in batch] + later
    payloads = [json.loads(note.payload) for note in notes]
    # One notification per batch (2 + 2 + 1 jobs), each naming its jobs.
    assert [p["created"] for p in payloads] == [2, 2, 1]
    assert all(not p["truncated"] for p in payloads)
    job_ids = sorted(i for p in payloads for i in p["job_ids"])
    assert job_ids == sorted(r[0] for r in conn.execute("SELECT id FROM jobs").fetchall())
    assert {note.channel for note in notes} == {"new_jobs"}


def test_a_large_batch_notifies_a_truncated_list_within_the_limit(
    example: Cli, conn: Conn, database_url: str
) -> None:
    from tests.helpers import seed_due

    ok_json(example("hooks", "set", "--notify", "new_jobs", "--json"))
    seed_due(conn, 1200)
    with _listen(database_url, "new_jobs") as listener:
        summary = ok_json(example("tick", "--json"))
        notes = _received(listener, 2.0)
    payloads = [json.loads(note.payload) for note in notes]
    assert sum(p["created"] for p in payloads) == summary["created"] == 1200
    assert all(len(note.payload.encode()) < 8000 for note in notes)
    big = [p for p in payloads if p["created"] > 150]
    assert big and all(p["truncated"] and 0 < len(p["job_ids"]) < p["created"] for p in big)


# The host's check at commit: a deferred constraint trigger on jobs that waits for an advisory
# lock the test holds, so that a tick can be killed while its batch's COMMIT is under way.
HELD_AT_COMMIT = """
CREATE FUNCTION public.wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(727274);
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON public.jobs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.wait_at_commit();
"""


def test_the_notification_commits_with_its_batch_even_when_the_tick_dies_at_commit(
    cli: Cli, conn: Conn, database_url: str
) -> None:
    """A tick killed while the server commits its batch: the server finishes the commit, and
    the listeners hear of the jobs, since the NOTIFY is part of the batch's transaction (one
    sent after the commit, by the dead process, would never come)."""
    import signal
    import time

    from tests.helpers import finish_cli_process, start_cli_process

    ok_json(cli("hooks", "set", "--notify", "new_jobs", "--json"))
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "commit.com")
    make_due(conn, doc["id"])
    conn.execute(HELD_AT_COMMIT)
    waiting_at_commit = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'schedctl' AND wait_event = 'advisory'"
    )
    with (
        _listen(database_url, "new_jobs") as listener,
        psycopg.connect(database_url, autocommit=True) as holder,
    ):
        holder.execute("SELECT pg_advisory_lock(727274)")
        tick = start_cli_process(["tick", "--json"], {"SCHEDCTL_DATABASE_URL": database_url})
        deadline = time.monotonic() + 60
        while not (pids := conn.execute(waiting_at_commit).fetchall()):
            assert tick.poll() is None, finish_cli_process(tick)
            assert time.monotonic() < deadline, "the tick never reached its commit"
            time.sleep(0.01)
        tick.send_signal(signal.SIGKILL)
        finish_cli_process(tick)
        assert _count(conn, "SELECT count(*) FROM jobs") == 0  # not committed yet
        holder.execute("SELECT pg_advisory_unlock(727274)")
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", pids[0]).fetchone():
            assert time.monotonic() < deadline, "the killed tick's session stayed"
            time.sleep(0.01)
        notes = _received(listener, 2.0)

    job_ids = [row[0] for row in conn.execute("SELECT id FROM jobs")]
    assert len(job_ids) == 1  # the server committed the batch of the killed tick
    assert [json.loads(note.payload)["job_ids"] for note in notes] == [job_ids]
