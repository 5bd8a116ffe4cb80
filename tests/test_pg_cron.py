"""`schedctl pg-cron`: the tick pass run by pg_cron inside the database, against a private
cluster that loads the real extension (Debian's postgresql-NN-cron, 1.4 here; 1.6 on Supabase).

pg_cron lives in database `postgres` (its default, as on Supabase). One module's cluster
serves every test: the real-minute test shares its one wait between a database where pg_cron
lives (the Supabase path, `cron.schedule`) and one where it does not (`schedule_in_database`).
The other tests each use a fresh database copied from a migrated template, and schedules
that never come due while they run."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.helpers import (
    Result,
    assert_error,
    finish_cli_process,
    ok_json,
    run_cli,
    run_cli_subprocess,
    seed_due,
    start_cli_process,
)
from tests.servers import (
    PostgresCluster,
    ServerUnavailable,
    enter_or_skip,
    postgres_bin_dir,
    postgres_cluster,
    unavailable,
)

CONTRIB = Path(__file__).resolve().parents[1] / "contrib"
GRANTS = CONTRIB / "grants.sql"
FIRST_TASK = CONTRIB / "hooks" / "first-task.sql"
JOB_ROLE = "schedctl_cron"  # the login role grants.sql suggests, member of schedctl_tick
NEVER = "0 0 1 1 *"  # a schedule that does not come due while a test runs (New Year, 00:00)
CHANNEL = "schedctl_jobs"

# One worker runs the module, so the cluster with pg_cron starts once. The real-minute test
# mostly waits for its minute, so it is not in a `slow` lane.
pytestmark = pytest.mark.xdist_group("pg_cron")


# ---------------------------------------------------------------- the cluster


def _pg_cron_library() -> Path:
    """pg_cron's shared library beside the newest server, or the test skipped (failed under
    CI) when the distribution's package is missing."""
    try:
        bin_dir = postgres_bin_dir()
    except ServerUnavailable as exc:
        unavailable(exc)
    library = bin_dir.parent / "lib" / "pg_cron.so"
    if not library.is_file():
        unavailable(
            ServerUnavailable(
                f"pg_cron not found ({library}); install postgresql-{bin_dir.parent.name}-cron"
            )
        )
    return library


def _admin(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(url, autocommit=True)


def _migrate(url: str) -> None:
    result = run_cli_subprocess(["migrate"], {"SCHEDCTL_DATABASE_URL": url})
    assert result.code == 0, result.stderr


def _prepare(url: str) -> None:
    """grants.sql and the example hooks' functions in a migrated database."""
    with _admin(url) as conn:
        conn.execute(GRANTS.read_text())
        conn.execute(FIRST_TASK.read_text())


@pytest.fixture(scope="module")
def cron_cluster() -> Iterator[PostgresCluster]:
    """A private cluster running pg_cron in database `postgres` (migrated, with grants.sql),
    a database `tpl` migrated likewise for the tests to copy, and the login role JOB_ROLE.
    pg_cron reaches the databases over TCP to 127.0.0.1, where the cluster trusts everyone."""
    _pg_cron_library()
    with ExitStack() as stack:
        cluster = enter_or_skip(
            stack,
            postgres_cluster(
                {
                    "shared_preload_libraries": "pg_cron",
                    "cron.database_name": "postgres",
                    "cron.host": "127.0.0.1",
                    "timezone": "UTC",
                }
            ),
        )
        with _admin(cluster.url()) as conn:
            conn.execute("CREATE EXTENSION pg_cron")
            conn.execute("CREATE DATABASE tpl")
        for name in ("postgres", "tpl"):
            _migrate(cluster.url(name))
            _prepare(cluster.url(name))
        with _admin(cluster.url()) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN IN ROLE schedctl_tick").format(
                    sql.Identifier(JOB_ROLE)
                )
            )
        yield cluster


