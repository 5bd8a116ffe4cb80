"""Benchmark of `schedctl timeline`: the runs of the next 24 hours of N schedulers counted
per hour, as a whole process and as the database's work alone, against the 2-second target.

    python bench/bench_timeline.py [--database-url URL] [--n 100000] [--runs 5]

URL names a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres); the
benchmark creates a scratch database there and drops it at the end. Half the schedulers are
on the elapsed-time grid (every interval), half on a wall-clock grid in one of eight time
zones, half of those with a spread of an hour; a tenth are due now, a twentieth paused until
a time inside the window. It exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import timedelta

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_SECONDS = 2.0
ZONES = [
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Europe/London",
    "UTC",
]

POPULATE = """
INSERT INTO organisations (name) SELECT 'org ' || n FROM generate_series(1, 100) AS n;
INSERT INTO domains (name) SELECT 'site' || n || '.com' FROM generate_series(1, %(n)s) AS n;
INSERT INTO schedulers (domain_id, organisation_id, schedule_interval_hours, next_run_at,
                        is_enabled, created_at)
SELECT d.id, o.ids[1 + d.id %% 100], (ARRAY[6, 12, 24, 48])[1 + d.id %% 4],
       now() + make_interval(mins => (d.id * 7) %% 2880) - CASE WHEN d.id %% 10 = 0
           THEN interval '3 days' ELSE interval '0' END,
       d.id %% 20 <> 0, now() - interval '30 days'
FROM domains d CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM organisations) AS o;
INSERT INTO schedctl.scheduler_settings (scheduler_id, at_time, time_zone, grid_anchor,
                                         spread_seconds, paused_until)
SELECT s.id,
       CASE WHEN d.id %% 2 = 0 THEN make_time((d.id / 2) %% 24, (d.id * 13) %% 60, 0) END,
       CASE WHEN d.id %% 2 = 0 THEN (%(zones)s::text[])[1 + (d.id / 2) %% 8] ELSE 'UTC' END,
       CASE WHEN d.id %% 2 = 0
           THEN timestamp '2000-01-01' + make_time((d.id / 2) %% 24, (d.id * 13) %% 60, 0) END,
       CASE WHEN d.id %% 4 = 0 THEN 3600 ELSE 0 END,
       CASE WHEN d.id %% 20 = 0 THEN now() + interval '5 hours' END
FROM schedulers s JOIN domains d ON d.id = s.domain_id;
-- Wall-clock schedulers: the next run on their grid (as create places it).
UPDATE schedulers s SET next_run_at = x.first_slot
FROM (
    SELECT s2.id, g.first_slot
    FROM schedulers s2
    JOIN schedctl.scheduler_settings st ON st.scheduler_id = s2.id
    CROSS JOIN LATERAL schedctl.grid_start(
        now() - CASE WHEN st.paused_until IS NULL AND s2.next_run_at < now() - interval '1 day'
                     THEN interval '3 days' ELSE interval '0' END,
        s2.schedule_interval_hours, st.at_time, st.time_zone,
        schedctl.spread_offset(st.scheduler_id, st.spread_seconds)) AS g
    WHERE st.at_time IS NOT NULL
) AS x
WHERE x.id = s.id;
UPDATE schedctl.scheduler_settings st SET grid_anchor = x.anchor
FROM (
    SELECT s.id, g.anchor
    FROM public.schedulers s
    JOIN schedctl.scheduler_settings st2 ON st2.scheduler_id = s.id
    CROSS JOIN LATERAL schedctl.grid_start(
        s.next_run_at, s.schedule_interval_hours, st2.at_time, st2.time_zone,
        schedctl.spread_offset(s.id, st2.spread_seconds)) AS g
    WHERE st2.at_time IS NOT NULL
) AS x
WHERE x.id = st.scheduler_id;
"""


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds a local process has used (None where /proc cannot tell: another host)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _url(server: str, dbname: str) -> str:
    return make_conninfo(server, dbname=dbname)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    name = f"schedctl_bench_{os.getpid()}_timeline"
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _url(args.database_url, name)
    uri = "postgresql://{user}@{host}:{port}/{dbname}".format(
        **{"user": "postgres", "host": "127.0.0.1", "port": "5432"}
        | {k: v for k, v in conninfo_to_dict(url).items() if k in ("user", "host", "port")}
        | {"dbname": name}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDCTL_")}
    env["SCHEDCTL_DATABASE_URL"] = uri
    try:
        subprocess.run(
            [sys.executable, "-m", "schedctl", "migrate"], env=env, check=True, capture_output=True
        )
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            with conn.transaction():
                for statement in POPULATE.split(";\n"):
                    if statement.strip():
                        conn.execute(statement, {"n": args.n, "zones": ZONES})  # type: ignore[arg-type]
            conn.execute("VACUUM ANALYZE")
            print(f"populated {args.n} schedulers in {time.perf_counter() - started:.1f} s")
        process, query, server_cpu, client_cpu = [], [], [], []
        from schedctl import db, timeline
        from schedctl.config import Settings

        settings = Settings(database_url=uri)  # type: ignore[call-arg]
        for _ in range(args.runs):
            started = time.perf_counter()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(
                [sys.executable, "-m", "schedctl", "timeline", "--all-orgs", "--json"],
                env=env,
                capture_output=True,
                text=True,
            )
            process.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            client_cpu.append(
                after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
            )
            assert done.returncode == 0, done.stderr
            with db.connect(settings) as conn:
                backend = conn.info.backend_pid
                cpu_before = _cpu_seconds(backend)
                started = time.perf_counter()
                found = timeline.count(conn, None, hours=24, bucket=timedelta(hours=1))
                query.append(time.perf_counter() - started)
                if cpu_before is not None:
                    server_cpu.append((_cpu_seconds(backend) or 0.0) - cpu_before)
        print(f"runs counted in 24 h: {found.total}")
        whole, alone = statistics.median(process), statistics.median(query)
        verdict = "PASS" if whole < TARGET_SECONDS else "FAIL"
        print(f"timeline --all-orgs --json, whole process: {whole:.2f} s (median of {args.runs})")
        print(f"its two statements alone:                 {alone:.2f} s")
        if server_cpu:
            print(
                f"CPU time of the server process for them:   {statistics.median(server_cpu):.2f} s"
                " (what the load of other processes on the machine does not inflate)"
            )
            print(
                f"CPU time of the timeline process itself:   {statistics.median(client_cpu):.2f} s"
            )
            print(
                "the two together, what the command takes on an idle machine: "
                f"{statistics.median(server_cpu) + statistics.median(client_cpu):.2f} s"
            )
        # What the machine's load does to CPU time: the bare imports every command pays.
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [sys.executable, "-c", "import typer, pydantic_settings, psycopg, rich"], check=True
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        imports = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        print(
            f"calibration: importing typer, pydantic_settings, psycopg, rich: {imports:.2f} s CPU"
        )
        load = os.getloadavg()[0]
        print(f"load average during the run: {load:.1f} on {os.cpu_count()} CPUs")
        print(f"target: under {TARGET_SECONDS:.0f} s for {args.n} schedulers: {verdict}")
        return 0 if verdict == "PASS" else 1
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    sys.exit(main())
