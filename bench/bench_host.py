"""Benchmark of `schedctl tick` on a realistic host: years of job history, the host's own
triggers, row-level security and indexes, and the previous crawl still running for half of
the due domains, so that `replace` cancels as many jobs as it makes.

    python bench/bench_host.py [--database-url URL] [--n 10000] [--history 200] [--runs 5]
                               [--only PART]

Each speed part is measured with fresh statistics (VACUUM ANALYZE after the running jobs were
made) and, in the `stale` parts, as autovacuum leaves them on a busy host: the running jobs
inserted after the jobs table's last ANALYZE (autovacuum off), with and without the opt-in
index.

URL names a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres);
the benchmark creates its own scratch databases there and drops them at the end. It
prints its figures, each target with PASS or FAIL, and exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from bench_tick import Report, Server, median, ms, psql_env, schedctl_env, section, tick
from psycopg import sql

# The tests' host fixture (tests/realistic_host.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from realistic_host import add_history, load_realistic_host

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PARTS = ("speed", "host-indexes", "stale", "stale-opt-in", "idle")
ACTIVE_FRACTION = 0.5  # the previous crawl is still running for half of the due domains

# The opt-in index on the host's jobs, as schedctl documents it.
OPT_IN_INDEX = """
CREATE INDEX CONCURRENTLY schedctl_jobs_active_idx ON public.jobs (domain_id, organisation_id)
WHERE status IN ('pending', 'initializing', 'running', 'paused')
"""

# The floor: one statement doing what a tick must do to the host's tables and nothing
# more (no record of served slots, no history check): cancel the active jobs of each due
# scheduler's domain and organisation, make its job as tick would, move it on the grid.
FLOOR_SQL = """
WITH due AS (
    SELECT id, domain_id, organisation_id, next_run_at, schedule_interval_hours, concurrency,
           find_links, max_pages, include_paths, exclude_paths, required_workers
    FROM public.schedulers
    WHERE is_enabled AND next_run_at <= now()
),
cancelled AS (
    UPDATE public.jobs j SET status = 'cancelled', completed_at = now()
    FROM due
    WHERE j.domain_id = due.domain_id AND j.organisation_id = due.organisation_id
      AND j.status IN ('pending', 'initializing', 'running', 'paused')
),
made AS (
    INSERT INTO public.jobs (
        id, domain_id, organisation_id, status, progress, created_at, concurrency,
        find_links, max_pages, include_paths, exclude_paths, required_workers,
        source_type, source_detail, source_info, scheduler_id
    )
    SELECT gen_random_uuid()::text, domain_id, organisation_id, 'pending', 0, now(),
           concurrency, find_links, max_pages, include_paths, exclude_paths,
           required_workers, 'scheduler', id::text, NULL, id
    FROM due
)
UPDATE public.schedulers s
SET next_run_at = due.next_run_at + make_interval(hours => due.schedule_interval_hours * (
        floor(extract(epoch FROM now() - due.next_run_at)
              / (due.schedule_interval_hours * 3600))::integer + 1)),
    updated_at = now()
FROM due
WHERE s.id = due.id
"""

# What a pass left behind: active jobs (each due scheduler's new one, the cancelled
# ones no longer), and the jobs it cancelled just now (history finished long ago).
OUTCOME_SQL = """
SELECT count(*) FILTER (WHERE status IN ('pending', 'initializing', 'running', 'paused')),
       count(*) FILTER (WHERE status = 'cancelled' AND completed_at > now() - interval '1 hour')
FROM public.jobs
"""

# Definitions of the host's tables (public), to see what `migrate` changed in them.
HOST_SHAPE_SQL = """
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
  AND c.relname = ANY (%(tables)s) AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY (%(tables)s)
UNION ALL
SELECT 'constraint ' || c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY (%(tables)s)
"""
HOST_TABLES = ["organisations", "domains", "jobs", "schedulers"]

# Tables the API's `anon` role (anyone holding the public key) can read, unprotected by
# row-level security: on the host, none.
EXPOSED_SQL = """
SELECT c.oid::regclass::text
FROM pg_class c
WHERE c.relkind IN ('r', 'p', 'v', 'm')
  AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  AND has_schema_privilege('anon', c.relnamespace, 'USAGE')
  AND has_table_privilege('anon', c.oid, 'SELECT')
  AND NOT c.relrowsecurity