@pytest.fixture
def app_url(cron_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh migrated database of the cron cluster (pg_cron lives in another one), dropped
    with its pg_cron jobs afterwards."""
    name = f"app_{uuid.uuid4().hex[:12]}"
    with _admin(cron_cluster.url()) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE tpl").format(sql.Identifier(name)))
    try:
        yield cron_cluster.url(name)
    finally:
        with _admin(cron_cluster.url()) as conn:
            conn.execute("DELETE FROM cron.job WHERE database = %s", [name])
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _cli(url: str, *args: str) -> Result:
    return run_cli_subprocess(list(args), {"SCHEDCTL_DATABASE_URL": url})


def _cron_jobs(cluster: PostgresCluster, database: str) -> list[tuple[Any, ...]]:
    with _admin(cluster.url()) as conn:
        return conn.execute(
            "SELECT jobname, schedule, command, username, active FROM cron.job"
            " WHERE database = %s ORDER BY jobid",
            [database],
        ).fetchall()


def _dbname(url: str) -> str:
    return url.rsplit("/", 1)[1]


# ---------------------------------------------------------------- without pg_cron


def test_without_pg_cron_every_command_exits_5_naming_it(database_url: str) -> None:
    """The suite's own server does not load pg_cron: one line naming it and what to do."""
    for args in (["install"], ["show"], ["remove"], ["show", "--json"]):
        message = assert_error(_cli(database_url, "pg-cron", *args), 5)
        assert "pg_cron" in message and "shared_preload_libraries" in message, message
        assert "Supabase" in message, message


# ---------------------------------------------------------------- install, show, remove


def test_install_registers_the_pass_as_the_tick_role_and_again_updates_it(
    cron_cluster: PostgresCluster, app_url: str
) -> None:
    database = _dbname(app_url)
    doc = ok_json(_cli(app_url, "pg-cron", "install", "--schedule", NEVER, "--json"))

    # The installer is a superuser: the job runs as the login role of grants.sql instead.
    assert doc["job"] | {"jobid": None} == {
        "jobid": None,
        "name": f"schedctl-tick:{database}",
        "schedule": NEVER,
        "command": "CALL schedctl.tick()",
        "database": database,
        "role": JOB_ROLE,
        "active": True,
    }
    assert doc["pg_cron"] == {"database": "postgres", "version": doc["pg_cron"]["version"]}
    assert doc["runs"] == []
    # Again, with another schedule: the same job, changed in place, not a second one.
    again = ok_json(_cli(app_url, "pg-cron", "install", "--schedule", "*/5  *  * * *", "--json"))
    assert again["job"]["jobid"] == doc["job"]["jobid"]
    assert _cron_jobs(cron_cluster, database) == [
        (f"schedctl-tick:{database}", "*/5 * * * *", "CALL schedctl.tick()", JOB_ROLE, True)
    ]
    shown = ok_json(_cli(app_url, "pg-cron", "show", "--json"))
    assert shown["job"] == again["job"]
    text = _cli(app_url, "pg-cron", "show")
    assert text.code == 0 and "CALL schedctl.tick()" in text.stdout and JOB_ROLE in text.stdout


def test_install_for_another_role_moves_the_job_to_it(
    cron_cluster: PostgresCluster, app_url: str
) -> None:
    database = _dbname(app_url)
    other = f"ticker_{uuid.uuid4().hex[:8]}"
    with _admin(app_url) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE schedctl_tick").format(sql.Identifier(other))
        )
    try:
        ok_json(_cli(app_url, "pg-cron", "install", "--schedule", NEVER, "--json"))
        doc = ok_json(
            _cli(app_url, "pg-cron", "install", "--schedule", NEVER, "--role", other, "--json")
        )
        assert doc["job"]["role"] == other
        assert [job[3] for job in _cron_jobs(cron_cluster, database)] == [other]
        # The job's role itself (not a superuser) sees its own job, once it may read where
        # pg_cron lives (a superuser-only setting) and use pg_cron's schema.
        as_other = app_url.replace("postgres@", f"{other}@", 1)
        message = assert_error(_cli(as_other, "pg-cron", "show"), 5)
        assert "pg_read_all_settings" in message, message
        with _admin(cron_cluster.url()) as conn:
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA cron TO {}").format(sql.Identifier(other)))
            conn.execute(sql.SQL("GRANT pg_read_all_settings TO {}").format(sql.Identifier(other)))
        assert ok_json(_cli(as_other, "pg-cron", "show", "--json"))["job"] == doc["job"]
    finally:
        with _admin(cron_cluster.url()) as conn:
            conn.execute("DELETE FROM cron.job WHERE username = %s", [other])
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(other)))
        with _admin(app_url) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(other)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(other)))


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("* * * *", "five cron fields"),
        ("* * * * * *", "five cron fields"),
        ("60 * * * *", "'60' is not a valid minute"),
        ("* 24 * * *", "'24' is not a valid hour"),
        ("* * 0 * *", "'0' is not a valid day of month"),
        ("* * * 13 *", "'13' is not a valid month"),
        ("* * * * 8", "'8' is not a valid day of week"),
        ("* * * * mon-frx", "'mon-frx' is not a valid day of week"),
        ("5-1 * * * *", "'5-1' is not a valid minute"),
        ("*/0 * * * *", "'*/0' is not a valid minute"),
        (";DROP * * * *", "';drop' is not a valid minute"),
        ("", "five cron fields"),
        ("0 seconds", "seconds must be 1-59"),
        ("60 seconds", "seconds must be 1-59"),
    ],
)
def test_install_refuses_a_schedule_of_the_wrong_shape_before_connecting(
    schedule: str, expected: str
) -> None:
    """Checked before any connection: there is no database to reach (exit 2, not 5)."""
    result = run_cli(["pg-cron", "install", "--schedule", schedule])
    message = assert_error(result, 2)
    assert expected in message, message


