"""Benchmark of `schedctl tick`: speed against a one-statement floor and the seed's
row-by-row loop, idle cost against a bare Python start-up, and peak memory.

    python bench/bench_tick.py [--database-url URL] [--n 10000] [--runs 7] [--only PART]

URL names a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres);
the benchmark creates its own scratch databases there and drops them at the end. It
prints its figures, each target with PASS or FAIL, and exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PARTS = ("speed", "idle", "memory", "hooks", "hooks-set", "zones")
SEED_BATCH = 50  # the seed loop takes 50 due schedulers per tick ...
SEED_TICK_SECONDS = 30  # ... every 30 seconds

# The floor: one statement making the same jobs, recording the same served slots and moving
# the same schedules on.
FLOOR_SQL = """
WITH due AS MATERIALIZED (
    SELECT id, domain_id, organisation_id, next_run_at, schedule_interval_hours, concurrency,
           find_links, max_pages, include_paths, exclude_paths, required_workers,
           gen_random_uuid()::text AS job_id
    FROM schedulers
    WHERE is_enabled AND next_run_at <= now()
),
made AS (
    INSERT INTO jobs (
        id, domain_id, organisation_id, status, progress, created_at, concurrency,
        find_links, max_pages, include_paths, exclude_paths, required_workers,
        source_type, source_detail, scheduler_id
    )
    SELECT job_id, domain_id, organisation_id, 'pending', 0, now(),
           concurrency, find_links, max_pages, include_paths, exclude_paths,
           required_workers, 'scheduler', id::text, id
    FROM due
),
slots AS (
    INSERT INTO schedctl.served_slots (scheduler_id, slot, job_id)
    SELECT id, next_run_at, job_id FROM due
)
UPDATE schedulers s
SET next_run_at = due.next_run_at + make_interval(hours => due.schedule_interval_hours * (
        floor(extract(epoch FROM now() - due.next_run_at)
              / (due.schedule_interval_hours * 3600))::integer + 1)),
    updated_at = now()
