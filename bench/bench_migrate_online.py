"""Benchmark of `schedctl migrate` on a host whose jobs table is large and lacks
scheduler_id: how long the host's inserts stall while migrate adds the column, its foreign
key and its index.

    python bench/bench_migrate_online.py [--database-url URL] [--rows 3000000] [--offline-too]

URL names a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres); the
benchmark creates its own scratch databases there and drops them at the end. A separate
process inserts jobs one at a time (each its own transaction) for the whole run; the stall is
the longest of those inserts. It prints the figures: a window of the insert loop alone, then
the loop while `schedctl migrate` runs. With --offline-too it measures the same on a copy of
the database with the statements schedctl 0.3's migration ran (the column with its foreign
key, then a plain CREATE INDEX, in one transaction). It exits 1 when the stall during
migrate is 100 ms or more.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_STALL = 0.100
BASELINE_WINDOW = 5.0

INSERT_JOB = """
INSERT INTO public.jobs (id, domain_id, organisation_id, status, progress, created_at,
                         concurrency, find_links, max_pages)
VALUES (gen_random_uuid()::text, %(domain)s, %(org)s, 'pending', 0, now(), 20, true, 0)
"""

# What schedctl 0.3's migration 0002 did to a jobs table without scheduler_id, in one
# transaction.
OFFLINE_DDL = """
ALTER TABLE public.jobs ADD COLUMN scheduler_id UUID REFERENCES public.schedulers (id);
CREATE INDEX idx_jobs_scheduler_id ON public.jobs (scheduler_id) WHERE scheduler_id IS NOT NULL;
"""


def with_database(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def insert_loop(url: str, out: str) -> None:
    """Insert one job at a time until SIGTERM; write each insert's start and end."""
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    times: list[tuple[float, float]] = []
    with psycopg.connect(url, autocommit=True, application_name="bench_insert_loop") as conn:
        row = conn.execute(
            "SELECT d.id, o.id FROM public.domains d, public.organisations o LIMIT 1"
        ).fetchone()
        assert row is not None
        params = {"domain": row[0], "org": row[1]}
        print("ready", flush=True)
        while not stop:
            started = time.monotonic()
            conn.execute(INSERT_JOB, params)
            times.append((started, time.monotonic()))
    Path(out).write_text(json.dumps(times))


def seed(url: str, rows: int) -> None:
    """Host tables as schedctl's first migration makes them (jobs without scheduler_id),
    with `rows` finished jobs."""
    env = {**os.environ, "SCHEDCTL_DATABASE_URL": url}
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from schedctl.config import Settings; from schedctl.migrate import migrate; "
            "migrate(Settings(), upto='0001_host_tables')",
        ],
        env=env,
        check=True,
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.organisations (name) VALUES ('Acme')")
        conn.execute("INSERT INTO public.domains (name) VALUES ('example.com')")
        chunk = 500_000
        for first in range(0, rows, chunk):
            conn.execute(
                "INSERT INTO public.jobs (id, domain_id, organisation_id, status, progress,"
                " created_at, completed_at, concurrency, find_links, max_pages)"
                " SELECT gen_random_uuid()::text, d.id, o.id, 'completed', 1,"
                " now() - n * interval '1 minute', now() - n * interval '1 minute', 20, true, 0"
                " FROM public.domains d, public.organisations o,"
                " generate_series(%s::bigint, %s::bigint) AS n",
                [first + 1, min(first + chunk, rows)],
            )
            print(f"  seeded {min(first + chunk, rows):,} jobs", file=sys.stderr, flush=True)
        conn.execute("VACUUM ANALYZE public.jobs")