def test_install_refuses_seconds_on_pg_cron_1_4_and_writes_nothing(
    cron_cluster: PostgresCluster, app_url: str
) -> None:
    message = assert_error(_cli(app_url, "pg-cron", "install", "--schedule", "30 seconds"), 2)
    assert "schedules by the minute" in message and "1.5" in message, message
    assert _cron_jobs(cron_cluster, _dbname(app_url)) == []


def test_install_accepts_names_lists_ranges_and_steps(
    cron_cluster: PostgresCluster, app_url: str
) -> None:
    spec = "0,30 9-17/2 1-15 jan-jun mon-fri"
    doc = ok_json(_cli(app_url, "pg-cron", "install", "--schedule", spec, "--json"))
    assert doc["job"]["schedule"] == spec


def test_install_refuses_a_role_that_must_not_or_cannot_run_the_job(
    cron_cluster: PostgresCluster, app_url: str
) -> None:
    database = _dbname(app_url)
    suffix = uuid.uuid4().hex[:8]
    group, bare = f"group_{suffix}", f"bare_{suffix}"
    with _admin(app_url) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(bare)))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA schedctl FROM PUBLIC"))
    try:
        cases = [
            ("postgres", 2, "is a superuser"),
            (group, 2, "cannot log in"),
            ("nobody_at_all", 3, "no role 'nobody_at_all'"),
            (bare, 5, "lacks USAGE on schema schedctl"),
        ]
        for role, code, expected in cases:
            result = _cli(app_url, "pg-cron", "install", "--role", role, "--schedule", NEVER)
            message = assert_error(result, code)
            assert expected in message, (role, message)
        assert _cron_jobs(cron_cluster, database) == []
    finally:
        with _admin(app_url) as conn:
            for role in (group, bare):
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_show_and_remove_without_a_job_exit_3(cron_cluster: PostgresCluster, app_url: str) -> None:
    for args in (["show"], ["remove"]):
        message = assert_error(_cli(app_url, "pg-cron", *args), 3)
        assert "no pg_cron job" in message, message
    ok_json(_cli(app_url, "pg-cron", "install", "--schedule", NEVER, "--json"))
    removed = ok_json(_cli(app_url, "pg-cron", "remove", "--json"))
    assert removed == {
        "name": f"schedctl-tick:{_dbname(app_url)}",
        "database": _dbname(app_url),
        "removed": True,
    }
    assert _cron_jobs(cron_cluster, _dbname(app_url)) == []
    assert_error(_cli(app_url, "pg-cron", "remove"), 3)