FROM due
WHERE s.id = due.id
"""

# The floor of the hooks part: the same statement, also inserting each job's first task (the
# root URL of its domain) as the example create-job hook of contrib/hooks does.
HOOK_FLOOR_SQL = FLOOR_SQL.replace(
    "slots AS (",
    """tasks AS (
    INSERT INTO tasks (job_id, url)
    SELECT due.job_id, 'https://' || d.name || '/' FROM due JOIN domains d ON d.id = due.domain_id
),
slots AS (""",
)
EXAMPLE_HOOKS = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "contrib", "hooks", "first-task.sql"
)

# The seed plan's loop, one round trip per step (each its own autocommit statement).
SEED_SELECT_DUE = """
SELECT id, domain_id, organisation_id, schedule_interval_hours, concurrency, find_links,
       max_pages, include_paths, exclude_paths, required_workers
FROM schedulers
WHERE is_enabled AND next_run_at <= now()
ORDER BY next_run_at
LIMIT %(batch)s
"""
SEED_DOMAIN = "SELECT name FROM domains WHERE id = %(id)s"
SEED_ACTIVE_JOB = """
SELECT id FROM jobs
WHERE domain_id = %(domain_id)s AND organisation_id = %(organisation_id)s
  AND status IN ('pending', 'initializing', 'running', 'paused')
LIMIT 1
"""
SEED_CANCEL = "UPDATE jobs SET status = 'cancelled', completed_at = now() WHERE id = %(id)s"
SEED_UPSERT_DOMAIN = """
INSERT INTO domains (name) VALUES (%(name)s)
ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
RETURNING id
"""
SEED_INSERT_JOB = """
INSERT INTO jobs (
    id, domain_id, organisation_id, status, progress, created_at, concurrency, find_links,
    max_pages, include_paths, exclude_paths, required_workers, source_type, source_detail
) VALUES (
    gen_random_uuid()::text, %(domain_id)s, %(organisation_id)s, 'pending', 0, now(),
    %(concurrency)s, %(find_links)s, %(max_pages)s, %(include_paths)s, %(exclude_paths)s,
    %(required_workers)s, 'scheduler', %(scheduler_id)s
)
RETURNING id
"""
SEED_LINK_JOB = "UPDATE jobs SET scheduler_id = %(scheduler_id)s WHERE id = %(job_id)s"
SEED_ADVANCE = """
UPDATE schedulers
SET next_run_at = now() + make_interval(hours => %(hours)s), updated_at = now()
WHERE id = %(id)s
"""

# The bare start-up that an idle tick is held against.
BASELINE_CODE = (
    "import os, typer, pydantic_settings, psycopg\n"
    "with psycopg.connect(os.environ['SCHEDCTL_DATABASE_URL']) as conn:\n"
    "    conn.execute('SELECT 1').fetchone()\n"
)


# ---------------------------------------------------------------- databases


@dataclass
class Server:
    """The server under test, and the scratch databases made on it."""

    url: str
    made: list[str] = field(default_factory=list)
    prefix: str = f"schedctl_bench_{os.getpid()}"

    def conninfo(self, dbname: str) -> str:
        params = conninfo_to_dict(self.url)
        params["dbname"] = dbname
        return make_conninfo("", **params)

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def name(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"

    def create(self, dbname: str, template: str | None = None) -> str:
        """A new database, empty or copied from `template`; returns its conninfo."""
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            if template:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(statement)
        if dbname not in self.made:
            self.made.append(dbname)
        return self.conninfo(dbname)

    def drop_all(self) -> None:
        with self.admin() as conn:
            for dbname in reversed(self.made):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )
        self.made.clear()


def schedctl_env(url: str) -> dict[str, str]:
    """The environment of a measured schedctl: this one's, less its settings, but for
    SCHEDCTL_TICK_CONNECTIONS (to measure a second connection)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith("SCHEDCTL_") or k == "SCHEDCTL_TICK_CONNECTIONS")
        and k != "DATABASE_URL"
    }
    env["SCHEDCTL_DATABASE_URL"] = url
    return env


def psql_env(url: str) -> dict[str, str]:
    """libpq variables for psql, so that no password shows on a command line."""
    names = {
        "host": "PGHOST",
        "port": "PGPORT",
        "user": "PGUSER",
        "password": "PGPASSWORD",
        "dbname": "PGDATABASE",
        "sslmode": "PGSSLMODE",
    }
    env = dict(os.environ)
    for key, value in conninfo_to_dict(url).items():
        if key in names and value is not None:
            env[names[key]] = str(value)
    return env


def populate(server: Server, dbname: str, *, due: int, total: int) -> str:
    """A migrated database holding `total` schedulers of which `due` are due: every
    interval, up to four grid times missed, each an hour or less past its slot, so the
    next grid time is hours away and a second tick finds nothing due."""
    url = server.create(dbname)
    migrated = subprocess.run(
        [sys.executable, "-m", "schedctl", "migrate"],
        env=schedctl_env(url),
        capture_output=True,
        text=True,
    )
    if migrated.returncode != 0:
        sys.exit(f"migrate failed: {migrated.stderr.strip()}")
    orgs = max(1, min(1000, total // 100))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO organisations (name) SELECT 'bench org ' || g "
            "FROM generate_series(1, %(orgs)s) g",
            {"orgs": orgs},
        )
        conn.execute(
            "INSERT INTO domains (name) SELECT 'bench-' || g || '.com' "
            "FROM generate_series(1, %(total)s) g",
            {"total": total},
        )
        conn.execute(
            """
            WITH org AS (
                SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM organisations
            ),
            dom AS (
                SELECT id, row_number() OVER (ORDER BY id) AS k FROM domains
            )
            INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours,
                                    next_run_at)
            SELECT dom.id, org.id, (ARRAY[6, 12, 24, 48])[1 + dom.k %% 4],
                   CASE WHEN dom.k <= %(due)s
                        THEN now()
                             - make_interval(hours => (dom.k %% 5)::integer
                                                      * (ARRAY[6, 12, 24, 48])[1 + dom.k %% 4])
                             - interval '1 minute' - (dom.k %% 3600) * interval '1 second'
                        ELSE now() + interval '1 day' + dom.k * interval '1 millisecond'
                   END
            FROM dom JOIN org ON org.k = dom.k %% %(orgs)s
            """,
            {"due": due, "orgs": orgs},
        )
        conn.execute("VACUUM ANALYZE")
        # A vacuum that one run's writes set off would land in the next run's figures.
        for table in ("schedulers", "jobs", "domains", "organisations"):
            conn.execute(
                sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = off)").format(
                    sql.Identifier(table)
                )
            )
        counted = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE next_run_at <= now()) FROM schedulers"
        ).fetchone()
    assert counted == (total, due), counted
    return url


