"""An example worker for the host of contrib/hooks/first-task.sql: it LISTENs on the channel
schedctl notifies after each committed batch, claims the pending jobs that have their
first task (FOR UPDATE SKIP LOCKED, so that any number of workers share them), and marks
them running. A notification is only a wake-up: on start, and every --poll seconds, it
catches up from the jobs table, so a worker that was down or lost its connection misses
nothing.

    DATABASE_URL=postgresql://... python contrib/hooks/worker.py --channel schedctl_jobs

It prints one JSON line per job it claims ({"job_id", "claimed_at"}, a Unix time) and a
line on stderr once it listens. It needs psycopg 3.2 or later and nothing else. A real
worker would crawl the job's tasks where this one only marks the job running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import psycopg
from psycopg import sql

# Claim up to BATCH pending jobs that have a task, oldest first; locked rows are another
# worker's and are skipped, not waited for.
CLAIM = """
UPDATE public.jobs j SET status = 'running', started_at = clock_timestamp()
FROM (
    SELECT id FROM public.jobs
    WHERE status = 'pending'
      AND EXISTS (SELECT 1 FROM public.tasks t WHERE t.job_id = jobs.id)
    ORDER BY created_at, id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
) AS claimed
WHERE j.id = claimed.id
RETURNING j.id
"""
BATCH = 100


def claim_all(conn: psycopg.Connection[tuple[str]]) -> int:
    """Claim pending jobs until none is left; report each; how many were claimed."""
    total = 0
    while True:
        with conn.transaction():
            ids = [job_id for (job_id,) in conn.execute(CLAIM, {"batch": BATCH})]
        claimed_at = time.time()  # committed: the jobs are this worker's
        for job_id in ids:
            print(json.dumps({"job_id": job_id, "claimed_at": claimed_at}), flush=True)
        total += len(ids)
        if len(ids) < BATCH:
            return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channel", default="schedctl_jobs", help="the channel to LISTEN on")
    parser.add_argument(
        "--poll", type=float, default=60.0, help="seconds between catch-ups without a wake-up"
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or os.environ["SCHEDCTL_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        # LISTEN before catching up: a job committed in between is then both in the table
        # and announced, never neither.
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(args.channel)))
        print(f"listening on {args.channel}", file=sys.stderr, flush=True)
        claim_all(conn)
        while True:
            # Wait for one wake-up (or the poll interval), then claim whatever is pending:
            # one claim serves every notification that arrived meanwhile.
            for _ in conn.notifies(timeout=args.poll, stop_after=1):
                pass
            claim_all(conn)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