def test_a_role_that_is_not_a_superuser_installs_the_job_as_itself(
    cron_cluster: PostgresCluster,
) -> None:
    """Supabase's case: pg_cron lives in the database, and the connecting role (not a
    superuser, allowed to use pg_cron's schema) makes the job with `cron.schedule`, run as
    itself; it sees, shows and removes its own job."""
    home = cron_cluster.url("postgres")
    role = f"owner_{uuid.uuid4().hex[:8]}"
    with _admin(home) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE schedctl_tick").format(sql.Identifier(role))
        )
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA cron TO {}").format(sql.Identifier(role)))
    as_role = home.replace("postgres@", f"{role}@", 1)
    try:
        doc = ok_json(_cli(as_role, "pg-cron", "install", "--schedule", NEVER, "--json"))
        assert (doc["job"]["name"], doc["job"]["role"]) == ("schedctl-tick", role)
        assert _cron_jobs(cron_cluster, "postgres") == [
            ("schedctl-tick", NEVER, "CALL schedctl.tick()", role, True)
        ]
        assert ok_json(_cli(as_role, "pg-cron", "show", "--json"))["job"] == doc["job"]
        # Another role's job is not one it may make, nor see.
        message = assert_error(
            _cli(as_role, "pg-cron", "install", "--schedule", NEVER, "--role", JOB_ROLE), 5
        )
        assert "schedule_in_database" in message, message
        ok_json(_cli(as_role, "pg-cron", "remove", "--json"))
        assert _cron_jobs(cron_cluster, "postgres") == []
    finally:
        with _admin(home) as conn:
            conn.execute("DELETE FROM cron.job WHERE username = %s", [role])
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_status_reports_a_failed_run_of_the_job_where_pg_cron_lives(
    cron_cluster: PostgresCluster,
) -> None:
    """In pg_cron's own database (Supabase's case) `status` reads pg_cron's record: a run
    that failed as a whole leaves no heartbeat, so this is where it shows. (A recorded run,
    written here; the real-minute test makes a real one.)"""
    home = cron_cluster.url("postgres")
    doc = ok_json(_cli(home, "pg-cron", "install", "--schedule", NEVER, "--json"))
    jobid = doc["job"]["jobid"]
    try:
        healthy = ok_json(_cli(home, "status", "--all-orgs", "--json"))
        assert healthy["pg_cron"] == {
            "name": "schedctl-tick",
            "schedule": NEVER,
            "role": JOB_ROLE,
            "active": True,
            "last_run": None,
        }
        with _admin(home) as conn:
            conn.execute(
                "INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command,"
                " status, return_message, start_time, end_time) VALUES"
                " (%(id)s, 1, 'postgres', %(role)s, 'CALL schedctl.tick()', 'succeeded', 'CALL',"
                "  now() - interval '2 minutes', now() - interval '2 minutes'),"
                " (%(id)s, 2, 'postgres', %(role)s, 'CALL schedctl.tick()', 'failed',"
                "  'ERROR:  permission denied for table jobs', now() - interval '1 minute',"
                "  now() - interval '1 minute'),"
                " (%(id)s, 3, 'postgres', %(role)s, 'CALL schedctl.tick()', 'running', NULL,"
                "  now(), NULL)",
                {"id": jobid, "role": JOB_ROLE},
            )
        result = _cli(home, "status", "--all-orgs", "--json")
        assert result.code == 1, result.stderr
        report = json.loads(result.stdout)
        assert report["pg_cron"]["last_run"]["status"] == "failed"  # not the running one
        assert report["problems"] == [
            "the last pg_cron run of schedctl-tick failed at "
            f"{report['pg_cron']['last_run']['start_time']}: "
            "ERROR:  permission denied for table jobs"
        ]
        gauges = _cli(home, "status", "--prometheus")
        assert "schedctl_pg_cron_last_run_success 0\n" in gauges.stdout, gauges.stdout
        shown = ok_json(_cli(home, "pg-cron", "show", "--json"))
        assert [run["status"] for run in shown["runs"]] == ["running", "failed", "succeeded"]
        text = _cli(home, "pg-cron", "show")
        assert "permission denied for table jobs" in text.stdout, text.stdout
    finally:
        with _admin(home) as conn:
            conn.execute("DELETE FROM cron.job_run_details WHERE jobid = %s", [jobid])
            conn.execute("DELETE FROM cron.job WHERE jobid = %s", [jobid])


# ---------------------------------------------------------------- a real minute


def _next_minute(conn: psycopg.Connection[tuple[Any, ...]]) -> datetime:
    """The first whole minute by the database clock at least 8 s away (time to start the
    CLI ticks before it)."""
    found: datetime = conn.execute(
        "SELECT date_trunc('minute', now() + interval '68 seconds' - interval '1 microsecond')"
    ).fetchone()[0]  # type: ignore[index]
    return found