# Twenty zones of both hemispheres, with and without summer time, for the `zones` part.
BENCH_ZONES = (
    "Europe/London", "Europe/Berlin", "Europe/Helsinki", "America/New_York", "America/Chicago",
    "America/Denver", "America/Los_Angeles", "America/Sao_Paulo", "America/Santiago",
    "America/Havana", "Australia/Sydney", "Australia/Adelaide", "Australia/Lord_Howe",
    "Pacific/Auckland", "Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "Africa/Cairo",
    "Asia/Tehran", "UTC",
)  # fmt: skip


def zone_schedules(url: str) -> None:
    """Give every other scheduler a wall-clock time of day in one of BENCH_ZONES (a spread of
    up to an hour for half of those), its next run moved back onto that grid, still due
    (up to four grid times behind, as populate's)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            WITH chosen AS (
                SELECT s.id, s.schedule_interval_hours AS hours, k,
                       (%(zones)s::text[])[1 + (k / 2) %% 20] AS zone,
                       CASE WHEN k %% 4 = 0 THEN 3600 ELSE 0 END AS spread
                FROM (SELECT id, schedule_interval_hours,
                             row_number() OVER (ORDER BY id) AS k
                      FROM schedulers) AS s
                WHERE k %% 2 = 0
            )
            INSERT INTO schedctl.scheduler_settings (
                scheduler_id, at_time, time_zone, grid_anchor, spread_seconds
            )
            SELECT id, t.at_time, zone, date '2000-01-02' + t.at_time, spread
            FROM chosen
            -- a time of day 1 to 5 hours from now: the grid's next time is hours away, so
            -- a second tick finds nothing due
            CROSS JOIN LATERAL (
                SELECT ((now() + interval '1 hour' + (k %% 240) * interval '1 minute')
                        AT TIME ZONE zone)::time(0) AS at_time
            ) AS t
            """,
            {"zones": list(BENCH_ZONES)},
        )
        conn.execute(
            """
            UPDATE schedulers s
            SET next_run_at = schedctl.grid_slot(
                schedctl.grid_next_index(
                    s.next_run_at, s.schedule_interval_hours, st.grid_anchor, st.time_zone,
                    schedctl.spread_offset(s.id, st.spread_seconds)) - 1,
                s.schedule_interval_hours, st.grid_anchor, st.time_zone,
                schedctl.spread_offset(s.id, st.spread_seconds))
            FROM schedctl.scheduler_settings st
            WHERE st.scheduler_id = s.id AND st.grid_anchor IS NOT NULL
            """
        )
        # They existed before the slots they are due for, as real ones did.
        conn.execute("UPDATE schedulers SET created_at = next_run_at - interval '30 days'")
        conn.execute("VACUUM ANALYZE")


# ---------------------------------------------------------------- measuring


@dataclass
class Run:
    seconds: float
    max_rss_kb: int
    stdout: str


