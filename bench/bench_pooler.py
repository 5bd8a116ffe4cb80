"""Benchmark of `schedctl tick` through a transaction-mode PgBouncer against a direct
connection: the whole process's wall time for N due schedulers, with one connection and with
SCHEDCTL_TICK_CONNECTIONS=2, and for a tick with nothing due.

    python bench/bench_pooler.py [--database-url URL] [--n 10000] [--runs 5] [--pool-size 4]

URL names a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres); the
benchmark creates its own scratch databases there and drops them at the end, and starts a
PgBouncer with stock settings in front of the server for its run (tests/servers.py; it needs
pgbouncer installed). It prints its figures; it sets no targets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench_tick import (
    DEFAULT_URL,
    TICK,
    Report,
    Run,
    Server,
    median,
    ms,
    populate,
    run_process,
    schedctl_env,
    section,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from servers import PgBouncer, pgbouncer

# (label, through the pooler, SCHEDCTL_TICK_CONNECTIONS)
ROUTES = (
    ("direct, 1 connection", False, 1),
    ("PgBouncer, 1 connection", True, 1),
    ("direct, 2 connections", False, 2),
    ("PgBouncer, 2 connections", True, 2),
)


def tick(url: str, expect: int, connections: int) -> Run:
    """One `schedctl tick --json` process; it must serve exactly `expect` due schedulers."""
    env = schedctl_env(url) | {"SCHEDCTL_TICK_CONNECTIONS": str(connections)}
    run = run_process(TICK, env)
    summary = json.loads(run.stdout)
    if (summary["due"], summary["created"], summary["failed"]) != (expect, expect, 0):
        sys.exit(f"tick made an unexpected pass: {run.stdout[:200]}")
    run.stdout = ""
    return run


def bench(server: Server, bouncer: PgBouncer, report: Report, n: int, runs: int) -> None:
    with section(f"{n:,} due schedulers (median of {runs} runs; each on a fresh copy)"):
        template = server.name("pooler_tpl")
        populate(server, template, due=n, total=n)
        scratch = server.name("pooler")
        whole: dict[str, list[float]] = {label: [] for label, _, _ in ROUTES}
        idle: dict[str, list[float]] = {label: [] for label, _, _ in ROUTES}
        for run in range(runs + 1):  # the first round warms the caches and is not counted
            for label, pooled, connections in ROUTES:
                direct = server.create(scratch, template)
                url = bouncer.url_for(direct) if pooled else direct
                seconds = tick(url, n, connections).seconds
                idle_seconds = tick(url, 0, connections).seconds
                if run:
                    whole[label].append(seconds)
                    idle[label].append(idle_seconds)
        for label, _, _ in ROUTES:
            report.figure(f"tick, {label}", ms(median(whole[label]), whole[label]))
        for label, _, connections in ROUTES:
            if connections == 1:
                report.figure(f"nothing due, {label}", ms(median(idle[label]), idle[label]))
        for connections, (direct_route, pooled_route) in ((1, ROUTES[0:2]), (2, ROUTES[2:4])):
            ratio = median(whole[pooled_route[0]]) / median(whole[direct_route[0]])
            report.figure(f"PgBouncer / direct, {connections} connection(s)", f"{ratio:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"a server to create scratch databases on (default {DEFAULT_URL})",
    )
    parser.add_argument("--n", type=int, default=10_000, help="due schedulers (default 10000)")
    parser.add_argument(
        "--runs", type=int, default=5, help="runs of each route; the median is shown (default 5)"
    )
    parser.add_argument(
        "--pool-size", type=int, default=4, help="PgBouncer's default_pool_size (default 4)"
    )
    args = parser.parse_args()

    server = Server(args.database_url)
    report = Report()
    with server.admin() as conn:
        version = conn.execute("SHOW server_version").fetchone()
    with pgbouncer(
        args.database_url, pool_mode="transaction", default_pool_size=args.pool_size
    ) as bouncer:
        print(
            f"schedctl tick through PgBouncer: PostgreSQL {version[0] if version else '?'}, "
            f"pool_mode=transaction, default_pool_size={args.pool_size}, "
            f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        )
        try:
            bench(server, bouncer, report, args.n, args.runs)
        finally:
            server.drop_all()


if __name__ == "__main__":
    main()