def _finished_run(
    cluster: PostgresCluster, database: str, after: datetime
) -> dict[str, Any] | None:
    """The first finished run of the job of `database` that started at or after `after`."""
    with _admin(cluster.url()) as conn:
        row = conn.execute(
            "SELECT d.status, d.return_message, d.job_pid, d.start_time"
            " FROM cron.job_run_details d JOIN cron.job j USING (jobid)"
            " WHERE j.database = %s AND d.start_time >= %s"
            "   AND d.status IN ('succeeded', 'failed')"
            " ORDER BY d.start_time LIMIT 1",
            [database, after],
        ).fetchone()
    if row is None:
        return None
    return dict(zip(("status", "message", "pid", "start_time"), row, strict=True))


def _wait_for_run(cluster: PostgresCluster, database: str, after: datetime) -> dict[str, Any]:
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        found = _finished_run(cluster, database, after)
        if found is not None:
            return found
        time.sleep(0.5)
    pytest.fail(f"no pg_cron run of {database}'s job after {after}:\n{cluster.log()[-3000:]}")


def _heartbeat(url: str) -> tuple[Any, ...] | None:
    """pg_cron's heartbeat in the database of `url`: ok, due, created, failed."""
    with _admin(url) as conn:
        return conn.execute(
            "SELECT ok, due, created, failed FROM schedctl.tick_heartbeats WHERE host = 'pg_cron'"
        ).fetchone()