def run_process(argv: list[str], env: dict[str, str]) -> Run:
    """Run a process to its end: wall time, and the peak RSS of that process alone."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv[:4])} exited {proc.returncode}: {err.read().strip()}")
        stdout = out.read()
    return Run(seconds, int(usage.ru_maxrss), stdout)


TICK = [sys.executable, "-m", "schedctl", "tick", "--json"]


def tick(url: str, expect_created: int) -> Run:
    run = run_process(TICK, schedctl_env(url))
    summary = json.loads(run.stdout)
    if (summary["due"], summary["created"], summary["failed"]) != (
        expect_created,
        expect_created,
        0,
    ):
        sys.exit(f"tick made an unexpected pass: {run.stdout[:200]}")
    run.stdout = ""
    return run


def baseline(url: str) -> Run:
    return run_process([sys.executable, "-c", BASELINE_CODE], schedctl_env(url))


def floor(url: str, expect: int, statement: str = FLOOR_SQL) -> float:
    """Seconds the one-statement floor takes, as psql's \\timing reports it."""
    done = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "\\timing on", "-c", statement],
        env=psql_env(url),
        capture_output=True,
        text=True,
        check=True,
    )
    if f"UPDATE {expect}" not in done.stdout:
        sys.exit(f"the floor statement did not update {expect} rows: {done.stdout}")
    match = re.search(r"Time: ([\d.]+) ms", done.stdout)
    assert match, done.stdout
    return float(match.group(1)) / 1000


def timed_psql(url: str, statement: str) -> float:
    """Seconds a statement takes, as psql's \\timing reports it."""
    done = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "\\timing on", "-c", statement],
        env=psql_env(url),
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Time: ([\d.]+) ms", done.stdout)
    assert match, done.stdout
    return float(match.group(1)) / 1000


def row_by_row(url: str, expect: int) -> tuple[float, float]:
    """Seconds the seed's loop takes to serve every due scheduler, 50 at a time back to
    back (no 30-second pause between its ticks): its round trips, each statement its own
    transaction, as the seed's code runs them; no process start-up is counted. Also the
    CPU time this client spent in the loop (psycopg's own work between round trips)."""
    made = 0
    with psycopg.connect(url, autocommit=True) as conn:
        start, cpu_start = time.perf_counter(), time.process_time()
        while True:
            due = conn.execute(SEED_SELECT_DUE, {"batch": SEED_BATCH}).fetchall()
            if not due:
                break
            for (
                sid,
                domain_id,
                org_id,
                hours,
                concurrency,
                find_links,
                max_pages,
                include_paths,
                exclude_paths,
                workers,
            ) in due:
                (name,) = conn.execute(SEED_DOMAIN, {"id": domain_id}).fetchone()  # type: ignore[misc]
                active = conn.execute(
                    SEED_ACTIVE_JOB, {"domain_id": domain_id, "organisation_id": org_id}
                ).fetchone()
                if active:
                    conn.execute(SEED_CANCEL, {"id": active[0]})
                (domain_id,) = conn.execute(SEED_UPSERT_DOMAIN, {"name": name}).fetchone()  # type: ignore[misc]
                (job_id,) = conn.execute(
                    SEED_INSERT_JOB,
                    {
                        "domain_id": domain_id,
                        "organisation_id": org_id,
                        "concurrency": concurrency,
                        "find_links": find_links,
                        "max_pages": max_pages,
                        "include_paths": include_paths,
                        "exclude_paths": exclude_paths,
                        "required_workers": workers,
                        "scheduler_id": str(sid),
                    },
                ).fetchone()  # type: ignore[misc]
                conn.execute(SEED_LINK_JOB, {"scheduler_id": sid, "job_id": job_id})
                conn.execute(SEED_ADVANCE, {"hours": hours, "id": sid})
                made += 1
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if made != expect:
        sys.exit(f"the row-by-row loop made {made} jobs, expected {expect}")
    return seconds, cpu


def median(values: list[float]) -> float:
    return statistics.median(values)


