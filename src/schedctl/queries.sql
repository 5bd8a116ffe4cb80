-- Every SQL statement schedctl runs, each under a "-- name: NAME" header with one
-- line saying what it does. Values are always %(name)s parameters.

-- name: org_insert
-- Create an organisation.
INSERT INTO organisations (name) VALUES (%(name)s)
RETURNING id, name, created_at;

-- name: org_list
-- Every organisation with its number of schedulers, by name.
SELECT o.id, o.name, o.created_at,
       (SELECT count(*) FROM schedulers s WHERE s.organisation_id = o.id) AS schedulers
FROM organisations o
ORDER BY o.name, o.id;

-- name: org_find
-- Organisations whose id or name is the given reference (at most 2 are needed).
SELECT id, name FROM organisations
WHERE id = %(id)s::uuid OR name = %(name)s
ORDER BY (id = %(id)s::uuid) DESC NULLS LAST, id
LIMIT 2;

-- name: org_any_two
-- Up to two organisations, to tell "none", "exactly one" and "several" apart.
SELECT id, name FROM organisations ORDER BY id LIMIT 2;

-- name: domain_ensure
-- The id of a domain, inserting it when the host does not know it yet.
WITH inserted AS (
    INSERT INTO domains (name) VALUES (%(name)s)
    ON CONFLICT (name) DO NOTHING
    RETURNING id
)
SELECT id FROM inserted
UNION ALL
SELECT id FROM domains WHERE name = %(name)s
LIMIT 1;

-- name: scheduler_insert
-- Create a scheduler; its first run is the given time, now, or now + interval.
INSERT INTO schedulers (
    domain_id, organisation_id, schedule_interval_hours, next_run_at, is_enabled,
    pause_reason, overlap_policy, concurrency, find_links, max_pages,
    include_paths, exclude_paths, required_workers
) VALUES (
    %(domain_id)s, %(organisation_id)s, %(schedule_interval_hours)s,
    CASE
        WHEN %(start_at)s::timestamptz IS NOT NULL THEN %(start_at)s::timestamptz
        WHEN %(start_now)s THEN now()
        ELSE now() + make_interval(hours => %(schedule_interval_hours)s)
    END,
    %(is_enabled)s, %(pause_reason)s, %(overlap_policy)s, %(concurrency)s, %(find_links)s,
    %(max_pages)s, %(include_paths)s, %(exclude_paths)s, %(required_workers)s
)
RETURNING id;

-- name: scheduler_get
-- One scheduler of an organisation, by id or by domain name.
SELECT s.id, s.organisation_id, d.name AS domain, s.schedule_interval_hours, s.next_run_at,
       s.is_enabled, s.pause_reason, s.overlap_policy, s.concurrency, s.find_links,
       s.max_pages, s.include_paths, s.exclude_paths, s.required_workers,
       s.created_at, s.updated_at, s.domain_id, now() AS db_now
FROM schedulers s
JOIN domains d ON d.id = s.domain_id
WHERE s.organisation_id = %(organisation_id)s
  AND (s.id = %(id)s::uuid OR d.name = %(domain)s)
LIMIT 1;

-- name: scheduler_lock
-- The id of one scheduler of an organisation, by id or domain, locked for a change.
-- NO KEY UPDATE keeps other changes and ticks out without blocking the host's inserts of
-- jobs that reference the scheduler (a DELETE takes the stronger lock itself).
SELECT s.id
FROM schedulers s
JOIN domains d ON d.id = s.domain_id
WHERE s.organisation_id = %(organisation_id)s
  AND (s.id = %(id)s::uuid OR d.name = %(domain)s)
LIMIT 1
FOR NO KEY UPDATE OF s;

-- name: scheduler_list
-- Schedulers of one organisation (or of all), soonest first, optionally filtered.
SELECT s.id, s.organisation_id, d.name AS domain, s.schedule_interval_hours, s.next_run_at,
       s.is_enabled, s.pause_reason, s.overlap_policy, s.concurrency, s.find_links,
       s.max_pages, s.include_paths, s.exclude_paths, s.required_workers,
       s.created_at, s.updated_at, s.domain_id, now() AS db_now
FROM schedulers s
JOIN domains d ON d.id = s.domain_id
WHERE (%(organisation_id)s::uuid IS NULL OR s.organisation_id = %(organisation_id)s::uuid)
  AND (%(is_enabled)s::boolean IS NULL OR s.is_enabled = %(is_enabled)s::boolean)
  AND (NOT %(due_only)s OR (s.is_enabled AND s.next_run_at <= now()))