def test_a_real_minute_pg_cron_and_cli_ticks_serve_each_slot_once(
    cron_cluster: PostgresCluster, app_url: str
) -> None:
    """In `app` (pg_cron lives elsewhere): 10,000 schedulers come due at the next whole minute,
    when pg_cron calls the pass and two loops of CLI ticks race it; each slot gets one job
    with its first task (the hooks), pg_cron's pass sends NOTIFY, `show` lists the run and
    `status` counts it. In `postgres` (pg_cron's own database, as on Supabase) the job's role
    lost a privilege after the install: the run fails, and `show` and `status` say so."""
    home = cron_cluster.url("postgres")
    count = 10_000  # several batches of the procedure, a pass long enough to race
    with _admin(app_url) as conn, conn.transaction():  # not due while the test sets up
        seed_due(conn, count, prefix="cron", orgs=5)
        conn.execute("UPDATE schedulers SET next_run_at = now() + interval '1 day'")
    hooks = _cli(
        app_url,
        "hooks",
        "set",
        "--create-job",
        "public.schedctl_create_job",
        "--cancel-job",
        "public.schedctl_cancel_job",
        "--notify",
        CHANNEL,
        "--json",
    )
    ok_json(hooks)
    ok_json(_cli(app_url, "pg-cron", "install", "--json"))
    installed = ok_json(_cli(home, "pg-cron", "install", "--json"))
    assert installed["job"]["name"] == "schedctl-tick"  # pg_cron lives in this database
    with _admin(home) as conn:  # after the install, which checks the role's privileges
        conn.execute("REVOKE USAGE ON SCHEMA schedctl FROM schedctl_tick")
    with _admin(app_url) as conn:  # due at a minute the jobs are surely installed for
        minute = _next_minute(conn)
        conn.execute("UPDATE schedulers SET next_run_at = %s", [minute])
    try:
        listener = _admin(app_url)
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        env = {"SCHEDCTL_DATABASE_URL": app_url}
        with _admin(app_url) as conn:
            wait = conn.execute("SELECT extract(epoch FROM %s - now())", [minute]).fetchone()
        time.sleep(max(0.0, float(wait[0]) - 5))  # type: ignore[index]
        give_up = time.monotonic() + 150
        # Two loops of CLI ticks, from just before the minute until pg_cron's pass has
        # finished; its heartbeat read at once (the next minute's run would replace it).
        ticks: list[Result] = []
        running: list[subprocess.Popen[str]] = []
        run: dict[str, Any] | None = None
        while run is None:
            for proc in [p for p in running if p.poll() is not None]:
                running.remove(proc)
                ticks.append(finish_cli_process(proc))
            while len(running) < 2:
                running.append(start_cli_process(["tick", "--json"], env))
            run = _finished_run(cron_cluster, _dbname(app_url), minute)
            beat = _heartbeat(app_url)
            time.sleep(0.1)
            if time.monotonic() > give_up:
                pytest.fail(f"no pg_cron run after {minute}:\n{cron_cluster.log()[-3000:]}")
        ticks += [finish_cli_process(proc) for proc in running]
        final = _cli(app_url, "tick", "--json")  # nothing left for it
        assert final.code == 0, final.stderr
        assert json.loads(final.stdout)["due"] == 0
        assert all(t.code == 0 for t in ticks), [t.stderr for t in ticks if t.code]
        assert run["status"] == "succeeded", run

        with _admin(app_url) as conn:
            # Every scheduler: one job for the minute's slot, made with its first task.
            per_scheduler = conn.execute(
                "SELECT count(j.id), count(DISTINCT t.id) FROM schedulers s"
                " LEFT JOIN jobs j ON j.scheduler_id = s.id"
                " LEFT JOIN tasks t ON t.job_id = j.id"
                " GROUP BY s.id"
            ).fetchall()
            assert len(per_scheduler) == count
            assert set(per_scheduler) == {(1, 1)}
            moved = conn.execute(
                "SELECT count(*) FROM schedulers WHERE next_run_at > %s", [minute]
            ).fetchone()[0]  # type: ignore[index]
            assert moved == count
            assert beat is not None and beat[0] is True, beat
        cli_made = sum(json.loads(t.stdout)["created"] for t in ticks)
        # pg_cron's own pass made jobs: its batches were announced from its session.
        notifies = [n for n in listener.notifies(timeout=1, stop_after=10_000)]
        from_pg_cron = [n for n in notifies if n.pid == run["pid"]]
        assert from_pg_cron, (run, cli_made, [(n.pid, n.payload) for n in notifies])
        # pg_cron's pass and the CLI ticks between them served every slot, none twice.
        assert beat[2] + cli_made == count, (beat, cli_made)
        assert beat[3] == 0

        shown = ok_json(_cli(app_url, "pg-cron", "show", "--json"))
        assert shown["runs"][0]["status"] == "succeeded"
        assert shown["runs"][0]["pid"] == run["pid"]

        # status reads pg_cron's heartbeat as any tick's: with the CLI ticks' rows gone, the
        # last tick is pg_cron's, in the report and in the Prometheus gauges.
        with _admin(app_url) as conn:
            conn.execute("DELETE FROM schedctl.tick_heartbeats WHERE host <> 'pg_cron'")
        status = ok_json(_cli(app_url, "status", "--all-orgs", "--json"))
        assert status["last_tick"]["host"] == "pg_cron" and status["last_tick"]["ok"]
        assert status["ok"], status["problems"]
        gauges = _cli(app_url, "status", "--prometheus")
        assert gauges.code == 0, gauges.stderr
        assert "schedctl_tick_last_success 1\n" in gauges.stdout, gauges.stdout
        assert f"schedctl_tick_last_created {beat[2]}\n" in gauges.stdout, gauges.stdout

        # pg_cron's own database: the run failed for the missing privilege.
        failed = _wait_for_run(cron_cluster, "postgres", minute)
        assert failed["status"] == "failed", failed
        assert "permission denied for schema schedctl" in failed["message"], failed
        shown = ok_json(_cli(home, "pg-cron", "show", "--json"))
        assert shown["runs"][0]["status"] == "failed"
        assert "permission denied" in shown["runs"][0]["message"]
        status_result = _cli(home, "status", "--all-orgs", "--json")
        assert status_result.code == 1, status_result.stderr
        problems = json.loads(status_result.stdout)["problems"]
        assert any("pg_cron run of schedctl-tick failed" in p for p in problems), problems
        assert any("permission denied for schema schedctl" in p for p in problems), problems
        text = _cli(home, "status", "--all-orgs")
        assert "pg_cron" in text.stdout and "failed at" in text.stdout, text.stdout

        for url in (app_url, home):
            ok_json(_cli(url, "pg-cron", "remove", "--json"))
        assert _cron_jobs(cron_cluster, "postgres") == []
        assert _cron_jobs(cron_cluster, _dbname(app_url)) == []
        listener.close()
    finally:
        with _admin(home) as conn:
            conn.execute("GRANT USAGE ON SCHEMA schedctl TO schedctl_tick")
            conn.execute("DELETE FROM cron.job WHERE database = 'postgres'")
