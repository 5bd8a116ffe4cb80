"""Benchmark of `schedctl apply`: a file of N schedulers applied to an empty organisation,
the same file applied again with 1 % of its entries changed, once more unchanged, and
`export` of the result.

    python bench/bench_apply.py [--database-url URL] [--n 10000] [--runs 3]

URL names a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres); the
benchmark makes its own scratch database there and drops it at the end. Each figure is the
wall time of a whole `schedctl` process (Python's start-up included), the median of `--runs`
runs, each on a fresh copy of the database. It checks that the re-apply's plan holds
exactly the changed entries and exits 1 if it does not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def with_database(url: str, dbname: str) -> str:
    return make_conninfo("", **(conninfo_to_dict(url) | {"dbname": dbname}))


def as_uri(conninfo: str) -> str:
    params = conninfo_to_dict(conninfo)
    user, host = params.get("user", "postgres"), params.get("host", "127.0.0.1")
    port, dbname = params.get("port", "5432"), params["dbname"]
    return f"postgresql://{user}@{host}:{port}/{dbname}"


def schedctl(url: str, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDCTL_")}
    env["SCHEDCTL_DATABASE_URL"] = url
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "schedctl", *args], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"schedctl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return elapsed, done


def entry(i: int, changed: bool) -> str:
    """One entry; every field takes several values across the file."""
    lines = [f"  - domain: site-{i}.com", f"    every: {(6, 12, 24, 48)[i % 4]}h"]
    if i % 3 == 0:
        lines.append(f"    include: [/blog-{i}, /news]")
    if i % 5 == 0:
        lines.append("    overlap: skip")
    if i % 7 == 0:
        lines += ["    enabled: false", f"    pause-reason: paused {i}"]
    lines.append(f"    concurrency: {10 + i % 50 + (1 if changed else 0)}")
    return "\n".join(lines)


def write_file(path: Path, n: int, changed_every: int | None) -> None:
    entries = [entry(i, changed_every is not None and i % changed_every == 0) for i in range(n)]
    path.write_text("organisation: Bench\nschedulers:\n" + "\n".join(entries) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n = args.n
    template = f"schedctl_bench_apply_{os.getpid()}"
    admin = psycopg.connect(args.database_url, autocommit=True)
    made: list[str] = []

    def create(name: str, from_template: str | None = None) -> str:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if from_template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(from_template))
        admin.execute(query)
        made.append(name)
        return as_uri(with_database(args.database_url, name))

    figures: dict[str, list[float]] = {
        "apply": [],
        "reapply": [],
        "unchanged": [],
        "export": [],
        "check": [],
        "start": [],
    }
    failures: list[str] = []
    try:
        url = create(template)
        schedctl(url, "migrate")
        schedctl(url, "org", "create", "Bench")
        with tempfile.TemporaryDirectory() as folder:
            first, second = Path(folder) / "first.yaml", Path(folder) / "second.yaml"
            write_file(first, n, None)
            write_file(second, n, 100)
            from schedctl import manifest

            for run in range(args.runs):
                started = time.perf_counter()
                manifest.parse(second.read_text(), "second.yaml")
                figures["check"].append(time.perf_counter() - started)
                seconds, _ = schedctl(url, "apply", "--help")
                figures["start"].append(seconds)
                copy = create(f"{template}_{run}", template)
                seconds, done = schedctl(copy, "apply", "-f", str(first), "--json")
                plan: dict[str, Any] = json.loads(done.stdout)
                figures["apply"].append(seconds)
                if len(plan["created"]) != n:
                    failures.append(f"first apply created {len(plan['created'])}, not {n}")
                seconds, done = schedctl(copy, "apply", "-f", str(second), "--json")
                plan = json.loads(done.stdout)
                figures["reapply"].append(seconds)
                expected = len(range(0, n, 100))
                counts = {k: len(plan[k]) for k in ("created", "changed", "adopted", "deleted")}
                if counts != {"created": 0, "changed": expected, "adopted": 0, "deleted": 0}:
                    failures.append(f"re-apply's plan is {counts}, not {expected} changed")
                if plan["unchanged"] != n - expected:
                    failures.append(f"re-apply left {plan['unchanged']} unchanged")
                seconds, done = schedctl(copy, "apply", "-f", str(second), "--json")
                figures["unchanged"].append(seconds)
                if not json.loads(done.stdout)["in_sync"]:
                    failures.append("the third apply still had changes")
                seconds, _ = schedctl(copy, "export")
                figures["export"].append(seconds)
                admin.execute(
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                        sql.Identifier(f"{template}_{run}")
                    )
                )
                made.remove(f"{template}_{run}")
    finally:
        for name in made:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()
    labels = {
        "apply": f"apply {n:,} entries to an empty organisation",
        "reapply": f"re-apply with {len(range(0, n, 100)):,} entries changed",
        "unchanged": "apply the same file again (nothing to do)",
        "export": f"export {n:,} schedulers",
        "check": f"of which: reading and checking the file of {n:,} entries (in-process)",
        "start": "of which: starting schedctl (`apply --help`)",
    }
    for key, label in labels.items():
        times = figures[key]
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"{label}: {statistics.median(times):.2f} s (runs: {runs})")
    for failure in failures:
        print(f"FAIL: {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