# ---------------------------------------------------------------- report


@dataclass
class Report:
    failures: int = 0

    def figure(self, label: str, value: str) -> None:
        print(f"  {label:<50} {value}", flush=True)

    def target(self, label: str, value: float, limit: float, *, at_least: bool = False) -> None:
        ok = value >= limit if at_least else value <= limit
        self.failures += not ok
        sign = ">=" if at_least else "<="
        print(
            f"  {label:<50} {value:8.2f}   target {sign} {limit:g}   {'PASS' if ok else 'FAIL'}",
            flush=True,
        )


def ms(seconds: float, runs: list[float] | None = None) -> str:
    text = f"{seconds * 1000:8.1f} ms"
    if runs and len(runs) > 1:
        text += f"   (runs: {min(runs) * 1000:.0f} to {max(runs) * 1000:.0f} ms)"
    return text


@contextmanager
def section(title: str) -> Iterator[None]:
    print(f"\n{title}", flush=True)
    start = time.perf_counter()
    yield
    print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)


# ---------------------------------------------------------------- parts


def bench_speed(server: Server, report: Report, n: int, runs: int, seed_runs: int) -> None:
    with section(f"speed: {n:,} due schedulers (median of {runs} runs)"):
        template = server.name("speed_tpl")
        populate(server, template, due=n, total=n)
        scratch = server.name("speed")
        ticks, idles, floors = [], [], []
        for run in range(runs + 1):  # the first round warms the caches and is not counted
            url = server.create(scratch, template)
            tick_seconds = tick(url, n).seconds
            idle_seconds = tick(url, 0).seconds
            url = server.create(scratch, template)
            floor_seconds = floor(url, n)
            if run:
                ticks.append(tick_seconds)
                idles.append(idle_seconds)
                floors.append(floor_seconds)
        calls = []
        for run in range(runs + 1):
            url = server.create(scratch, template)
            seconds = timed_psql(url, "CALL schedctl.tick()")
            if run:
                calls.append(seconds)
        seeds, seed_cpus = [], []
        for _ in range(seed_runs):
            url = server.create(scratch, template)
            seconds, cpu = row_by_row(url, n)
            seeds.append(seconds)
            seed_cpus.append(cpu)
        whole, idle, bare = median(ticks), median(idles), median(floors)
        own = whole - idle
        report.figure("tick, whole process", ms(whole, ticks))
        report.figure("tick with nothing due, whole process", ms(idle, idles))
        report.figure("tick's own work (the difference)", ms(own))
        report.figure("floor: one statement through psql", ms(bare, floors))
        report.target("tick's own work / floor", own / bare, 1.5)
        call = median(calls)
        report.figure("CALL schedctl.tick() through psql", ms(call, calls))
        report.target("CALL schedctl.tick() / tick's own work", call / own, 1.2)
        if seeds:
            seed = median(seeds)
            report.figure(
                f"row-by-row seed loop, {SEED_BATCH} at a time (median of {seed_runs})",
                f"{seed:8.2f} s   (this client's CPU in it: {median(seed_cpus):.2f} s)",
            )
            report.figure(
                f"  (the seed at {SEED_BATCH} every {SEED_TICK_SECONDS} s would need)",
                f"{-(-n // SEED_BATCH) * SEED_TICK_SECONDS / 60:8.1f} min",
            )
            report.target(
                "row-by-row / tick whole process (x faster)", seed / whole, 40, at_least=True
            )


def install_example_hooks(url: str, option: str = "--create-job") -> None:
    """contrib/hooks/first-task.sql, and its create-job function (or, with --create-jobs,
    its set-based one) set as the hook."""
    with open(EXAMPLE_HOOKS, encoding="utf-8") as script, psycopg.connect(url) as conn:
        conn.execute(script.read())
    run_process(
        [
            sys.executable,
            "-m",
            "schedctl",
            "hooks",
            "set",
            option,
            "public.schedctl_create_job" + ("s" if option == "--create-jobs" else ""),
        ],
        schedctl_env(url),
    )