ORDER BY s.next_run_at, d.name, s.id;

-- name: scheduler_write
-- Store every changeable field of one scheduler and touch updated_at.
UPDATE schedulers SET
    schedule_interval_hours = %(schedule_interval_hours)s,
    next_run_at = %(next_run_at)s,
    is_enabled = %(is_enabled)s,
    pause_reason = %(pause_reason)s,
    overlap_policy = %(overlap_policy)s,
    concurrency = %(concurrency)s,
    find_links = %(find_links)s,
    max_pages = %(max_pages)s,
    include_paths = %(include_paths)s,
    exclude_paths = %(exclude_paths)s,
    required_workers = %(required_workers)s,
    updated_at = now()
WHERE id = %(id)s;

-- name: scheduler_resume
-- Enable a scheduler; a slot that passed while it was paused is due at once.
UPDATE schedulers SET is_enabled = TRUE, pause_reason = NULL, updated_at = now()
WHERE id = %(id)s;

-- name: scheduler_delete
-- Delete a scheduler; its jobs stay, with scheduler_id set to NULL by the foreign key.
DELETE FROM schedulers WHERE id = %(id)s;

-- name: scheduler_history
-- A scheduler's jobs, newest first, one page; only those of the scheduler's organisation,
-- even where the host linked another organisation's job to it.
SELECT j.id, j.scheduler_id, d.name AS domain, j.status, j.progress, j.created_at,
       j.started_at, j.completed_at, j.total_tasks, j.completed_tasks, j.failed_tasks,
       j.skipped_tasks
FROM jobs j
JOIN domains d ON d.id = j.domain_id
JOIN schedulers s ON s.id = j.scheduler_id
WHERE j.scheduler_id = %(scheduler_id)s
  AND j.organisation_id = s.organisation_id
ORDER BY j.created_at DESC, j.id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: job_get
-- One job, in the history shape.
SELECT j.id, j.scheduler_id, d.name AS domain, j.status, j.progress, j.created_at,
       j.started_at, j.completed_at, j.total_tasks, j.completed_tasks, j.failed_tasks,
       j.skipped_tasks
FROM jobs j
JOIN domains d ON d.id = j.domain_id
WHERE j.id = %(id)s;

-- name: job_active_exists
-- Whether a job of this domain and organisation is still active.
SELECT EXISTS (
    SELECT 1 FROM jobs
    WHERE domain_id = %(domain_id)s AND organisation_id = %(organisation_id)s
      AND status IN ('pending', 'initializing', 'running', 'paused')
);

-- name: job_insert_manual
-- A job made now by `run`, outside the schedule: same template as the scheduler, no slot.
-- The replace policy first cancels the active jobs of the domain and organisation
-- (a data-modifying CTE always runs to completion, referenced or not).
WITH sched AS (
    SELECT * FROM schedulers WHERE id = %(scheduler_id)s
),
cancelled AS (
    UPDATE jobs j SET status = 'cancelled', completed_at = now()
    FROM sched
    WHERE sched.overlap_policy = 'replace'
      AND j.domain_id = sched.domain_id AND j.organisation_id = sched.organisation_id
      AND j.status IN ('pending', 'initializing', 'running', 'paused')
    RETURNING j.id
)
INSERT INTO jobs (
    id, domain_id, organisation_id, status, progress, created_at, concurrency, find_links,
    max_pages, include_paths, exclude_paths, required_workers, source_type, source_detail,
    source_info, scheduler_id
)
SELECT gen_random_uuid()::text, domain_id, organisation_id, 'pending', 0, now(), concurrency,
       find_links, max_pages, include_paths, exclude_paths, required_workers, 'scheduler',
       id::text, %(source_info)s, id
FROM sched
RETURNING id;

-- name: audit_insert
-- Append one entry to the audit trail.
INSERT INTO scheduler_audit (actor, action, scheduler_id, organisation_id, domain, changes, reason)
VALUES (%(actor)s, %(action)s, %(scheduler_id)s, %(organisation_id)s, %(domain)s,
        %(changes)s, %(reason)s);

-- name: audit_list
-- Audit entries of an organisation, or of one scheduler in it, newest first.
SELECT id, at, actor, action, scheduler_id, organisation_id, domain, changes, reason,
       now() AS db_now