ORDER BY 1
"""

# Indexes on the host's jobs: each one's name, and whether its keys are exactly
# (domain_id, organisation_id), as an index over the active jobs would be.
JOBS_INDEXES_SQL = """
SELECT c.relname,
       i.indnkeyatts = 2
       AND pg_get_indexdef(i.indexrelid, 1, true) = 'domain_id'
       AND pg_get_indexdef(i.indexrelid, 2, true) = 'organisation_id'
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'public.jobs'::regclass
"""


# ---------------------------------------------------------------- databases


def execute(
    url: str, statement: str | sql.Composed, params: dict[str, object] | None = None
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode() if isinstance(statement, str) else statement, params)


def fetch_all(
    url: str, query: str, params: dict[str, object] | None = None
) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query.encode(), params).fetchall()


def prepare_for_measuring(url: str) -> None:
    """VACUUM ANALYZE, then autovacuum off on every table (the host's and schedctl's), so
    that a vacuum one run's writes set off does not land in the next run's figures."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        tables = conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c "
            "WHERE c.relkind = 'r' AND c.relnamespace NOT IN "
            "('pg_catalog'::regnamespace, 'information_schema'::regnamespace) "
            "AND c.relpersistence = 'p'"
        ).fetchall()
        for (table,) in tables:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)".encode())


def migrate(url: str) -> float:
    """`schedctl migrate` as a process; its wall time."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "schedctl", "migrate"],
        env=schedctl_env(url),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"migrate failed on the host: {done.stderr.strip()}")
    return time.perf_counter() - start


def build_host(server: Server, report: Report, n: int, history: int) -> str:
    """The host, its history, `schedctl migrate` over it; the host's indexes only."""
    name = server.name("host_tpl")
    url = server.create(name)
    start = time.perf_counter()
    load_realistic_host(url)
    made = add_history(
        url,
        schedulers=n,
        jobs_per_scheduler=history,
        active_fraction=ACTIVE_FRACTION,
        due=n,
    )
    report.figure(
        f"host loaded: {made.finished_jobs:,} jobs of history, {made.active_jobs:,} active",
        f"{time.perf_counter() - start:8.1f} s",
    )
    shape: dict[str, object] = {"tables": HOST_TABLES}
    before = {str(row[0]) for row in fetch_all(url, HOST_SHAPE_SQL, shape)}
    host_indexes = {row[0] for row in fetch_all(url, JOBS_INDEXES_SQL)}
    report.figure("schedctl migrate over it", f"{migrate(url):8.1f} s")
    after = {str(row[0]) for row in fetch_all(url, HOST_SHAPE_SQL, shape)}
    changed = [f"+ {line}" for line in sorted(after - before)]
    changed += [f"- {line}" for line in sorted(before - after)]
    report.figure("host tables changed by migrate", f"{len(changed):8d}")
    for line in changed:
        print(f"      {line}", flush=True)
    exposed = [str(table) for (table,) in fetch_all(url, EXPOSED_SQL)]
    report.figure("tables anon can read without row-level security", f"{len(exposed):8d}")
    if exposed:
        print(f"      {', '.join(exposed)}", flush=True)
    # An index that migrate made over the active jobs of a domain and organisation stands
    # for the opt-in one: this variant goes without.
    for index in indexes_over_domain_and_organisation(url):
        if index not in host_indexes:
            print(f"      (dropped {index}: here the host's indexes only)", flush=True)
            execute(url, sql.SQL("DROP INDEX public.{}").format(sql.Identifier(str(index))))
    prepare_for_measuring(url)
    return name


def build_opt_in(server: Server, host: str) -> str:
    """A copy of the host with the opt-in index on its jobs."""
    name = server.name("optin_tpl")
    url = server.create(name, host)
    execute(url, OPT_IN_INDEX)
    prepare_for_measuring(url)
    return name


# The running jobs moved aside, the jobs analyzed without them, then put back (no trigger
# of the host's fires meanwhile): the statistics say no job is active, as they do on a busy
# host for the crawls started since autovacuum last analyzed the table.
STALE_SQL = """
SET session_replication_role = replica;
CREATE TABLE public.bench_running AS
    SELECT * FROM public.jobs WHERE status IN ('pending', 'initializing', 'running', 'paused');
DELETE FROM public.jobs WHERE status IN ('pending', 'initializing', 'running', 'paused');
ANALYZE public.jobs;
-- every column but the host's generated ones
DO $$ DECLARE cols text; BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute
    WHERE attrelid = 'public.jobs'::regclass AND attnum > 0 AND NOT attisdropped
      AND attgenerated = '';
    EXECUTE format('INSERT INTO public.jobs (%s) SELECT %s FROM public.bench_running', cols, cols);
END $$;
DROP TABLE public.bench_running;
"""


def build_stale(server: Server, template: str, label: str) -> str:
    """A copy of `template` whose jobs statistics predate its running jobs."""
    name = server.name(f"stale_{label}_tpl")
    url = server.create(name, template)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(STALE_SQL.encode())
    return name


# ---------------------------------------------------------------- measuring


def floor(url: str, expect: int) -> float:
    """Seconds the one-statement floor takes, as psql's \\timing reports it."""
    done = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "\\timing on", "-c", FLOOR_SQL],
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


def indexes_over_domain_and_organisation(url: str) -> list[str]:
    return [str(name) for name, over in fetch_all(url, JOBS_INDEXES_SQL) if over]


