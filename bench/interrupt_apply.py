"""Ctrl-C at random moments of a large `schedctl apply`: each try sends SIGINT at a random
time and checks that what the command said matches what the database holds.

    python bench/interrupt_apply.py [--database-url URL] [--n 8000] [--tries 20] [--seed S]

URL names a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres); the
script makes its own scratch database there and drops it at the end. It first times one
whole apply of a file of N new schedulers, then, for each try, starts the same apply, sends
SIGINT after a random delay (from a quarter of the whole run to a little past its end;
stdout is a pipe not read until then, so a late signal lands while the plan is printed)
and checks:

- killed by the signal (exit -2: it landed during Python's start-up, before schedctl's own
  handling began): no output and nothing written;
- "rolled back" on stderr: exit 130, no output, and no scheduler nor audit entry written;
- otherwise every scheduler and its audit entry written, and either exit 0 with the whole
  plan ending in "; applied", or exit 130 saying "committed; output cut short".

It prints a line per try (when the signal landed, the exit code, what was said and what was
written) and a verdict line; it exits 1 when a try's message and the database disagree.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ROLLED_BACK = "what was not yet committed was rolled back"
CUT_SHORT = "committed; output cut short"


def with_database(url: str, dbname: str) -> str:
    """The URI of another database of the same server."""
    params = conninfo_to_dict(make_conninfo(url))
    user, host = params.get("user", "postgres"), params.get("host", "127.0.0.1")
    return f"postgresql://{user}@{host}:{params.get('port', '5432')}/{dbname}"


def environment(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDCTL_")}
    return env | {"SCHEDCTL_DATABASE_URL": url, "SCHEDCTL_ORG": "Bench"}


def _sigint_as_at_a_terminal() -> None:
    """In the child: SIGINT handled by default, as under a terminal's Ctrl-C. A shell that
    starts this script in the background (`&`, nohup) ignores SIGINT in it, and the child
    would inherit that and let every signal pass unnoticed."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "schedctl", *args],
        env=environment(url),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_as_at_a_terminal,  # this script runs no threads
    )


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "schedctl", *args],
        env=environment(url),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"schedctl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def write_file(path: Path, n: int) -> None:
    lines = ["schedulers:"]
    for index in range(n):
        lines += [f"  - domain: site{index:05d}.example.org", "    every: 24h"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def written(conn: psycopg.Connection[tuple[int, ...]], audit_before: int) -> tuple[int, int]:
    """Schedulers, and audit entries of their creation since `audit_before` (the audit trail
    is append-only)."""
    schedulers = conn.execute("SELECT count(*) FROM schedulers").fetchone()
    audit = conn.execute("SELECT count(*) FROM schedctl.audit WHERE action = 'create'").fetchone()
    assert schedulers is not None and audit is not None
    return int(schedulers[0]), int(audit[0]) - audit_before


def judge(n: int, code: int, stdout: str, stderr: str, found: tuple[int, int]) -> str | None:
    """What is wrong with a try (None: what it said matches what was written)."""
    if code == -signal.SIGINT:  # during Python's start-up, before schedctl's main() ran
        return None if found == (0, 0) and not stdout else "killed by SIGINT after writing"
    if ROLLED_BACK in stderr:
        if code != 130:
            return f"said rolled back, exit {code}"
        if found != (0, 0):
            return f"said rolled back, but {found[0]} schedulers and {found[1]} audit entries"
        if stdout:
            return "said rolled back, but printed a plan"
        return None
    if found != (n, n):
        return f"did not say rolled back, but {found[0]} schedulers and {found[1]} audit entries"
    if code == 0:
        plan = stdout.splitlines()
        creates = sum(line.startswith("+ create ") for line in plan)
        if creates != n or not plan or not plan[-1].endswith("; applied"):
            return f"exit 0 with {creates} of {n} plan lines"
        return None
    if code == 130:
        return None if CUT_SHORT in stderr else "exit 130 without saying what was committed"
    return f"exit {code}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    n = args.n
    name = f"schedctl_bench_interrupt_{os.getpid()}"
    admin = psycopg.connect(args.database_url, autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    failures: list[str] = []
    outcomes: list[str] = []
    try:
        url = with_database(args.database_url, name)
        run(url, "migrate")
        run(url, "org", "create", "Bench")
        with (
            tempfile.TemporaryDirectory() as folder,
            psycopg.connect(url, autocommit=True) as conn,
        ):
            path = Path(folder) / "large.yaml"
            write_file(path, n)
            started = time.monotonic()
            run(url, "apply", "-f", str(path))
            took = time.monotonic() - started
            if written(conn, 0) != (n, n):
                sys.exit(f"the whole apply did not write {n} schedulers and audit entries")
            audit = n
            conn.execute("DELETE FROM schedulers")
            seed = args.seed if args.seed is not None else random.randrange(1 << 30)
            rng = random.Random(seed)
            print(f"whole apply of {n} entries: {took:.2f} s; seed {seed}")
            for attempt in range(args.tries):
                delay = rng.uniform(0.25 * took, 1.1 * took)
                proc = start(url, "apply", "-f", str(path))
                time.sleep(delay)
                proc.send_signal(signal.SIGINT)
                stdout, stderr = proc.communicate(timeout=600)
                found = written(conn, audit)
                wrong = judge(n, proc.returncode, stdout, stderr, found)
                outcome = (
                    "not started"
                    if proc.returncode == -signal.SIGINT
                    else "rolled back"
                    if ROLLED_BACK in stderr
                    else "committed"
                )
                said = " | ".join(line for line in stderr.splitlines() if line.strip())
                print(
                    f"try {attempt:2d}: SIGINT at {delay:6.2f} s ({delay / took:4.0%} of the whole"
                    f" run), exit {proc.returncode}, {outcome}, {found[0]} schedulers and"
                    f" {found[1]} audit entries, {len(stdout.splitlines())} lines out;"
                    f" said: {said[:300] or '-'}" + (f"  WRONG: {wrong}" if wrong else "")
                )
                if wrong:
                    failures.append(f"try {attempt}: {wrong}")
                outcomes.append(outcome)
                audit += found[1]
                conn.execute("DELETE FROM schedulers")
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.close()
    counted = {kind: outcomes.count(kind) for kind in ("not started", "rolled back", "committed")}
    if failures:
        print(f"FAIL: {len(failures)} of {args.tries} tries said what did not happen ({counted})")
        sys.exit(1)
    print(f"PASS: every try said what happened ({counted})")


if __name__ == "__main__":
    main()