def add_finished_jobs(url: str) -> None:
    """A finished job with its task per scheduler, as a host that has been running has. On an
    empty jobs table, the foreign key check from tasks to jobs is planned once per session
    (when jobs is empty, as a sequential scan) and then kept while jobs grows: a pass over
    N jobs would cost N squared, an artefact of a fresh database that no host has."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            WITH made AS (
                INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                                  completed_at, concurrency, find_links, max_pages, source_type)
                SELECT gen_random_uuid()::text, domain_id, organisation_id, 'completed', 1,
                       now() - interval '2 days', now() - interval '2 days', 20, TRUE, 0,
                       'dashboard'
                FROM schedulers
                RETURNING id
            )
            INSERT INTO tasks (job_id, url, status) SELECT id, 'https://example.com/', 'completed'
            FROM made
            """
        )
        conn.execute("VACUUM ANALYZE jobs")
        conn.execute("VACUUM ANALYZE tasks")
        conn.execute("ALTER TABLE tasks SET (autovacuum_enabled = off)")


def bench_hooks(
    server: Server, report: Report, n: int, runs: int, option: str = "--create-job"
) -> None:
    with section(f"hooks: {n:,} due, a {option[2:]} hook making the job and its first task"):
        template = server.name("hooks_tpl")
        url = populate(server, template, due=n, total=n)
        install_example_hooks(url, option)
        add_finished_jobs(url)
        scratch = server.name("hooks")
        ticks, idles, floors = [], [], []
        for run in range(runs + 1):  # the first round warms the caches and is not counted
            url = server.create(scratch, template)
            tick_seconds = tick(url, n).seconds
            with psycopg.connect(url) as conn:
                made = conn.execute(
                    "SELECT count(*) FROM tasks WHERE status = 'pending'"
                ).fetchone()
            if made != (n,):
                sys.exit(f"the hook made {made} tasks, expected {n}")
            idle_seconds = tick(url, 0).seconds
            url = server.create(scratch, template)
            floor_seconds = floor(url, n, HOOK_FLOOR_SQL)
            if run:
                ticks.append(tick_seconds)
                idles.append(idle_seconds)
                floors.append(floor_seconds)
        whole, idle, bare = median(ticks), median(idles), median(floors)
        own = whole - idle
        report.figure("tick with the hook, whole process", ms(whole, ticks))
        report.figure("tick with nothing due, whole process", ms(idle, idles))
        report.figure("tick's own work (the difference)", ms(own))
        report.figure("floor: jobs and tasks in one statement (psql)", ms(bare, floors))
        report.target("tick's own work with the hook / floor", own / bare, 1.5)


def bench_zones(server: Server, report: Report, n: int, runs: int) -> None:
    with section(
        f"zones: {n:,} due schedulers, half at a time of day in {len(BENCH_ZONES)} zones "
        f"(median of {runs} runs)"
    ):
        template = server.name("zones_tpl")
        zone_schedules(populate(server, template, due=n, total=n))
        scratch = server.name("zones")
        ticks, idles, floors = [], [], []
        for run in range(runs + 1):  # the first round warms the caches and is not counted
            url = server.create(scratch, template)
            tick_seconds = tick(url, n).seconds
            idle_seconds = tick(url, 0).seconds
            url = server.create(scratch, template)
            floor_seconds = floor(url, n)
            if run:
                ticks.append(tick_seconds)
                idles.append(idle_seconds)
                floors.append(floor_seconds)
        whole, idle, bare = median(ticks), median(idles), median(floors)
        own = whole - idle
        report.figure("tick, whole process", ms(whole, ticks))
        report.figure("tick with nothing due, whole process", ms(idle, idles))
        report.figure("tick's own work (the difference)", ms(own))
        report.figure("floor: one statement through psql (elapsed grid)", ms(bare, floors))
        report.target("tick's own work / floor", own / bare, 1.5)