def check_outcome(url: str, who: str, due: int, cancelled: int) -> None:
    """Each due domain has exactly its new job active; the previous ones were cancelled."""
    (active, just_cancelled), *_ = fetch_all(url, OUTCOME_SQL)
    if (active, just_cancelled) != (due, cancelled):
        sys.exit(
            f"{who} left {active} active jobs and cancelled {just_cancelled}; "
            f"expected {due} and {cancelled}"
        )


def bench_speed(
    server: Server, report: Report, template: str, label: str, n: int, runs: int, target: bool
) -> None:
    cancelled = int(n * ACTIVE_FRACTION)
    with section(f"{label}: {n:,} due, {cancelled:,} to cancel (median of {runs} runs)"):
        indexes = indexes_over_domain_and_organisation(server.conninfo(template))
        report.figure("jobs indexed by (domain_id, organisation_id)", ", ".join(indexes) or "none")
        scratch = server.name("speed")
        ticks, idles, floors = [], [], []
        for run in range(runs + 1):  # the first round warms the caches and is not counted
            url = server.create(scratch, template)
            tick_seconds = tick(url, n).seconds
            check_outcome(url, "tick", n, cancelled)
            idle_seconds = tick(url, 0).seconds
            url = server.create(scratch, template)
            floor_seconds = floor(url, n)
            check_outcome(url, "the floor", n, cancelled)
            if run:
                ticks.append(tick_seconds)
                idles.append(idle_seconds)
                floors.append(floor_seconds)
        whole, idle, bare = median(ticks), median(idles), median(floors)
        own = whole - idle
        report.figure("tick, whole process", ms(whole, ticks))
        report.figure("tick with nothing due, whole process", ms(idle, idles))
        report.figure("tick's own work (the difference)", ms(own))
        report.figure("floor: one statement through psql", ms(bare, floors))
        if target:
            report.target("tick's own work / floor", own / bare, 1.5)
        else:
            report.figure("tick's own work / floor (reported, no target)", f"{own / bare:8.2f}")


def bench_idle(server: Server, report: Report, template: str, rounds: int, n: int) -> None:
    with section(f"idle: nothing due (median of {rounds} interleaved rounds)"):
        # The history, once every due scheduler has been served; and the same database
        # with its jobs emptied.
        history = server.create(server.name("idle_history"), template)
        tick(history, n)
        prepare_for_measuring(history)
        empty = server.create(server.name("idle_empty"), server.name("idle_history"))
        execute(empty, "TRUNCATE public.jobs CASCADE")
        prepare_for_measuring(empty)
        (jobs,), *_ = fetch_all(history, "SELECT count(*) FROM public.jobs")
        for url in (history, empty):  # warm the caches once
            tick(url, 0)
        fulls, empties = [], []
        for _ in range(rounds):
            fulls.append(tick(history, 0).seconds)
            empties.append(tick(empty, 0).seconds)
        full, bare = median(fulls), median(empties)
        report.figure(f"tick, {jobs:,} jobs, none due", ms(full, fulls))
        report.figure("tick, no jobs, none due", ms(bare, empties))
        report.target("tick (history) / tick (no jobs)", full / bare, 1.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"a server to create scratch databases on (default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--n", type=int, default=10_000, help="due schedulers, all of them (default 10000)"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=200,
        help="finished jobs of history per scheduler (default 200)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=5,
        help="runs of each measurement; the median is shown (default 5)",
    )
    parser.add_argument(
        "--idle-rounds", type=int, default=15, help="rounds of the idle measurement (default 15)"
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="run only this part (repeatable): speed, host-indexes, idle",
    )
    args = parser.parse_args()
    parts = args.only or list(PARTS)

    server = Server(args.database_url)
    report = Report()
    with server.admin() as conn:
        version = conn.execute("SHOW server_version").fetchone()
    print(
        f"schedctl host benchmark: PostgreSQL {version[0] if version else '?'}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    try:
        with section(f"host: {args.n:,} schedulers, {args.history} jobs of history each"):
            host = build_host(server, report, args.n, args.history)
            wants_opt_in = {"speed", "stale-opt-in"} & set(parts)
            opt_in = build_opt_in(server, host) if wants_opt_in else None
            stale = build_stale(server, host, "host") if "stale" in parts else None
            stale_opt_in = (
                build_stale(server, opt_in, "optin")
                if opt_in is not None and "stale-opt-in" in parts
                else None
            )
        steps: dict[str, Callable[[], None]] = {
            "speed": lambda: bench_speed(
                server, report, opt_in or host, "with the opt-in index", args.n, args.runs, True
            ),
            "host-indexes": lambda: bench_speed(
                server, report, host, "host's own indexes only", args.n, args.runs, False
            ),
            "stale": lambda: bench_speed(
                server,
                report,
                stale or host,
                "stale statistics, host's own indexes only",
                args.n,
                args.runs,
                True,
            ),
            "stale-opt-in": lambda: bench_speed(
                server,
                report,
                stale_opt_in or host,
                "stale statistics, with the opt-in index",
                args.n,
                args.runs,
                True,
            ),
            "idle": lambda: bench_idle(server, report, host, args.idle_rounds, args.n),
        }
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
