"""A host database like the real crawl service's (fixtures/realistic_host.sql), and years of
job history in it, for tests and benchmarks.

    load_realistic_host(conninfo)          # an empty database becomes the host
    add_history(conninfo, schedulers=10_000, jobs_per_scheduler=200,
                active_fraction=0.5, due=10_000)

Both run before `schedctl migrate`, as on a real deployment: the host was there first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

FIXTURE = Path(__file__).with_name("fixtures") / "realistic_host.sql"

# Domain names as users typed them, which the host keeps: letter case and Unicode intact,
# and two rows that differ only in case. The first schedulers get these.
TYPED_DOMAINS = ("Mixed-Case.com", "mixed-case.com", "bücher.de", "Café-Crème.fr")


@dataclass(frozen=True)
class History:
    """What add_history put in the database."""

    organisations: int
    domains: int
    schedulers: int
    due: int
    finished_jobs: int
    active_jobs: int


def load_realistic_host(conninfo: str) -> None:
    """Turn an empty database into the host: roles (made only where the server lacks
    them), the auth schema, default privileges, tables, triggers and row-level security."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # One simple-protocol query: the file's own BEGIN/COMMIT blocks apply.
        conn.execute(FIXTURE.read_bytes())


@contextmanager
def _bulk_loading(conn: psycopg.Connection[tuple[object, ...]], table: str) -> Iterator[None]:
    """Inside a transaction: `table` without its indexes, keys and user triggers while the
    block fills it, then everything restored as it was (same names and definitions, read
    from the catalog), the keys validated. Building an index once is several times faster
    than updating it row by row. The rows written meanwhile must satisfy the keys."""
    relation = conn.execute("SELECT %s::regclass::oid", [table]).fetchone()
    assert relation is not None
    oid = relation[0]
    # Foreign keys into the table, then its own keys, in the order they can be dropped.
    constraints = conn.execute(
        """
        SELECT format('ALTER TABLE %%s DROP CONSTRAINT %%I', conrelid::regclass, conname),
               format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', conrelid::regclass, conname,
                      pg_get_constraintdef(oid))
        FROM pg_constraint
        WHERE (confrelid = %(oid)s AND conrelid <> %(oid)s AND contype = 'f')
           OR (conrelid = %(oid)s AND contype IN ('f', 'p', 'u'))
        ORDER BY conrelid = %(oid)s, contype = 'p' OR contype = 'u'
        """,
        {"oid": oid},
    ).fetchall()
    indexes = conn.execute(
        """
        SELECT format('DROP INDEX %%s', indexrelid::regclass), pg_get_indexdef(indexrelid)
        FROM pg_index i
        WHERE indrelid = %(oid)s
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        {"oid": oid},
    ).fetchall()
    # Statements built from the catalog's own definitions above.
    for drop, _ in [*constraints, *indexes]:
        conn.execute(str(drop).encode())
    conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(sql.Identifier(table)))
    yield
    conn.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(sql.Identifier(table)))
    conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for _, create in [*indexes, *reversed(constraints)]:
        conn.execute(str(create).encode())


# One organisation per 100 schedulers (at most 1,000, at least one), each with one member
# whose active organisation it is.
_ORGANISATIONS = """
WITH made AS (
    INSERT INTO organisations (name, created_at, updated_at)
    SELECT 'Organisation ' || g, now() - interval '3 years', now() - interval '3 years'
    FROM generate_series(1, %(organisations)s) AS g
    RETURNING id
),
people AS (
    INSERT INTO users (id, email, full_name, active_organisation_id)
    SELECT gen_random_uuid(), 'owner-' || row_number() OVER (ORDER BY id) || '@example.net',
           'Owner ' || row_number() OVER (ORDER BY id), id
    FROM made
    RETURNING id, active_organisation_id
)
INSERT INTO organisation_members (user_id, organisation_id, role)
SELECT id, active_organisation_id, 'owner' FROM people
"""

# One domain per scheduler: the typed names first, then plain ones.
_DOMAINS = """
INSERT INTO domains (name, created_at, crawl_delay_seconds, sitemap_url, last_crawled_at)
SELECT coalesce((%(typed)s::text[])[g], 'crawl-site-' || g || '.com'),
       now() - interval '3 years',
       CASE WHEN g %% 7 = 0 THEN 2 ELSE 0 END,
       CASE WHEN g %% 3 = 0 THEN 'https://crawl-site-' || g || '.com/sitemap.xml' END,
       now() - interval '1 day'
FROM generate_series(1, %(schedulers)s) AS g
"""

# Schedulers written with the seed's columns only, as the host's own code writes them.
# Scheduler k (1-based, by domain id) is due when k <= due: its slot is up to four grid
# times and an hour past, so the next grid time is hours away. The others come due a day
# and up to one interval from now.
_SCHEDULERS = """
WITH org AS (
    SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM organisations
),
dom AS (
    SELECT id, row_number() OVER (ORDER BY id) AS k FROM domains
)
INSERT INTO schedulers (
    domain_id, organisation_id, schedule_interval_hours, next_run_at, is_enabled, concurrency,
    find_links, max_pages, include_paths, exclude_paths, required_workers, created_at,
    updated_at
)
SELECT dom.id, org.id, hours,
       CASE WHEN dom.k <= %(due)s
            THEN now() - make_interval(hours => (dom.k %% 5)::int * hours)
                 - interval '1 minute' - (dom.k %% 3600) * interval '1 second'
            ELSE now() + interval '1 day' + (dom.k * 7919 %% (hours * 3600)) * interval '1 second'
       END,
       TRUE, (ARRAY[5, 10, 20, 20, 50])[1 + dom.k %% 5], dom.k %% 4 <> 0,
       CASE WHEN dom.k %% 6 = 0 THEN 500 ELSE 0 END,
       CASE WHEN dom.k %% 9 = 0 THEN '["/blog"]' END,
       CASE WHEN dom.k %% 11 = 0 THEN '["/admin","/cart"]' END,
       1, now() - interval '3 years', now() - interval '1 day'
FROM dom
JOIN org ON org.k = dom.k %% %(organisations)s
CROSS JOIN LATERAL (SELECT (ARRAY[6, 12, 24, 48])[1 + dom.k %% 4] AS hours) AS h
"""

# Finished jobs of history: jobs_per_scheduler per scheduler, one interval apart going
# back from the slot before the current one (which is the active job's, if any), written
# oldest first as years of service would have written them, so one domain's jobs are spread
# over the whole table. Mostly completed, some failed or cancelled; every manual_every-th
# one was started by a person from the dashboard (no scheduler). Counters, stats and
# timestamps as the service leaves them.
_HISTORY = """
WITH member AS (
    SELECT organisation_id, min(user_id::text)::uuid AS user_id
    FROM organisation_members GROUP BY organisation_id
),
sched AS (
    SELECT s.*, m.user_id, abs(hashtext(s.id::text)::bigint) AS seed
    FROM schedulers s
    JOIN member m USING (organisation_id)
),
planned AS (  -- narrow rows, sorted cheaply before the wide ones are built
    SELECT s.id AS scheduler_id, s.domain_id, s.organisation_id, s.concurrency, s.find_links,
           s.max_pages, s.include_paths, s.exclude_paths, s.user_id,
           (%(manual_every)s > 0 AND i %% greatest(%(manual_every)s, 1) = 0) AS manual,
           s.next_run_at - make_interval(hours => s.schedule_interval_hours * (i + 1))
               + (i %% 97) * interval '1 second' AS created_at,
           (s.seed + i * 7) %% 100 AS roll,
           10 + (s.seed + i * 13) %% 490 AS total,
           (60 + (s.seed + i * 29) %% 3540) * interval '1 second' AS took
    FROM sched s
    CROSS JOIN generate_series(1, %(per)s) AS i
    ORDER BY created_at
),
shaped AS (
    SELECT p.*,
           CASE WHEN roll < 90 THEN 'completed' WHEN roll < 95 THEN 'failed'
                ELSE 'cancelled' END AS status
    FROM planned p
)
INSERT INTO jobs (
    id, domain_id, user_id, organisation_id, status, progress, sitemap_tasks, found_tasks,
    total_tasks, completed_tasks, failed_tasks, skipped_tasks, running_tasks, pending_tasks,
    waiting_tasks, created_at, started_at, completed_at, concurrency, find_links, max_pages,
    include_paths, exclude_paths, required_workers, error_message, source_type, source_detail,
    source_info, stats, scheduler_id
)
SELECT gen_random_uuid()::text, domain_id, CASE WHEN manual THEN user_id END, organisation_id,
       status,
       CASE status WHEN 'completed' THEN 100 WHEN 'failed' THEN 0 ELSE 40 END,
       CASE WHEN status = 'failed' THEN 0 ELSE total * 4 / 5 END,
       CASE WHEN status = 'failed' THEN 0 ELSE total - total * 4 / 5 END,
       CASE WHEN status = 'failed' THEN 0 ELSE total END,
       CASE status WHEN 'completed' THEN total - total / 50 - total / 20
                   WHEN 'cancelled' THEN total * 2 / 5 ELSE 0 END,
       CASE WHEN status = 'failed' THEN 0 ELSE total / 50 END,
       CASE status WHEN 'completed' THEN total / 20
                   WHEN 'cancelled' THEN total - total * 2 / 5 - total / 50 ELSE 0 END,
       0, 0, 0,
       created_at,
       CASE WHEN status = 'failed' THEN NULL ELSE created_at + interval '20 seconds' END,
       CASE WHEN status = 'failed' THEN created_at + interval '5 minutes'
            ELSE created_at + interval '20 seconds' + took END,
       concurrency, find_links, max_pages,
       coalesce(include_paths, 'null'), coalesce(exclude_paths, 'null'),
       1,
       CASE WHEN status = 'failed' THEN 'no tasks created' END,
       CASE WHEN manual THEN 'dashboard' ELSE 'scheduler' END,
       CASE WHEN manual THEN NULL ELSE scheduler_id::text END,
       NULL,
       CASE WHEN status = 'completed' THEN jsonb_build_object(
           'total_tasks', total, 'avg_response_ms', 150 + roll * 7,
           'duration_seconds', extract(epoch FROM took)::int) END,
       CASE WHEN manual THEN NULL ELSE scheduler_id END
FROM shaped
"""

# The previous crawl still going for a share of the due schedulers, spread evenly over
# them: the job their last slot made, in every active status (mostly running).
_ACTIVE = """
WITH due AS (
    SELECT s.*, row_number() OVER (ORDER BY s.domain_id) AS rank
    FROM schedulers s
    WHERE s.next_run_at <= now()
),
chosen AS (
    SELECT due.*, row_number() OVER (ORDER BY rank) AS nth
    FROM due
    WHERE floor(rank * %(fraction)s::numeric) > floor((rank - 1) * %(fraction)s::numeric)
)
INSERT INTO jobs (
    id, domain_id, organisation_id, status, progress, sitemap_tasks, total_tasks,
    completed_tasks, running_tasks, pending_tasks, created_at, started_at, concurrency,
    find_links, max_pages, include_paths, exclude_paths, required_workers, source_type,
    source_detail, scheduler_id
)
SELECT gen_random_uuid()::text, domain_id, organisation_id, status,
       CASE WHEN status IN ('running', 'paused') THEN 40 ELSE 0 END,
       100, 100,
       CASE WHEN status IN ('running', 'paused') THEN 40 ELSE 0 END,
       CASE WHEN status = 'running' THEN 5 ELSE 0 END,
       CASE WHEN status IN ('running', 'paused') THEN 55 ELSE 100 END,
       now() - interval '30 minutes' - (rank %% 600) * interval '1 second',
       CASE WHEN status IN ('running', 'paused')
            THEN now() - interval '29 minutes' - (rank %% 600) * interval '1 second' END,
       concurrency, find_links, max_pages,
       coalesce(include_paths, 'null'), coalesce(exclude_paths, 'null'), 1,
       'scheduler', id::text, id
FROM chosen
CROSS JOIN LATERAL (
    SELECT CASE nth %% 10 WHEN 0 THEN 'pending' WHEN 1 THEN 'initializing'
                           WHEN 2 THEN 'paused' ELSE 'running' END AS status
) AS st
"""


def add_history(
    conninfo: str,
    *,
    schedulers: int,
    jobs_per_scheduler: int,
    active_fraction: float = 0.5,
    due: int = 0,
    organisations: int | None = None,
    manual_every: int = 10,
) -> History:
    """Fill a freshly loaded host (no organisations or domains yet) with organisations,
    domains, `schedulers` schedulers (`due` of them due now), `jobs_per_scheduler` finished
    jobs of history for each (every `manual_every`-th of them started by hand, with no
    scheduler; 0 for none), and an active job for `active_fraction` of the due schedulers
    (rounded down). Set-based, with the jobs' indexes, keys and triggers set aside while
    the history goes in: two million jobs take about a minute on a small, busy server."""
    if not 0 <= due <= schedulers:
        raise ValueError("due must be between 0 and schedulers")
    if not 0.0 <= active_fraction <= 1.0:
        raise ValueError("active_fraction must be between 0 and 1")
    if organisations is None:
        organisations = max(1, min(1000, schedulers // 100))
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        filled = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM organisations) OR EXISTS (SELECT 1 FROM domains)"
        ).fetchone()
        if filled is None or filled[0]:
            raise ValueError("add_history fills a freshly loaded host only")
        conn.execute(_ORGANISATIONS, {"organisations": organisations})
        domains = conn.execute(
            _DOMAINS, {"typed": list(TYPED_DOMAINS), "schedulers": schedulers}
        ).rowcount
        made = conn.execute(_SCHEDULERS, {"due": due, "organisations": organisations}).rowcount
        with _bulk_loading(conn, "jobs"):
            conn.execute("SET LOCAL work_mem = '256MB'")
            history = conn.execute(
                _HISTORY, {"per": jobs_per_scheduler, "manual_every": manual_every}
            ).rowcount
        active = conn.execute(_ACTIVE, {"fraction": active_fraction}).rowcount
    return History(
        organisations=organisations,
        domains=domains,
        schedulers=made,
        due=due,
        finished_jobs=history,
        active_jobs=active,
    )