def bench_idle(server: Server, report: Report, rounds: int, big: int) -> None:
    with section(f"idle: nothing due (median of {rounds} interleaved rounds)"):
        small = populate(server, server.name("idle_small"), due=0, total=10)
        large = populate(server, server.name("idle_large"), due=0, total=big)
        bases, smalls, larges = [], [], []
        for url in (small, large):  # warm the caches once
            tick(url, 0)
        for _ in range(rounds):
            bases.append(baseline(small).seconds)
            smalls.append(tick(small, 0).seconds)
            larges.append(tick(large, 0).seconds)
        base, idle_small, idle_large = median(bases), median(smalls), median(larges)
        report.figure(
            "python -c: import typer, pydantic_settings, psycopg; one query", ms(base, bases)
        )
        report.figure("tick, 10 schedulers, none due", ms(idle_small, smalls))
        report.figure(f"tick, {big:,} schedulers, none due", ms(idle_large, larges))
        report.target("tick (10 schedulers) / python -c", idle_small / base, 1.3)
        report.target(f"tick ({big:,} schedulers) / tick (10)", idle_large / idle_small, 1.2)


def bench_memory(server: Server, report: Report, small: int, large: int) -> None:
    with section("memory: peak RSS of the tick process"):
        rss = {}
        for due in (small, large):
            url = populate(server, server.name(f"mem_{due}"), due=due, total=due)
            run = tick(url, due)
            rss[due] = run.max_rss_kb
            report.figure(
                f"tick with {due:,} due",
                f"{rss[due] / 1024:8.1f} MiB   (in {run.seconds:.2f} s, whole process)",
            )
        report.target(f"peak RSS, {large:,} due / {small:,} due", rss[large] / rss[small], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"a server to create scratch databases on (default {DEFAULT_URL})",
    )
    parser.add_argument("--n", type=int, default=10_000, help="due schedulers (default 10000)")
    parser.add_argument(
        "--runs",
        type=int,
        default=7,
        help="runs of each cheap measurement; the median is shown (default 7)",
    )
    parser.add_argument(
        "--seed-runs", type=int, default=1, help="runs of the slow row-by-row loop (default 1)"
    )
    parser.add_argument(
        "--idle-rounds", type=int, default=25, help="rounds of the idle measurements (default 25)"
    )
    parser.add_argument(
        "--idle-large",
        type=int,
        default=1_000_000,
        help="schedulers in the large idle database (default 1000000)",
    )
    parser.add_argument(
        "--memory",
        type=int,
        nargs=2,
        default=(1_000, 100_000),
        metavar=("SMALL", "LARGE"),
        help="due schedulers of the two memory runs (default 1000 100000)",
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="run only this part (repeatable): speed, idle, memory, hooks, hooks-set, zones",
    )
    args = parser.parse_args()
    parts = args.only or list(PARTS)

    server = Server(args.database_url)
    report = Report()
    with server.admin() as conn:
        version = conn.execute("SHOW server_version").fetchone()
    print(
        f"schedctl tick benchmark: PostgreSQL {version[0] if version else '?'}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    steps: dict[str, Callable[[], None]] = {
        "speed": lambda: bench_speed(server, report, args.n, args.runs, args.seed_runs),
        "idle": lambda: bench_idle(server, report, args.idle_rounds, args.idle_large),
        "memory": lambda: bench_memory(server, report, *args.memory),
        "hooks": lambda: bench_hooks(server, report, args.n, args.runs),
        "hooks-set": lambda: bench_hooks(server, report, args.n, args.runs, "--create-jobs"),
        "zones": lambda: bench_zones(server, report, args.n, args.runs),
    }
    try:
        for part in parts:
            steps[part]()
    finally:
        server.drop_all()
    print(
        f"\n{'all targets met' if not report.failures else f'{report.failures} target(s) missed'}"
    )
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