class Sampler(threading.Thread):
    """What the other sessions of the database run, every few milliseconds: to name the
    statement of the change that the longest stalls fell in."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[tuple[float, str]] = []
        self.loop_waits: list[tuple[float, bool]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    "SELECT application_name = 'bench_insert_loop',"
                    " regexp_replace(query, '^(\\s*--[^\\n]*\\n)*\\s*', '')"
                    " || coalesce(' [waits: ' || wait_event || ']', ''),"
                    " wait_event_type IS NOT DISTINCT FROM 'Lock'"
                    " FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND state = 'active'"
                ).fetchall()
                now = time.monotonic()
                for is_loop, text, waits in rows:
                    if is_loop:
                        self.loop_waits.append((now, bool(waits)))
                    else:
                        self.samples.append((now, " ".join(str(text).split())[:70]))
                time.sleep(0.005)

    def longest_lock_wait(self) -> float:
        """The longest time the insert loop was seen waiting for a lock, from one sample of
        it waiting to the next of it not waiting."""
        longest, since = 0.0, None
        for at, waits in self.loop_waits:
            if waits and since is None:
                since = at
            elif not waits and since is not None:
                longest, since = max(longest, at - since), None
        return longest

    def during(self, start: float, end: float) -> list[str]:
        seen: list[str] = []
        for at, text in self.samples:
            if start - 0.01 <= at <= end + 0.01 and text not in seen:
                seen.append(text)
        return seen


def measure(url: str, change: list[str] | None, offline_ddl: bool = False) -> dict[str, float]:
    """Run the insert loop, a window of it alone, then the change (a command, or the 0.3
    statements); return the figures."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = tmp.name
    loop = subprocess.Popen(
        [sys.executable, __file__, "--insert-loop", url, out],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert loop.stdout is not None and loop.stdout.readline().strip() == "ready"
    window_start = time.monotonic()
    time.sleep(BASELINE_WINDOW)
    sampler = Sampler(url)
    sampler.start()
    change_start = time.monotonic()
    if offline_ddl:
        with psycopg.connect(url) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS public.schedulers (id UUID PRIMARY KEY"
                " DEFAULT gen_random_uuid())"
            )
            conn.commit()
            conn.execute(OFFLINE_DDL)
            conn.commit()
    else:
        assert change is not None
        env = {**os.environ, "SCHEDCTL_DATABASE_URL": url}
        done = subprocess.run(change, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            loop.terminate()
            loop.wait()
            sys.exit(f"migrate failed ({done.returncode}): {done.stderr.strip()}")
    change_end = time.monotonic()
    sampler.stop.set()
    # The loop alone again, for as long as the change took: its longest insert is what the
    # machine's own load gives an insert in a window of that length.
    after_start = time.monotonic()
    time.sleep(min(max(change_end - change_start, 1.0), 60.0))
    after_end = time.monotonic()
    loop.terminate()
    loop.wait(timeout=60)
    times = [tuple(pair) for pair in json.loads(Path(out).read_text())]
    os.unlink(out)

    def stalls(start: float, end: float) -> list[float]:
        # Every insert that overlapped the window, with how long it took.
        return sorted(e - s for s, e in times if e >= start and s <= end)

    alone = stalls(window_start, change_start) + stalls(after_start, after_end)
    alone.sort()
    during = stalls(change_start, change_end)
    longest = sorted(
        ((e - s, s, e) for s, e in times if e >= change_start and s <= change_end), reverse=True
    )[:5]
    print("  the longest inserts during the change, and what else ran meanwhile:")
    for took, s, e in longest:
        what = "; ".join(sampler.during(s, e)) or "(nothing sampled)"
        print(f"    {1000 * took:7.1f} ms at +{s - change_start:6.2f} s: {what}")
    return {
        "change_s": change_end - change_start,
        "alone_max_ms": 1000 * alone[-1],
        "alone_p99_ms": 1000 * alone[int(0.99 * (len(alone) - 1))],
        "during_inserts": len(during),
        "during_max_ms": 1000 * during[-1],
        "during_p99_ms": 1000 * during[int(0.99 * (len(during) - 1))],
        "lock_wait_ms": 1000 * sampler.longest_lock_wait(),
        "alone_s": (change_start - window_start) + (after_end - after_start),
    }


def check_result(url: str) -> str:
    """What migrate left on jobs: the column, its foreign key and its index."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT"
            " (SELECT convalidated FROM pg_constraint WHERE conrelid = 'public.jobs'::regclass"
            "  AND conname = 'schedctl_jobs_scheduler_id_fkey'),"
            " (SELECT indisvalid FROM pg_index"
            "  WHERE indexrelid = to_regclass('public.schedctl_jobs_scheduler_id_idx'))"
        ).fetchone()
    assert row is not None
    return f"foreign key validated: {row[0]}, index valid: {row[1]}"


def report(title: str, figures: dict[str, float]) -> None:
    print(f"== {title}")
    print(f"  the change took                  {figures['change_s']:.2f} s")
    print(
        f"  inserts alone ({figures['alone_s']:.0f} s before and after): longest"
        f" {figures['alone_max_ms']:.1f} ms, p99 {figures['alone_p99_ms']:.1f} ms"
    )
    print(
        f"  inserts during the change ({figures['during_inserts']:,.0f}): longest"
        f" {figures['during_max_ms']:.1f} ms, p99 {figures['during_p99_ms']:.1f} ms"
    )
    print(
        "  longest wait of an insert for a lock (sampled every ~5 ms):"
        f" {figures['lock_wait_ms']:.1f} ms"
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--insert-loop":
        insert_loop(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--offline-too", action="store_true")
    args = parser.parse_args()

    names = [f"schedctl_bench_{os.getpid()}_online", f"schedctl_bench_{os.getpid()}_offline"]
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names[0])))
    try:
        online = with_database(args.database_url, names[0])
        print(f"seeding {args.rows:,} jobs without scheduler_id", file=sys.stderr)
        seed(online, args.rows)
        if args.offline_too:
            with psycopg.connect(args.database_url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(names[1]), sql.Identifier(names[0])
                    )
                )
        figures = measure(online, [sys.executable, "-m", "schedctl", "migrate"])
        report(f"schedctl migrate, jobs of {args.rows:,} rows", figures)
        print(f"  result: {check_result(online)}")
        passed = figures["during_max_ms"] < 1000 * TARGET_STALL
        print(f"  longest stall < {1000 * TARGET_STALL:.0f} ms: {'PASS' if passed else 'FAIL'}")
        if args.offline_too:
            offline = with_database(args.database_url, names[1])
            report("schedctl 0.3's statements (offline), same table", measure(offline, None, True))
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            for name in names:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