FROM scheduler_audit
WHERE organisation_id = %(organisation_id)s
  AND (%(scheduler_id)s::uuid IS NULL OR scheduler_id = %(scheduler_id)s::uuid)
ORDER BY at DESC, id DESC
LIMIT %(limit)s;

-- name: audit_find_scheduler
-- The id of a scheduler, deleted or not, that an organisation's audit trail names by id or domain.
SELECT scheduler_id FROM scheduler_audit
WHERE organisation_id = %(organisation_id)s
  AND (scheduler_id = %(id)s::uuid OR domain = %(domain)s)
ORDER BY at DESC, id DESC
LIMIT 1;

-- name: tick_claim
-- Lock up to a batch of due schedulers, most overdue first, skipping rows another tick
-- holds; their ids come back as one uuid[] literal for tick_apply.
-- NO KEY UPDATE is enough to keep other ticks and operators out, and lets the host
-- keep inserting jobs that reference these schedulers meanwhile.
SELECT array_agg(id)::text AS ids, count(*) AS claimed
FROM (
    SELECT id FROM schedulers
    WHERE is_enabled AND next_run_at <= COALESCE(%(now)s::timestamptz, now())
      AND NOT (id = ANY (%(exclude)s::uuid[]))
    ORDER BY next_run_at
    LIMIT %(batch)s
    FOR NO KEY UPDATE SKIP LOCKED
) AS claimed;

