"""Helpers of the robustness tests: a fingerprint of every table schedctl may write, a
fixed little world of organisations and schedulers, and the checks every result must pass."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Every table a schedctl command may write (the host's and schedctl's own).
TABLES = (
    "organisations",
    "domains",
    "schedulers",
    "jobs",
    "schedctl.audit",
    "schedctl.tick_heartbeats",
    "schedctl.scheduler_settings",
    "schedctl.served_slots",
)

EXIT_CODES = frozenset({0, 1, 2, 3, 4, 5})

# A small world the hostile commands act on: two organisations (plus a second one named
# "Other", so that `--org Other` is ambiguous), each with schedulers, one of them with jobs.
ACME = "00000000-0000-4000-8000-00000000a001"
OTHER = "00000000-0000-4000-8000-00000000b001"
OTHER_TWIN = "00000000-0000-4000-8000-00000000b002"
ALPHA = "00000000-0000-4000-8000-0000000000a1"  # Acme, alpha.com, 6 h, enabled, has jobs
BETA = "00000000-0000-4000-8000-0000000000b1"  # Acme, beta.org, 24 h, paused, skip policy
GAMMA = "00000000-0000-4000-8000-0000000000c1"  # Other, gamma.net
SHARED = "00000000-0000-4000-8000-0000000000d1"  # Other, alpha.com (same domain as ALPHA)

_WORLD = f"""
INSERT INTO organisations (id, name) VALUES
    ('{ACME}', 'Acme'), ('{OTHER}', 'Other'), ('{OTHER_TWIN}', 'Other')
ON CONFLICT (id) DO NOTHING;
INSERT INTO domains (name) VALUES ('alpha.com'), ('beta.org'), ('gamma.net')
ON CONFLICT (name) DO NOTHING;
WITH world (id, domain, org, hours, wait, enabled, paths, policy, reason) AS (VALUES
    ('{ALPHA}', 'alpha.com', '{ACME}', 6, '2 hours', TRUE, '["/blog"]', 'replace', NULL),
    ('{BETA}', 'beta.org', '{ACME}', 24, '20 hours', FALSE, NULL, 'skip', 'maintenance'),
    ('{GAMMA}', 'gamma.net', '{OTHER}', 12, '5 hours', TRUE, NULL, 'allow', NULL),
    ('{SHARED}', 'alpha.com', '{OTHER}', 48, '1 hour', TRUE, NULL, 'replace', NULL)
),
added AS (
    INSERT INTO schedulers (id, domain_id, organisation_id, schedule_interval_hours,
                            next_run_at, is_enabled, include_paths)
    SELECT v.id::uuid, d.id, v.org::uuid, v.hours, now() + v.wait::interval, v.enabled, v.paths
    FROM world v
    JOIN domains d ON d.name = v.domain
    ON CONFLICT DO NOTHING
    RETURNING id
)
INSERT INTO schedctl.scheduler_settings (scheduler_id, overlap_policy, pause_reason)
SELECT v.id::uuid, v.policy, v.reason FROM world v JOIN added a ON a.id = v.id::uuid;
WITH made AS (
    INSERT INTO jobs (id, domain_id, organisation_id, status, progress, created_at,
                      concurrency, find_links, max_pages, source_type, source_detail,
                      scheduler_id)
    SELECT v.id, d.id, '{ACME}', v.status, 0, now() - v.age::interval, 20, TRUE, 0,
           'scheduler', '{ALPHA}', s.id
    FROM (VALUES ('job-alpha-1', 'completed', '12 hours'), ('job-alpha-2', 'pending', '6 hours'))
        AS v(id, status, age)
    JOIN domains d ON d.name = 'alpha.com'
    LEFT JOIN schedulers s ON s.id = '{ALPHA}'
    ON CONFLICT (id) DO NOTHING
    RETURNING id, scheduler_id, created_at
)
INSERT INTO schedctl.served_slots (scheduler_id, slot, job_id)
SELECT scheduler_id, created_at, id FROM made WHERE scheduler_id IS NOT NULL;
"""


def ensure_world(conn: Any) -> None:
    """Create the little world where it is missing (a deleted scheduler comes back)."""
    conn.execute(_WORLD)


def fingerprint(conn: Any) -> dict[str, tuple[int, str | None]]:
    """Row count and md5 of every writable table's rows, in a stable order."""
    found: dict[str, tuple[int, str | None]] = {}
    for table in TABLES:
        row = conn.execute(
            f"SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {table} t"
        ).fetchone()
        found[table] = (row[0], row[1])
    return found


_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \"", re.MULTILINE)


def check_result(result: Any, *, verbose: bool = False) -> None:
    """What every result of schedctl must be: a contract exit code, no traceback unless
    -v, and on failure nothing on stdout and one `error:` line, the last on stderr (the
    only one, but for a command group given no command, which shows its help first)."""
    context = (
        f"exit {result.code}\nstdout: {result.stdout[:500]!r}\nstderr: {result.stderr[:2000]!r}"
    )
    assert result.code in EXIT_CODES, context
    if not verbose:
        assert not _TRACEBACK.search(result.stderr), context
    if result.code >= 2:
        assert result.stdout == "", context
        lines = result.stderr.splitlines()
        assert [line for line in lines if line.startswith("error: ")] == lines[-1:], context
        if not verbose and not lines[-1].startswith("error: missing command"):
            assert len(lines) == 1, context


@contextmanager
def silent_server() -> Iterator[int]:
    """A local port that accepts connections and never says a word (a hung server)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for sock in accepted:
            sock.close()
        listener.close()