-- name: tick_apply
-- For the claimed schedulers: apply the overlap policy, make one job per slot (the unique
-- slot index refuses a second), record skipped slots, and move next_run_at to the first
-- grid time strictly after now. Returns one row per scheduler with what was done, its
-- columns in the order tick.py unpacks them.
-- Run in the claim's transaction, after it: this statement's snapshot is taken once the
-- rows are locked, so it sees every job an earlier tick made for them.
WITH clock AS (
    SELECT COALESCE(%(now)s::timestamptz, now()) AS now
),
planned AS (
    SELECT s.id, s.domain_id, s.organisation_id, d.name AS domain, s.next_run_at AS slot,
           s.overlap_policy, s.concurrency, s.find_links, s.max_pages, s.include_paths,
           s.exclude_paths, s.required_workers, m.missed,
           s.next_run_at
               + make_interval(hours => s.schedule_interval_hours * (m.missed + 1))
               AS next_run_at,
           (NOT served.served AND s.overlap_policy = 'skip' AND EXISTS (
               SELECT 1 FROM jobs j
               WHERE j.domain_id = s.domain_id AND j.organisation_id = s.organisation_id
                 AND j.status IN ('pending', 'initializing', 'running', 'paused')
           )) AS skip,
           served.served,
           clock.now
    FROM unnest(%(ids)s::uuid[]) AS claimed (id)
    JOIN schedulers s ON s.id = claimed.id
    JOIN domains d ON d.id = s.domain_id
    CROSS JOIN clock
    -- A slot that already has its job (next_run_at was set back onto it): nothing is
    -- cancelled or made for it again; the schedule just moves on.
    CROSS JOIN LATERAL (
        SELECT EXISTS (
            SELECT 1 FROM jobs j WHERE j.scheduler_id = s.id AND j.scheduler_slot = s.next_run_at
        ) AS served
    ) AS served
    -- grid times <= now after the slot: exact (numeric) division of the elapsed seconds
    CROSS JOIN LATERAL (
        SELECT floor(extract(epoch FROM clock.now - s.next_run_at)
                     / (s.schedule_interval_hours * 3600))::integer AS missed
    ) AS m
),
cancelled AS (
    UPDATE jobs j SET status = 'cancelled', completed_at = p.now
    FROM planned p
    WHERE p.overlap_policy = 'replace' AND NOT p.served
      AND j.domain_id = p.domain_id AND j.organisation_id = p.organisation_id
      AND j.status IN ('pending', 'initializing', 'running', 'paused')
),
inserted AS (
    INSERT INTO jobs (
        id, domain_id, organisation_id, status, progress, created_at, concurrency,
        find_links, max_pages, include_paths, exclude_paths, required_workers,
        source_type, source_detail, source_info, scheduler_id, scheduler_slot
    )
    SELECT gen_random_uuid()::text, p.domain_id, p.organisation_id, 'pending', 0, p.now,
           p.concurrency, p.find_links, p.max_pages, p.include_paths, p.exclude_paths,
           p.required_workers, 'scheduler', p.id::text, NULL, p.id, p.slot
    FROM planned p
    WHERE NOT p.skip AND NOT p.served
    ON CONFLICT (scheduler_id, scheduler_slot) WHERE scheduler_slot IS NOT NULL DO NOTHING
    RETURNING id, scheduler_id
),
skipped AS (
    -- Times are written as render.rfc3339 writes them: UTC, "Z", microseconds when not 0.
    INSERT INTO scheduler_audit (
        actor, action, scheduler_id, organisation_id, domain, changes, reason
    )
    SELECT %(actor)s, 'skip', p.id, p.organisation_id, p.domain,
           jsonb_build_object('slot', t.slot, 'next_run_at', jsonb_build_array(t.slot, t.next)),
           'a job of this domain is still active'
    FROM planned p
    CROSS JOIN LATERAL (
        SELECT replace(to_char(p.slot AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                       '.000000', '') || 'Z' AS slot,
               replace(to_char(p.next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                       '.000000', '') || 'Z' AS next
    ) AS t
    WHERE p.skip
),
advanced AS (
    UPDATE schedulers s
    SET next_run_at = p.next_run_at, updated_at = p.now
    FROM planned p
    WHERE s.id = p.id
)
SELECT p.id AS scheduler_id, i.id AS job_id, p.organisation_id, p.domain, p.slot,
       p.next_run_at, p.missed, p.skip OR p.served AS skip
FROM planned p
LEFT JOIN inserted i ON i.scheduler_id = p.id
ORDER BY p.slot, p.id;

-- name: tick_heartbeat_relaxed
-- The heartbeat's transaction does not wait for its WAL flush: a heartbeat lost in a crash
-- costs nothing, and an idle tick, run every minute, stays cheap.
SET LOCAL synchronous_commit TO OFF;

-- name: tick_heartbeat
-- Record this host's last tick pass and its outcome, for `status`.
INSERT INTO tick_heartbeats (host, ticked_at, ok, due, created, skipped, failed, missed, message)
VALUES (%(host)s, now(), %(ok)s, %(due)s, %(created)s, %(skipped)s, %(failed)s, %(missed)s,
        %(message)s)
ON CONFLICT (host) DO UPDATE SET
    ticked_at = EXCLUDED.ticked_at, ok = EXCLUDED.ok, due = EXCLUDED.due,
    created = EXCLUDED.created, skipped = EXCLUDED.skipped, failed = EXCLUDED.failed,
    missed = EXCLUDED.missed, message = EXCLUDED.message;

-- name: status_schedulers
-- Counts of enabled, paused and due schedulers, and the worst lag, by the database clock.
SELECT count(*) FILTER (WHERE is_enabled) AS enabled,
       count(*) FILTER (WHERE NOT is_enabled) AS paused,
       count(*) FILTER (WHERE is_enabled AND next_run_at <= now()) AS due,
       GREATEST(0, COALESCE(extract(epoch FROM
           now() - min(next_run_at) FILTER (WHERE is_enabled)), 0))::float8 AS worst_lag_seconds,
       now() AS now
FROM schedulers
WHERE %(organisation_id)s::uuid IS NULL OR organisation_id = %(organisation_id)s::uuid;

-- name: status_last_tick
-- The most recent tick pass of any host.
SELECT host, ticked_at, ok, due, created, skipped, failed, missed, message
FROM tick_heartbeats
ORDER BY ticked_at DESC
LIMIT 1;

-- name: schema_version
-- The last migration applied, as yoyo recorded it.
SELECT migration_id FROM _yoyo_migration ORDER BY applied_at_utc DESC, migration_id DESC LIMIT 1;

-- name: migrate_lock
-- Wait for the advisory lock that lets one `migrate` run at a time.
SELECT pg_advisory_lock(%(key)s);

-- name: migrate_unlock
-- Release the migration lock (a dropped connection releases it too).
SELECT pg_advisory_unlock(%(key)s);

-- name: yoyo_table_present
-- Whether yoyo has recorded any migration in this database yet.
SELECT to_regclass('_yoyo_migration') IS NOT NULL AS present;

-- name: yoyo_applied_hashes
-- The hashes of the migrations yoyo has applied.
SELECT migration_hash FROM _yoyo_migration;
