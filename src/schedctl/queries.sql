-- Every SQL statement schedctl runs, each under a "-- name: NAME" header with one
-- line saying what it does. Values are always %(name)s parameters.

-- name: org_insert
-- Create an organisation.
INSERT INTO public.organisations (name) VALUES (%(name)s)
RETURNING id, name, created_at, 0 AS schedulers;

-- name: org_list
-- Every organisation with its number of schedulers, by name.
SELECT o.id, o.name, o.created_at,
       (SELECT count(*) FROM public.schedulers s WHERE s.organisation_id = o.id) AS schedulers
FROM public.organisations o
ORDER BY o.name, o.id;

-- name: org_find
-- Organisations whose id is the given reference or whose name is, ignoring letter case: the
-- id first, then names written exactly so (3 tell "one exact name among several" apart).
SELECT id, name, created_at FROM public.organisations
WHERE id = %(id)s::uuid OR lower(name) = lower(%(name)s)
ORDER BY (id = %(id)s::uuid) DESC NULLS LAST, (name = %(name)s) DESC, id
LIMIT 3;

-- name: org_any_two
-- Up to two organisations, to tell "none", "exactly one" and "several" apart.
SELECT id, name, created_at FROM public.organisations ORDER BY id LIMIT 2;

-- name: domain_ensure
-- The id of the host's row for a host name, in whatever spelling the host stored it (letter
-- case, Unicode or A-label, a trailing dot: `spellings` holds the lowercased forms); a new
-- row in the normal form when there is none.
WITH found AS (
    SELECT id FROM public.domains
    WHERE lower(rtrim(name, '.')) = ANY (%(spellings)s::text[])
    ORDER BY name = %(name)s DESC, id
    LIMIT 1
),
inserted AS (
    INSERT INTO public.domains (name)
    SELECT %(name)s WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT (name) DO NOTHING
    RETURNING id
)
SELECT id FROM found
UNION ALL
SELECT id FROM inserted;

-- name: scheduler_insert
-- Create a scheduler with the seed's columns; its first run is the given time, now, or now +
-- interval.
INSERT INTO public.schedulers (
    domain_id, organisation_id, schedule_interval_hours, next_run_at, is_enabled,
    concurrency, find_links, max_pages, include_paths, exclude_paths, required_workers
) VALUES (
    %(domain_id)s, %(organisation_id)s, %(schedule_interval_hours)s,
    CASE
        WHEN %(start_at)s::timestamptz IS NOT NULL THEN %(start_at)s::timestamptz
        WHEN %(start_now)s THEN date_trunc('second', now())
        ELSE now() + make_interval(hours => %(schedule_interval_hours)s)
    END,
    %(is_enabled)s, %(concurrency)s, %(find_links)s,
    %(max_pages)s, %(include_paths)s, %(exclude_paths)s, %(required_workers)s
)
RETURNING id;

-- name: settings_write
-- Store what schedctl keeps beside a scheduler's seed columns.
INSERT INTO schedctl.scheduler_settings (
    scheduler_id, overlap_policy, pause_reason, at_time, time_zone, grid_anchor, spread_seconds,
    catchup_window_seconds, paused_until
)
VALUES (%(id)s, %(overlap_policy)s, %(pause_reason)s, %(at_time)s, %(time_zone)s,
        %(grid_anchor)s, %(spread_seconds)s, %(catchup_window_seconds)s, %(paused_until)s)
ON CONFLICT (scheduler_id) DO UPDATE
SET overlap_policy = EXCLUDED.overlap_policy, pause_reason = EXCLUDED.pause_reason,
    at_time = EXCLUDED.at_time, time_zone = EXCLUDED.time_zone,
    grid_anchor = EXCLUDED.grid_anchor, spread_seconds = EXCLUDED.spread_seconds,
    catchup_window_seconds = EXCLUDED.catchup_window_seconds,
    paused_until = EXCLUDED.paused_until;

-- name: scheduler_columns
-- What a Scheduler is read from (models.Scheduler.from_row), over public.schedulers s,
-- public.domains d and schedctl.scheduler_settings st; the queries that use it name it in
-- double braces (sql.py writes it in).
s.id, s.organisation_id, d.name AS domain, s.schedule_interval_hours, s.next_run_at,
s.is_enabled, st.pause_reason, COALESCE(st.overlap_policy, 'replace') AS overlap_policy,
s.concurrency, s.find_links, s.max_pages, s.include_paths, s.exclude_paths,
s.required_workers, s.created_at, s.updated_at,
to_char(st.at_time, CASE WHEN extract(second FROM st.at_time) = 0 THEN 'HH24:MI'
                         ELSE 'HH24:MI:SS' END) AS at,
COALESCE(st.time_zone, 'UTC') AS time_zone,
COALESCE(st.spread_seconds, 0) AS spread_seconds,
extract(epoch FROM schedctl.spread_offset(s.id, COALESCE(st.spread_seconds, 0)))::integer
    AS spread_offset_seconds,
st.catchup_window_seconds, st.paused_until, st.grid_anchor,
s.domain_id, now() AS db_now

-- name: scheduler_get
-- One scheduler of an organisation, by id or by domain (any spelling the host stored).
SELECT {{scheduler_columns}}
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
WHERE s.organisation_id = %(organisation_id)s
  AND (s.id = %(id)s::uuid OR lower(rtrim(d.name, '.')) = ANY (%(spellings)s::text[]))
ORDER BY s.id = %(id)s::uuid DESC NULLS LAST
LIMIT 1;

-- name: scheduler_lock
-- The id of one scheduler of an organisation, by id or domain, locked for a change.
-- NO KEY UPDATE keeps other changes and ticks out without blocking the host's inserts of
-- jobs that reference the scheduler (a DELETE takes the stronger lock itself).
SELECT s.id
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
WHERE s.organisation_id = %(organisation_id)s
  AND (s.id = %(id)s::uuid OR lower(rtrim(d.name, '.')) = ANY (%(spellings)s::text[]))
ORDER BY s.id = %(id)s::uuid DESC NULLS LAST
LIMIT 1
FOR NO KEY UPDATE OF s;

-- name: scheduler_list
-- Schedulers of one organisation (or of all), soonest first, optionally filtered, with the
-- organisation's name and the newest job schedctl made for each: the job of its latest
-- served slot (the primary key of served_slots read backwards) or of its latest `run` (a
-- partial index of the audit trail), whichever is newer. Two index probes per scheduler,
-- whatever the years of history in jobs, whose index on scheduler_id alone would make
-- "the newest of its jobs" read and sort every job the scheduler ever had.
SELECT {{scheduler_columns}},
       o.name AS organisation_name, last_run.id AS last_job_id,
       last_run.status AS last_job_status, last_run.created_at AS last_job_at
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
LEFT JOIN public.organisations o ON o.id = s.organisation_id
LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
LEFT JOIN LATERAL (
    SELECT j.id, j.status, j.created_at
    FROM (
        (SELECT ss.job_id FROM schedctl.served_slots ss
         WHERE ss.scheduler_id = s.id ORDER BY ss.slot DESC LIMIT 1)
        UNION ALL
        (SELECT a.changes -> 'job_id' ->> 1 FROM schedctl.audit a
         WHERE a.scheduler_id = s.id AND a.action = 'run' ORDER BY a.at DESC LIMIT 1)
    ) AS latest (job_id)
    JOIN public.jobs j ON j.id = latest.job_id
    ORDER BY j.created_at DESC
    LIMIT 1
) AS last_run ON TRUE
WHERE (%(organisation_id)s::uuid IS NULL OR s.organisation_id = %(organisation_id)s::uuid)
  AND (%(is_enabled)s::boolean IS NULL OR s.is_enabled = %(is_enabled)s::boolean)
  AND (NOT %(due_only)s OR (s.is_enabled AND s.next_run_at <= now()))
ORDER BY s.next_run_at, d.name, s.id;

-- name: scheduler_write
-- Store every changeable seed column of one scheduler and touch updated_at.
UPDATE public.schedulers SET
    schedule_interval_hours = %(schedule_interval_hours)s,
    next_run_at = %(next_run_at)s,
    is_enabled = %(is_enabled)s,
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
WITH settings AS (
    UPDATE schedctl.scheduler_settings SET pause_reason = NULL, paused_until = NULL
    WHERE scheduler_id = %(id)s
)
UPDATE public.schedulers SET is_enabled = TRUE, updated_at = now()
WHERE id = %(id)s;

-- name: scheduler_delete
-- Delete a scheduler and what schedctl kept beside it. Its jobs stay, detached first (with
-- source_detail still naming it), whatever delete rule the host's foreign key has.
WITH detached AS (
    UPDATE public.jobs SET scheduler_id = NULL WHERE scheduler_id = %(id)s
),
settings AS (
    DELETE FROM schedctl.scheduler_settings WHERE scheduler_id = %(id)s
),
slots AS (
    DELETE FROM schedctl.served_slots WHERE scheduler_id = %(id)s
)
DELETE FROM public.schedulers WHERE id = %(id)s;

-- name: scheduler_history
-- A scheduler's jobs, newest first, one page; only those of the scheduler's organisation,
-- even where the host linked another organisation's job to it. Each with the slot a tick
-- made it for, if any, and whether an operator's `run` made it.
SELECT j.id, j.scheduler_id, d.name AS domain, j.status, j.progress, j.created_at,
       j.started_at, j.completed_at, j.total_tasks, j.completed_tasks, j.failed_tasks,
       j.skipped_tasks, ss.slot,
       CASE WHEN ss.slot IS NULL AND j.source_info = 'manual run' THEN 'manual'
            ELSE 'scheduled' END AS trigger
FROM public.jobs j
JOIN public.domains d ON d.id = j.domain_id
JOIN public.schedulers s ON s.id = j.scheduler_id
LEFT JOIN schedctl.served_slots ss ON ss.scheduler_id = j.scheduler_id AND ss.job_id = j.id
WHERE j.scheduler_id = %(scheduler_id)s
  AND j.organisation_id = s.organisation_id
ORDER BY j.created_at DESC, j.id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: job_get
-- One job, in the history shape.
SELECT j.id, j.scheduler_id, d.name AS domain, j.status, j.progress, j.created_at,
       j.started_at, j.completed_at, j.total_tasks, j.completed_tasks, j.failed_tasks,
       j.skipped_tasks, ss.slot,
       CASE WHEN ss.slot IS NULL AND j.source_info = 'manual run' THEN 'manual'
            ELSE 'scheduled' END AS trigger
FROM public.jobs j
JOIN public.domains d ON d.id = j.domain_id
LEFT JOIN schedctl.served_slots ss ON ss.scheduler_id = j.scheduler_id AND ss.job_id = j.id
WHERE j.id = %(id)s;

-- name: job_active_exists
-- Whether a job of this domain and organisation is still active.
SELECT EXISTS (
    SELECT 1 FROM public.jobs
    WHERE domain_id = %(domain_id)s AND organisation_id = %(organisation_id)s
      AND status IN ('pending', 'initializing', 'running', 'paused')
);

-- name: job_insert_manual
-- A job made now by `run`, outside the schedule: same template as the scheduler, no slot.
-- The replace policy first cancels (unless `cancel_active` is false: a cancel-job hook did) the active jobs of the domain and organisation
-- (a data-modifying CTE always runs to completion, referenced or not).
WITH sched AS (
    SELECT s.id, s.domain_id, s.organisation_id, s.concurrency, s.find_links, s.max_pages,
           s.include_paths, s.exclude_paths, s.required_workers,
           COALESCE(st.overlap_policy, 'replace') AS overlap_policy
    FROM public.schedulers s
    LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
    WHERE s.id = %(scheduler_id)s
),
cancelled AS (
    UPDATE public.jobs j SET status = 'cancelled', completed_at = now()
    FROM sched
    WHERE %(cancel_active)s AND sched.overlap_policy = 'replace'
      AND j.domain_id = sched.domain_id AND j.organisation_id = sched.organisation_id
      AND j.status IN ('pending', 'initializing', 'running', 'paused')
    RETURNING j.id
)
INSERT INTO public.jobs (
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
INSERT INTO schedctl.audit (actor, action, scheduler_id, organisation_id, domain, changes, reason)
VALUES (%(actor)s, %(action)s, %(scheduler_id)s, %(organisation_id)s, %(domain)s,
        %(changes)s, %(reason)s);

-- name: audit_list
-- Audit entries of an organisation (or of all), or of one scheduler in it, newest first,
-- with the organisation's name where it still exists.
SELECT a.id, a.at, a.actor, a.action, a.scheduler_id, a.organisation_id, a.domain,
       a.changes, a.reason, now() AS db_now, o.name AS organisation_name
FROM schedctl.audit a
LEFT JOIN public.organisations o ON o.id = a.organisation_id
WHERE (%(organisation_id)s::uuid IS NULL OR a.organisation_id = %(organisation_id)s::uuid)
  AND (%(scheduler_id)s::uuid IS NULL OR a.scheduler_id = %(scheduler_id)s::uuid)
ORDER BY a.at DESC, a.id DESC
LIMIT %(limit)s;

-- name: audit_find_scheduler
-- The id of a scheduler, deleted or not, that an organisation's audit trail names by id or domain.
SELECT scheduler_id FROM schedctl.audit
WHERE (%(organisation_id)s::uuid IS NULL OR organisation_id = %(organisation_id)s::uuid)
  AND scheduler_id IS NOT NULL
  AND (scheduler_id = %(id)s::uuid OR lower(rtrim(domain, '.')) = ANY (%(spellings)s::text[]))
ORDER BY at DESC, id DESC
LIMIT 1;

-- name: tick_claim
-- Lock up to a batch of due schedulers, most overdue first, skipping rows another tick
-- holds; their ids come back as one uuid[] for tick_apply.
-- NO KEY UPDATE is enough to keep other ticks and operators out, and lets the host
-- keep inserting jobs that reference these schedulers meanwhile.
SELECT array_agg(id) AS ids, count(*) AS claimed
FROM (
    SELECT id FROM public.schedulers
    WHERE is_enabled AND next_run_at <= COALESCE(%(now)s::timestamptz, now())
      AND NOT (id = ANY (%(exclude)s::uuid[]))
    ORDER BY next_run_at
    LIMIT %(batch)s
    FOR NO KEY UPDATE SKIP LOCKED
) AS claimed;

-- name: tick_apply
-- For the claimed schedulers: apply the overlap policy, make one job per slot (the slot's row
-- in served_slots refuses a second), record skipped slots, and move next_run_at to the first
-- grid time strictly after now. Returns one row per scheduler with what was done, its
-- columns in the order tick.py unpacks them.
-- Run in the claim's transaction, after it: this statement's snapshot is taken once the
-- rows are locked, so it sees every slot an earlier tick served for them.
WITH clock AS (
    SELECT COALESCE(%(now)s::timestamptz, now()) AS now
),
planned AS MATERIALIZED (
    SELECT s.id, s.domain_id, s.organisation_id, d.name AS domain,
           CASE WHEN z.next_run_at IS NULL THEN s.next_run_at
                ELSE COALESCE(z.serve, s.next_run_at) END AS slot,
           COALESCE(st.overlap_policy, 'replace') AS overlap_policy, s.concurrency,
           s.find_links, s.max_pages, s.include_paths, s.exclude_paths, s.required_workers,
           -- grid times from before the scheduler existed are not counted
           COALESCE(z.missed, m.missed - CASE WHEN s.next_run_at < s.created_at
               THEN GREATEST(0, ceil(extract(epoch FROM s.created_at - s.next_run_at)
                                     / (s.schedule_interval_hours * 3600))::integer - 1)
               ELSE 0 END) AS missed,
           COALESCE(
               z.next_run_at,
               s.next_run_at
                   + make_interval(hours => s.schedule_interval_hours * (m.missed + 1))
           ) AS next_run_at,
           -- A slot that already has its job (next_run_at was set back onto it): nothing is
           -- cancelled or made for it again; the schedule just moves on. So too when no slot
           -- is to be served: every due one is later than the catch-up window allows.
           z.next_run_at IS NOT NULL AND z.serve IS NULL OR EXISTS (
               SELECT 1 FROM schedctl.served_slots ss
               WHERE ss.scheduler_id = s.id
                 AND ss.slot = CASE WHEN z.next_run_at IS NULL THEN s.next_run_at
                                    ELSE z.serve END
           ) AS served,
           s.next_run_at AS due_slot, st.catchup_window_seconds,
           gen_random_uuid()::text AS job_id,
           clock.now
    FROM unnest(%(ids)s::uuid[]) AS claimed (id)
    JOIN public.schedulers s ON s.id = claimed.id
    JOIN public.domains d ON d.id = s.domain_id
    LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
    CROSS JOIN clock
    -- grid times <= now after the slot: exact (numeric) division of the elapsed seconds
    CROSS JOIN LATERAL (
        SELECT floor(extract(epoch FROM clock.now - s.next_run_at)
                     / (s.schedule_interval_hours * 3600))::integer AS missed
    ) AS m
    -- A wall-clock grid (--at) or a catch-up window: planned by schedctl.plan_slot, for
    -- those rows only (the others keep the arithmetic above).
    LEFT JOIN LATERAL (
        SELECT * FROM schedctl.plan_slot(
            s.next_run_at, clock.now, s.created_at, s.schedule_interval_hours, st.grid_anchor,
            st.time_zone, schedctl.spread_offset(s.id, st.spread_seconds),
            st.catchup_window_seconds
        )
        WHERE st.grid_anchor IS NOT NULL OR st.catchup_window_seconds IS NOT NULL
        -- not pulled up: the condition is checked before the call, not after it
        OFFSET 0
    ) AS z ON TRUE
),
-- The active jobs of the batch's domains and organisations, found in one pass over the
-- active jobs (each checked against a hash of the batch's domains and organisations), not
-- one probe per scheduler: the host's jobs table keeps years of finished jobs per domain.
-- `IS TRUE` keeps each IN a hashed subplan rather than a join: the jobs a pass has just made
-- are active but not yet in the table's statistics, and on an estimate of one active job the
-- planner would pick a nested loop over the batch, N x the batch's size.
active AS MATERIALIZED (
    SELECT j.id, j.domain_id, j.organisation_id
    FROM public.jobs j
    WHERE j.status IN ('pending', 'initializing', 'running', 'paused')
      AND (j.organisation_id IN (SELECT organisation_id FROM planned)) IS TRUE
      AND ((j.domain_id, j.organisation_id) IN (SELECT domain_id, organisation_id FROM planned))
          IS TRUE
),
decided AS MATERIALIZED (
    SELECT p.*,
           NOT p.served AND p.overlap_policy = 'skip' AND EXISTS (
               SELECT 1 FROM active a
               WHERE a.domain_id = p.domain_id AND a.organisation_id = p.organisation_id
           ) AS skip
    FROM planned p
),
cancelled AS (
    -- step cancel_job: tick_apply_cancel_hook when a cancel-job hook is set
    UPDATE public.jobs j SET status = 'cancelled', completed_at = p.now
    FROM active a
    JOIN decided p ON p.domain_id = a.domain_id AND p.organisation_id = a.organisation_id
    WHERE j.id = a.id AND p.overlap_policy = 'replace' AND NOT p.served
    RETURNING j.id
    -- end step
),
-- step create_job: tick_apply_create_hook when a create-job hook is set
recorded AS (
    INSERT INTO schedctl.served_slots (scheduler_id, slot, job_id)
    SELECT p.id, p.slot, p.job_id FROM decided p
    WHERE NOT p.skip AND NOT p.served
      -- a one-time filter: the replaced jobs are cancelled before the new ones are made
      AND (SELECT count(*) FROM cancelled) >= 0
    ON CONFLICT (scheduler_id, slot) DO NOTHING
    RETURNING scheduler_id, job_id
),
inserted AS (
    INSERT INTO public.jobs (
        id, domain_id, organisation_id, status, progress, created_at, concurrency,
        find_links, max_pages, include_paths, exclude_paths, required_workers,
        source_type, source_detail, source_info, scheduler_id
    )
    SELECT r.job_id, p.domain_id, p.organisation_id, 'pending', 0, p.now,
           p.concurrency, p.find_links, p.max_pages, p.include_paths, p.exclude_paths,
           p.required_workers, 'scheduler', p.id::text, NULL, p.id
    FROM recorded r
    JOIN decided p ON p.id = r.scheduler_id
    RETURNING id, scheduler_id
),
-- end step
skipped AS (
    -- Times are written as render.rfc3339 writes them: UTC, "Z", microseconds when not 0.
    INSERT INTO schedctl.audit (
        actor, action, scheduler_id, organisation_id, domain, changes, reason
    )
    SELECT %(actor)s, 'skip', p.id, p.organisation_id, p.domain,
           jsonb_build_object('slot', t.slot, 'next_run_at', jsonb_build_array(t.slot, t.next)),
           'a job of this domain is still active'
    FROM decided p
    CROSS JOIN LATERAL (
        SELECT replace(to_char(p.slot AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                       '.000000', '') || 'Z' AS slot,
               replace(to_char(p.next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                       '.000000', '') || 'Z' AS next
    ) AS t
    WHERE p.skip
),
missed_late AS (
    -- Slots the catch-up window let pass, and why (times written as in `skipped`).
    INSERT INTO schedctl.audit (
        actor, action, scheduler_id, organisation_id, domain, changes, reason
    )
    SELECT %(actor)s, 'missed', p.id, p.organisation_id, p.domain,
           jsonb_build_object('slot', t.slot, 'missed', p.missed,
                              'next_run_at', jsonb_build_array(t.slot, t.next)),
           p.missed || CASE WHEN p.missed = 1 THEN ' slot was' ELSE ' slots were' END
               || ' not served: later than the catch-up window of '
               || (p.catchup_window_seconds / 60) || ' min'
    FROM decided p
    CROSS JOIN LATERAL (
        SELECT replace(to_char(p.due_slot AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                       '.000000', '') || 'Z' AS slot,
               replace(to_char(p.next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                       '.000000', '') || 'Z' AS next
    ) AS t
    WHERE p.catchup_window_seconds IS NOT NULL AND p.missed > 0
),
advanced AS (
    UPDATE public.schedulers s
    SET next_run_at = p.next_run_at, updated_at = p.now
    FROM decided p
    WHERE s.id = p.id
)
SELECT p.id AS scheduler_id, i.id AS job_id, p.organisation_id, p.domain, p.slot,
       p.next_run_at, p.missed, p.skip OR p.served AS skip
FROM decided p
LEFT JOIN inserted i ON i.scheduler_id = p.id
ORDER BY p.slot, p.id;

-- name: tick_apply_cancel_hook
-- tick_apply's cancel step with a cancel-job hook: the host's FUNCTION(job_id text) for each
-- active job the replace policy cancels ({function} is its quoted name). MATERIALIZED: run
-- once per job, by the one-time filter of the step that makes the jobs.
SELECT {function}(a.id) AS id
FROM active a
JOIN decided p ON p.domain_id = a.domain_id AND p.organisation_id = a.organisation_id
WHERE p.overlap_policy = 'replace' AND NOT p.served

-- name: tick_apply_cancel_dry_run
-- tick_apply's cancel step in a dry run while a cancel-job hook is set: no hook is called.
SELECT a.id FROM active a WHERE FALSE

-- name: tick_apply_create_hook
-- tick_apply's steps that make the jobs with a create-job hook: the host's
-- FUNCTION(scheduler_id uuid, slot timestamptz) once per slot to serve, after the replaced
-- jobs were cancelled; the id it returns is the slot's record. No ON CONFLICT: the claim's
-- lock and `served` already keep a second call away, and should a row for the slot appear
-- anyway, the unique violation rolls back the host's job with it. NULL is a declined slot:
-- skipped, with the reason in the audit trail, and no record (the schedule moves on).
made AS MATERIALIZED (
    SELECT p.id, p.slot, {function}(p.id, p.slot) AS job_id
    FROM decided p
    WHERE NOT p.skip AND NOT p.served
      AND (SELECT count(*) FROM cancelled) >= 0
),
recorded AS (
    INSERT INTO schedctl.served_slots (scheduler_id, slot, job_id)
    SELECT id, slot, job_id FROM made WHERE job_id IS NOT NULL
    RETURNING scheduler_id, job_id
),
inserted AS (
    SELECT job_id AS id, scheduler_id FROM recorded
),
declined AS (
    INSERT INTO schedctl.audit (
        actor, action, scheduler_id, organisation_id, domain, changes, reason
    )
    SELECT %(actor)s, 'skip', p.id, p.organisation_id, p.domain,
           jsonb_build_object('slot', t.slot, 'next_run_at', jsonb_build_array(t.slot, t.next)),
           'the create-job hook declined the slot (it returned NULL)'
    FROM made m
    JOIN decided p ON p.id = m.id
    CROSS JOIN LATERAL (
        SELECT replace(to_char(p.slot AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                       '.000000', '') || 'Z' AS slot,
               replace(to_char(p.next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                       '.000000', '') || 'Z' AS next
    ) AS t
    WHERE m.job_id IS NULL
),

-- name: tick_apply_create_dry_run
-- tick_apply's steps that make the jobs, in a dry run while a create-job hook is set: no hook
-- is called and nothing is written; each slot to serve is reported as it would be made.
recorded AS (
    SELECT p.id AS scheduler_id, p.job_id FROM decided p WHERE NOT p.skip AND NOT p.served
),
inserted AS (
    SELECT job_id AS id, scheduler_id FROM recorded
),

-- name: tick_notify
-- Wake the host's workers: sent when the batch's transaction commits, not before.
SELECT pg_notify(%(channel)s, %(payload)s);

-- name: hooks_get
-- The database's hooks (NULL: schedctl's default).
SELECT create_job_schema, create_job_function, cancel_job_schema, cancel_job_function,
       notify_channel, updated_at, updated_by
FROM schedctl.hooks;

-- name: hooks_lock
-- The database's hooks, locked for a change.
SELECT create_job_schema, create_job_function, cancel_job_schema, cancel_job_function,
       notify_channel, updated_at, updated_by
FROM schedctl.hooks
FOR UPDATE;

-- name: hooks_write
-- Store the database's hooks.
UPDATE schedctl.hooks SET
    create_job_schema = %(create_job_schema)s,
    create_job_function = %(create_job_function)s,
    cancel_job_schema = %(cancel_job_schema)s,
    cancel_job_function = %(cancel_job_function)s,
    notify_channel = %(notify_channel)s,
    updated_at = now(),
    updated_by = %(actor)s;

-- name: hook_function_candidates
-- The functions of a schema and name, each with whether it has the form a hook needs
-- (`kind` create_job: (uuid, timestamptz) RETURNS text; cancel_job: (text) RETURNS void)
-- and whether the current role may call it.
SELECT format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
           AS signature,
       coalesce(pg_get_function_result(p.oid), 'nothing (a procedure)') AS result,
       p.prokind = 'f' AND NOT p.proretset
           AND p.proargtypes = CASE %(kind)s
               WHEN 'create_job' THEN '2950 1184'::oidvector  -- uuid, timestamptz
               ELSE '25'::oidvector  -- text
           END
           AND p.prorettype = CASE %(kind)s
               WHEN 'create_job' THEN 'text'::regtype ELSE 'void'::regtype
           END AS fits,
       has_schema_privilege(n.oid, 'USAGE') AND has_function_privilege(p.oid, 'EXECUTE')
           AS executable,
       current_user AS role
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s AND p.proname = %(name)s
ORDER BY fits DESC, signature;

-- name: job_cancel_active
-- `run` under replace with hooks: cancel the active jobs of the scheduler's domain and
-- organisation as the host's flow does (no cancel-job hook).
UPDATE public.jobs SET status = 'cancelled', completed_at = now()
WHERE domain_id = %(domain_id)s AND organisation_id = %(organisation_id)s
  AND status IN ('pending', 'initializing', 'running', 'paused');

-- name: job_cancel_active_hook
-- `run` under replace with a cancel-job hook: the host's FUNCTION(job_id text) for each
-- active job of the scheduler's domain and organisation ({function} is its quoted name).
SELECT {function}(id) FROM public.jobs
WHERE domain_id = %(domain_id)s AND organisation_id = %(organisation_id)s
  AND status IN ('pending', 'initializing', 'running', 'paused')
ORDER BY id;

-- name: job_create_hook
-- `run` with a create-job hook: the host's FUNCTION(scheduler_id, slot) with the time of the
-- run as its slot ({function} is its quoted name); the id of the job it made, or NULL.
SELECT {function}(%(scheduler_id)s, now()) AS id;
-- name: tick_resume_paused
-- Resume the schedulers whose pause has run out (`pause --until`), all at once, each with an
-- audit entry by tick (schedctl.resume_paused: tick's role may not enable schedulers itself).
SELECT schedctl.resume_paused(COALESCE(%(now)s::timestamptz, now()), %(actor)s) AS resumed;

-- name: grid_start
-- The first slot of a wall-clock grid at or after `start` (by the scheduler's spread offset),
-- and the grid's anchor.
SELECT g.first_slot, g.anchor
FROM schedctl.grid_start(
    %(start)s, %(hours)s, %(at_time)s, %(time_zone)s,
    schedctl.spread_offset(%(id)s, %(spread_seconds)s)
) AS g;

-- name: spread_offset_seconds
-- A scheduler's offset inside a spread window of the given width.
SELECT extract(epoch FROM schedctl.spread_offset(%(id)s, %(spread_seconds)s))::integer
    AS seconds;

-- name: local_time_of_day
-- The wall-clock time of day of an instant in a zone.
SELECT (%(moment)s::timestamptz AT TIME ZONE %(time_zone)s)::time AS at_time;

-- name: time_zone_known
-- Whether the server's time zone database knows a zone name.
SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = %(time_zone)s) AS known;

-- name: last_served_slot
-- The latest slot a job was made for, if any.
SELECT max(slot) AS slot FROM schedctl.served_slots WHERE scheduler_id = %(id)s;

-- name: scheduler_next_runs
-- The next run times of a scheduler on a wall-clock grid: its next_run_at, then (from the
-- grid's first time after now when that is past) the grid's following times; each with its
-- wall-clock time and UTC offset in the scheduler's zone, and whether the offset changes on
-- that local day.
WITH runs AS (
    SELECT 0 AS n, %(next_run_at)s::timestamptz AS at
    UNION ALL
    SELECT g.n, schedctl.grid_slot(
        GREATEST(
            schedctl.grid_index(%(next_run_at)s, %(hours)s, %(grid_anchor)s, %(time_zone)s,
                                %(spread)s) + 1,
            schedctl.grid_next_index(now(), %(hours)s, %(grid_anchor)s, %(time_zone)s,
                                     %(spread)s)
        ) + g.n - 1,
        %(hours)s, %(grid_anchor)s, %(time_zone)s, %(spread)s)
    FROM generate_series(1, %(count)s - 1) AS g (n)
)
SELECT runs.at, local.wall AS local_time,
       extract(epoch FROM local.wall - (runs.at AT TIME ZONE 'UTC'))::integer AS utc_offset_seconds,
       ((local.day + interval '1 day') AT TIME ZONE %(time_zone)s)
           - (local.day AT TIME ZONE %(time_zone)s) <> interval '24 hours' AS dst_day
FROM runs
CROSS JOIN LATERAL (
    SELECT runs.at AT TIME ZONE %(time_zone)s AS wall,
           date_trunc('day', runs.at AT TIME ZONE %(time_zone)s) AS day
) AS local
ORDER BY runs.n;

-- name: tick_heartbeat_relaxed
-- The heartbeat's transaction does not wait for its WAL flush: a heartbeat lost in a crash
-- costs nothing, and an idle tick, run every minute, stays cheap.
SET LOCAL synchronous_commit TO OFF;

-- name: tick_heartbeat
-- Record this host's last tick pass and its outcome, for `status`.
INSERT INTO schedctl.tick_heartbeats (host, ticked_at, ok, due, created, skipped, failed, missed, message)
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
       -- lag counts from the scheduler's creation at the earliest
       GREATEST(0, COALESCE(extract(epoch FROM
           now() - min(GREATEST(next_run_at, created_at)) FILTER (WHERE is_enabled)), 0))::float8
           AS worst_lag_seconds,
       now() AS now
FROM public.schedulers
WHERE %(organisation_id)s::uuid IS NULL OR organisation_id = %(organisation_id)s::uuid;

-- name: status_last_tick
-- The most recent tick pass of any host.
SELECT host, ticked_at, ok, due, created, skipped, failed, missed, message
FROM schedctl.tick_heartbeats
ORDER BY ticked_at DESC
LIMIT 1;

-- name: schema_version
-- The last migration applied, as yoyo recorded it.
SELECT migration_id FROM schedctl._yoyo_migration ORDER BY applied_at_utc DESC, migration_id DESC LIMIT 1;

-- name: migrate_lock
-- Wait for the advisory lock that lets one `migrate` run at a time.
SELECT pg_advisory_lock(%(key)s);

-- name: migrate_unlock
-- Release the migration lock (a dropped connection releases it too).
SELECT pg_advisory_unlock(%(key)s);

-- name: yoyo_table_present
-- Whether yoyo has recorded any migration in this database yet.
SELECT to_regclass('schedctl._yoyo_migration') IS NOT NULL AS present;

-- name: yoyo_applied_hashes
-- The hashes of the migrations yoyo has applied.
SELECT migration_hash FROM schedctl._yoyo_migration;

-- name: preflight
-- Whether schedctl's schema is there, and the host tables whose rows row-level security
-- may hide from the current role (FORCE included): those where it is active and no
-- permissive policy for this role shows every row for every command, or a restrictive
-- one applies.
SELECT to_regclass('schedctl.served_slots') IS NOT NULL AS migrated,
       current_user AS role,
       ARRAY(
           SELECT t.name FROM unnest(ARRAY[
               'public.schedulers', 'public.jobs', 'public.domains', 'public.organisations'
           ]) AS t (name)
           WHERE to_regclass(t.name) IS NOT NULL AND row_security_active(t.name)
             AND (
                 NOT EXISTS (
                     SELECT 1 FROM pg_policy p
                     WHERE p.polrelid = to_regclass(t.name) AND p.polpermissive
                       AND p.polcmd = '*'
                       AND pg_get_expr(p.polqual, p.polrelid) = 'true'
                       AND coalesce(pg_get_expr(p.polwithcheck, p.polrelid), 'true') = 'true'
                       AND (0::oid = ANY (p.polroles) OR EXISTS (
                           SELECT 1 FROM unnest(p.polroles) AS r (oid)
                           WHERE pg_has_role(current_user, r.oid, 'USAGE')
                       ))
                 )
                 OR EXISTS (
                     SELECT 1 FROM pg_policy p
                     WHERE p.polrelid = to_regclass(t.name) AND NOT p.polpermissive
                       AND (0::oid = ANY (p.polroles) OR EXISTS (
                           SELECT 1 FROM unnest(p.polroles) AS r (oid)
                           WHERE pg_has_role(current_user, r.oid, 'USAGE')
                       ))
                 )
             )
       ) AS filtered_tables;

-- name: schema_create
-- schedctl's own schema, where yoyo keeps its bookkeeping too.
CREATE SCHEMA IF NOT EXISTS schedctl;

-- name: yoyo_adopt_legacy
-- schedctl 0.1 kept yoyo's bookkeeping in public: copy its records of schedctl's migrations
-- into schedctl's schema, remove them there, and drop yoyo's tables in public when nothing
-- else is left in them (a host that uses yoyo itself keeps its own records).
DO $$
DECLARE
    ours CONSTANT text[] := ARRAY['0001_host_tables', '0002_schedulers', '0003_schedctl_guarantees'];
    name text;
    found boolean;
BEGIN
    IF to_regclass('public._yoyo_migration') IS NULL
       OR to_regclass('schedctl._yoyo_migration') IS NOT NULL THEN
        RETURN;
    END IF;
    -- Dynamic: the table is not there to plan against on every database.
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM public._yoyo_migration WHERE migration_id = ANY ($1))'
        INTO found USING ours;
    IF NOT found THEN
        RETURN;
    END IF;
    FOREACH name IN ARRAY ARRAY['_yoyo_migration', '_yoyo_log', '_yoyo_version', 'yoyo_lock'] LOOP
        IF to_regclass('public.' || name) IS NOT NULL THEN
            EXECUTE format('CREATE TABLE schedctl.%I (LIKE public.%I INCLUDING ALL)', name, name);
        END IF;
    END LOOP;
    INSERT INTO schedctl._yoyo_migration
    SELECT * FROM public._yoyo_migration WHERE migration_id = ANY (ours);
    DELETE FROM public._yoyo_migration WHERE migration_id = ANY (ours);
    IF to_regclass('public._yoyo_log') IS NOT NULL THEN
        INSERT INTO schedctl._yoyo_log SELECT * FROM public._yoyo_log WHERE migration_id = ANY (ours);
        DELETE FROM public._yoyo_log WHERE migration_id = ANY (ours);
    END IF;
    IF to_regclass('public._yoyo_version') IS NOT NULL THEN
        INSERT INTO schedctl._yoyo_version SELECT * FROM public._yoyo_version;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public._yoyo_migration) THEN
        DROP TABLE IF EXISTS public._yoyo_migration, public._yoyo_log, public._yoyo_version,
            public.yoyo_lock;
    END IF;
END
$$;

-- name: revoke_public_access
-- Nothing of schedctl's schema for PUBLIC, nor for the API roles of a Supabase database
-- (anon, authenticated, service_role), whatever default privileges granted them; the
-- roles that run schedctl get their privileges from contrib/grants.sql.
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC', 'anon', 'authenticated', 'service_role'] LOOP
        CONTINUE WHEN grantee <> 'PUBLIC'
            AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grantee);
        IF grantee <> 'PUBLIC' THEN
            grantee := quote_ident(grantee);
        END IF;
        EXECUTE 'REVOKE ALL ON SCHEMA schedctl FROM ' || grantee;
        EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA schedctl FROM ' || grantee;
        EXECUTE 'REVOKE ALL ON ALL SEQUENCES IN SCHEMA schedctl FROM ' || grantee;
        EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA schedctl FROM ' || grantee;
    END LOOP;
END
$$;

-- name: legacy_host_objects
-- What schedctl 0.1 added to the host's tables and is still to be removed.
SELECT name FROM schedctl.legacy_host_objects ORDER BY name;

-- name: legacy_host_object_removed
-- One of 0.1's additions is gone.
DELETE FROM schedctl.legacy_host_objects WHERE name = %(name)s;

-- name: release_jobs_scheduler_slot
-- Drop 0.1's slot column (and its unique index with it) from the host's jobs.
ALTER TABLE public.jobs DROP COLUMN IF EXISTS scheduler_slot;

-- name: release_jobs_active_index
-- Drop 0.1's index of active jobs from the host's jobs (the opt-in index replaces it).
DROP INDEX IF EXISTS public.idx_jobs_active_domain_org;

-- name: release_schedulers_columns
-- Drop 0.1's columns from the host's schedulers (their values are in schedctl's schema).
ALTER TABLE public.schedulers
    DROP COLUMN IF EXISTS overlap_policy,
    DROP COLUMN IF EXISTS pause_reason;

-- name: active_jobs_index_state
-- Whether the host's jobs has an index that finds active jobs by domain and organisation
-- (the opt-in index or one of the host's), whether the opt-in one is left invalid by a
-- build that was killed, and how many rows jobs holds (the planner's estimate; 0 when
-- there is no jobs table yet).
SELECT
    coalesce((
        SELECT greatest(reltuples, 0)::bigint FROM pg_class
        WHERE oid = to_regclass('public.jobs')
    ), 0) AS jobs_estimate,
    EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = to_regclass('public.jobs') AND i.indisvalid
          -- a partial index must hold every active job
          AND (i.indpred IS NULL OR (
              SELECT bool_and(strpos(pg_get_expr(i.indpred, i.indrelid), quote_literal(s)) > 0)
              FROM unnest(ARRAY['pending', 'initializing', 'running', 'paused']) AS s
          ))
          AND (
              SELECT array_agg(a.attname::text ORDER BY k.n)
              FROM unnest(i.indkey) WITH ORDINALITY AS k (attnum, n)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE k.n <= 2
          ) IN ('{domain_id,organisation_id}', '{organisation_id,domain_id}')
    ) AS present,
    EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indexrelid = to_regclass('public.schedctl_jobs_active_idx') AND NOT i.indisvalid
    ) AS invalid;

-- name: active_jobs_index_drop_invalid
-- Remove the opt-in index a killed build left invalid, without blocking the host's writes.
DROP INDEX CONCURRENTLY IF EXISTS public.schedctl_jobs_active_idx;

-- name: active_jobs_index_create
-- The opt-in index: active jobs by domain and organisation, built without blocking the
-- host's writes (it cannot run inside a transaction).
CREATE INDEX CONCURRENTLY IF NOT EXISTS schedctl_jobs_active_idx
    ON public.jobs (domain_id, organisation_id)
    WHERE status IN ('pending', 'initializing', 'running', 'paused');

-- name: transaction_settings
-- What every unit of work runs under, for this transaction only: how long a statement waits
-- for a lock held by another session before giving up.
SELECT set_config('lock_timeout', %(lock_timeout)s, true);

-- name: backend_pid
-- The server process serving this session (a pooler's client sees another id at connect).
SELECT pg_backend_pid() AS pid;

-- name: apply_lock_organisations
-- Wait for each organisation's apply lock, in id order (no deadlock between two files),
-- held until the transaction ends: two `apply` runs on one organisation take turns.
SELECT count(pg_advisory_xact_lock(1399022672, hashtext(id::text)))
FROM (SELECT id FROM unnest(%(ids)s::uuid[]) AS id ORDER BY id) AS ordered;

-- name: apply_lock_schedulers
-- Lock the schedulers of the organisations an apply changes, so that no command or tick
-- changes one between the plan and its writes (the host may still insert jobs).
SELECT count(*) FROM (
    SELECT 1 FROM public.schedulers
    WHERE organisation_id = ANY (%(ids)s::uuid[])
    FOR NO KEY UPDATE
) AS locked;

-- name: apply_current
-- Every scheduler of the given organisations with its settings, its domain as the queries
-- match it (lowercased, no trailing dot), and whether `apply` manages it.
SELECT s.id, s.organisation_id, d.name AS domain, lower(rtrim(d.name, '.')) AS domain_key,
       s.schedule_interval_hours, s.is_enabled, st.pause_reason,
       COALESCE(st.overlap_policy, 'replace') AS overlap_policy, s.concurrency, s.find_links,
       s.max_pages, s.include_paths, s.exclude_paths, s.required_workers, s.next_run_at,
       st.managed_by,
       to_char(st.at_time, CASE WHEN extract(second FROM st.at_time) = 0 THEN 'HH24:MI'
                                ELSE 'HH24:MI:SS' END) AS at,
       COALESCE(st.time_zone, 'UTC') AS time_zone,
       COALESCE(st.spread_seconds, 0) AS spread_seconds,
       st.catchup_window_seconds, st.paused_until, st.grid_anchor
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
WHERE s.organisation_id = ANY (%(ids)s::uuid[])
ORDER BY s.organisation_id, d.name, s.id;

-- name: apply_domains_insert
-- Add the host's rows for the given host names that it has in no spelling (`spellings`
-- pairs each name's position with one lowercased spelling), in one pass over domains.
WITH spelled AS (
    SELECT * FROM unnest(%(spelling_idx)s::int[], %(spellings)s::text[]) AS w (idx, spelling)
),
known AS (
    SELECT DISTINCT w.idx
    FROM spelled w
    JOIN public.domains d ON lower(rtrim(d.name, '.')) = w.spelling
)
INSERT INTO public.domains (name)
SELECT n.name
FROM unnest(%(name_idx)s::int[], %(names)s::text[]) AS n (idx, name)
WHERE n.idx NOT IN (SELECT idx FROM known)
ORDER BY n.idx
ON CONFLICT (name) DO NOTHING;

-- name: apply_domains_find
-- The id of the host's row for each given host name, in whatever spelling it was stored
-- (the row spelled exactly as the normal form first, as domain_ensure chooses).
SELECT DISTINCT ON (w.idx) w.idx, d.id
FROM unnest(%(spelling_idx)s::int[], %(spellings)s::text[]) AS w (idx, spelling)
JOIN unnest(%(name_idx)s::int[], %(names)s::text[]) AS n (idx, name) ON n.idx = w.idx
JOIN public.domains d ON lower(rtrim(d.name, '.')) = w.spelling
ORDER BY w.idx, d.name = n.name DESC, d.id;

-- name: apply_schedulers_insert
-- Create schedulers from a file, one row per element of `rows`; each first runs after one
-- interval, as `create` does.
INSERT INTO public.schedulers (
    domain_id, organisation_id, schedule_interval_hours, next_run_at, is_enabled,
    concurrency, find_links, max_pages, include_paths, exclude_paths, required_workers
)
SELECT v.domain_id, v.organisation_id, v.schedule_interval_hours,
       now() + make_interval(hours => v.schedule_interval_hours), v.is_enabled,
       v.concurrency, v.find_links, v.max_pages, v.include_paths, v.exclude_paths,
       v.required_workers
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    idx integer, domain_id integer, organisation_id uuid, schedule_interval_hours integer,
    is_enabled boolean, concurrency integer, find_links boolean, max_pages integer,
    include_paths text, exclude_paths text, required_workers integer
)
ORDER BY v.idx
RETURNING id, domain_id, organisation_id, next_run_at;

-- name: apply_schedulers_update
-- Store the seed columns of schedulers changed by a file, one row per element of `rows`; a
-- new interval keeps the grid's anchor, as `update --every` does, unless that grid time is
-- before the scheduler's creation or its last served slot (then the next run stays).
UPDATE public.schedulers s SET
    schedule_interval_hours = v.schedule_interval_hours,
    next_run_at = CASE
        WHEN v.schedule_interval_hours = s.schedule_interval_hours THEN s.next_run_at
        WHEN s.next_run_at - make_interval(hours => s.schedule_interval_hours) < GREATEST(
            s.created_at,
            (SELECT max(ss.slot) FROM schedctl.served_slots ss WHERE ss.scheduler_id = s.id)
                + interval '1 microsecond'
        ) THEN s.next_run_at
        ELSE s.next_run_at - make_interval(hours => s.schedule_interval_hours)
             + make_interval(hours => v.schedule_interval_hours)
    END,
    is_enabled = v.is_enabled,
    concurrency = v.concurrency,
    find_links = v.find_links,
    max_pages = v.max_pages,
    include_paths = v.include_paths,
    exclude_paths = v.exclude_paths,
    required_workers = v.required_workers,
    updated_at = now()
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    id uuid, schedule_interval_hours integer, is_enabled boolean, concurrency integer,
    find_links boolean, max_pages integer, include_paths text, exclude_paths text,
    required_workers integer
)
WHERE s.id = v.id
RETURNING s.id, s.next_run_at;

-- name: apply_settings_write
-- Store what schedctl keeps beside schedulers created, changed or adopted by a file, and
-- mark them as managed by `apply`.
INSERT INTO schedctl.scheduler_settings (
    scheduler_id, overlap_policy, pause_reason, at_time, time_zone, grid_anchor, spread_seconds,
    catchup_window_seconds, paused_until, managed_by
)
SELECT v.id, v.overlap_policy, v.pause_reason, v.at, v.time_zone, v.grid_anchor,
       v.spread_seconds, v.catchup_window_seconds, v.paused_until, 'apply'
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    id uuid, overlap_policy text, pause_reason text, at time, time_zone text,
    grid_anchor timestamp, spread_seconds integer, catchup_window_seconds integer,
    paused_until timestamptz
)
ORDER BY v.id
ON CONFLICT (scheduler_id) DO UPDATE
SET overlap_policy = EXCLUDED.overlap_policy, pause_reason = EXCLUDED.pause_reason,
    at_time = EXCLUDED.at_time, time_zone = EXCLUDED.time_zone,
    grid_anchor = EXCLUDED.grid_anchor, spread_seconds = EXCLUDED.spread_seconds,
    catchup_window_seconds = EXCLUDED.catchup_window_seconds,
    paused_until = EXCLUDED.paused_until, managed_by = EXCLUDED.managed_by;

-- name: apply_time_zones_unknown
-- The zone names of a file that the server's time zone database (the one tick reads) does
-- not know, as time_zone_known judges one.
SELECT z.name
FROM unnest(%(zones)s::text[]) AS z (name)
WHERE NOT EXISTS (SELECT 1 FROM pg_timezone_names n WHERE n.name = z.name)
ORDER BY z.name;

-- name: apply_clock
-- The database's clock for this apply (a pause whose end has passed is over).
SELECT now() AS db_now;

-- name: apply_schedulers_place
-- Move the next run of schedulers whose schedule a file set, one row per element of `rows`,
-- as `create` and `update` place it (schedulers._scheduled, grid_start): `placement` "now"
-- is the wall-clock grid's first time from now, never before the scheduler's creation or
-- just after its last served slot; "next" the grid's first time from the next run moved by
-- the new spread offset (to the second); "shift" the elapsed-time grid moved by it. Returns
-- each next run and the grid's anchor (NULL for the elapsed-time grid).
WITH v AS (
    SELECT v.id, v.placement, v.at_time, v.time_zone, s.schedule_interval_hours,
           s.next_run_at - schedctl.spread_offset(v.id, v.old_spread)
               + schedctl.spread_offset(v.id, v.spread_seconds) AS shifted,
           schedctl.spread_offset(v.id, v.spread_seconds) AS spread,
           GREATEST(
               now(), s.created_at,
               (SELECT max(ss.slot) FROM schedctl.served_slots ss WHERE ss.scheduler_id = v.id)
                   + interval '1 microsecond'
           ) AS from_now
    FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
        id uuid, placement text, at_time time, time_zone text, old_spread integer,
        spread_seconds integer
    )
    JOIN public.schedulers s ON s.id = v.id
),
placed AS (
    SELECT v.id, COALESCE(g.first_slot, v.shifted) AS next_run_at, g.anchor
    FROM v
    LEFT JOIN LATERAL schedctl.grid_start(
        CASE v.placement WHEN 'next' THEN date_trunc('second', v.shifted) ELSE v.from_now END,
        v.schedule_interval_hours, v.at_time, v.time_zone, v.spread
    ) AS g ON v.placement <> 'shift'
)
UPDATE public.schedulers s SET next_run_at = p.next_run_at, updated_at = now()
FROM placed p
WHERE s.id = p.id
RETURNING s.id, s.next_run_at, p.anchor;

-- name: apply_schedulers_delete
-- Delete schedulers a file no longer lists, and what schedctl kept beside them; their jobs
-- stay, detached first (source_detail still names them), as scheduler_delete does.
WITH detached AS (
    UPDATE public.jobs SET scheduler_id = NULL WHERE scheduler_id = ANY (%(ids)s::uuid[])
),
settings AS (
    DELETE FROM schedctl.scheduler_settings WHERE scheduler_id = ANY (%(ids)s::uuid[])
),
slots AS (
    DELETE FROM schedctl.served_slots WHERE scheduler_id = ANY (%(ids)s::uuid[])
)
DELETE FROM public.schedulers WHERE id = ANY (%(ids)s::uuid[]);

-- name: apply_audit_insert
-- Append the audit entries of one apply, in order, with `apply` as their source.
INSERT INTO schedctl.audit (
    actor, action, scheduler_id, organisation_id, domain, changes, reason, source
)
SELECT %(actor)s, v.action, v.scheduler_id, v.organisation_id, v.domain, v.changes, v.reason,
       'apply'
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    ord integer, action text, scheduler_id uuid, organisation_id uuid, domain text,
    changes jsonb, reason text
)
ORDER BY v.ord;

-- name: export_schedulers
-- The schedulers of one organisation (or of all), optionally only those `apply` manages,
-- with their organisation's name.
SELECT s.organisation_id, o.name AS organisation_name, d.name AS domain,
       s.schedule_interval_hours, s.is_enabled, st.pause_reason,
       COALESCE(st.overlap_policy, 'replace') AS overlap_policy, s.concurrency, s.find_links,
       s.max_pages, s.include_paths, s.exclude_paths, s.required_workers,
       to_char(st.at_time, CASE WHEN extract(second FROM st.at_time) = 0 THEN 'HH24:MI'
                                ELSE 'HH24:MI:SS' END) AS at,
       COALESCE(st.time_zone, 'UTC') AS time_zone,
       COALESCE(st.spread_seconds, 0) AS spread_seconds,
       st.catchup_window_seconds, st.paused_until
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
JOIN public.organisations o ON o.id = s.organisation_id
LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
WHERE (%(organisation_id)s::uuid IS NULL OR s.organisation_id = %(organisation_id)s::uuid)
  AND (NOT %(managed_only)s OR st.managed_by IS NOT NULL);
-- name: privileges_missing
-- The table privileges the current role lacks on a table of the host's or schedctl's schema,
-- named as a "permission denied for table" message names it (without its schema).
SELECT format('%%I.%%I', n.nspname, c.relname) AS name, current_user AS role,
       ARRAY(
           SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p
           WHERE NOT CASE WHEN p = 'DELETE' THEN has_table_privilege(c.oid, p)
                          ELSE has_any_column_privilege(c.oid, p) END
       ) AS missing
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(name)s AND n.nspname IN ('schedctl', 'public')
ORDER BY n.nspname = 'schedctl' DESC
LIMIT 1;
-- name: scheduler_find_prefix
-- The schedulers of an organisation (or of all) whose id begins with the given hex digits.
SELECT s.id, d.name AS domain
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
WHERE (%(organisation_id)s::uuid IS NULL OR s.organisation_id = %(organisation_id)s::uuid)
  AND replace(s.id::text, '-', '') LIKE %(prefix)s || '%%'
ORDER BY s.id
LIMIT %(limit)s;

-- name: audit_find_prefix
-- The schedulers, deleted or not, of an organisation's audit trail (or of all of it) whose
-- id begins with the given hex digits.
SELECT DISTINCT ON (scheduler_id) scheduler_id AS id, domain
FROM schedctl.audit
WHERE (%(organisation_id)s::uuid IS NULL OR organisation_id = %(organisation_id)s::uuid)
  AND replace(scheduler_id::text, '-', '') LIKE %(prefix)s || '%%'
ORDER BY scheduler_id, at DESC
LIMIT %(limit)s;

-- name: org_name_lock
-- Serialise schedctl's transactions that give an organisation this name (any letter case),
-- until the caller's transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('schedctl.organisation_name:' || lower(%(name)s), 0));

-- name: org_name_taken
-- An organisation other than `keep` whose name is this one, ignoring letter case.
SELECT id, name FROM public.organisations
WHERE lower(name) = lower(%(name)s) AND (%(keep)s::uuid IS NULL OR id <> %(keep)s::uuid)
ORDER BY id
LIMIT 1;

-- name: org_names
-- Every organisation's name, for a "did you mean".
SELECT name FROM public.organisations ORDER BY name;

-- name: org_lock
-- Lock an organisation's row for a rename or a delete.
SELECT id, name, created_at FROM public.organisations WHERE id = %(id)s FOR UPDATE;

-- name: org_rename
-- Give an organisation a new name.
UPDATE public.organisations o SET name = %(name)s, updated_at = now()
WHERE o.id = %(id)s
RETURNING o.id, o.name, o.created_at,
          (SELECT count(*) FROM public.schedulers s WHERE s.organisation_id = o.id) AS schedulers;

-- name: org_usage
-- How many schedulers and jobs an organisation has.
SELECT (SELECT count(*) FROM public.schedulers WHERE organisation_id = %(id)s) AS schedulers,
       (SELECT count(*) FROM public.jobs WHERE organisation_id = %(id)s) AS jobs;

-- name: org_delete_schedulers
-- Delete every scheduler of an organisation as `delete` does one (jobs detached, schedctl's
-- rows beside it removed), each with its audit entry.
WITH doomed AS (
    SELECT s.id, s.organisation_id, d.name AS domain
    FROM public.schedulers s
    JOIN public.domains d ON d.id = s.domain_id
    WHERE s.organisation_id = %(id)s
),
detached AS (
    UPDATE public.jobs SET scheduler_id = NULL WHERE scheduler_id IN (SELECT id FROM doomed)
),
settings AS (
    DELETE FROM schedctl.scheduler_settings WHERE scheduler_id IN (SELECT id FROM doomed)
),
slots AS (
    DELETE FROM schedctl.served_slots WHERE scheduler_id IN (SELECT id FROM doomed)
),
audited AS (
    INSERT INTO schedctl.audit (actor, action, scheduler_id, organisation_id, domain, changes, reason)
    SELECT %(actor)s, 'delete', id, organisation_id, domain, '{}'::jsonb,
           'its organisation was deleted'
    FROM doomed
)
DELETE FROM public.schedulers WHERE id IN (SELECT id FROM doomed);

-- name: org_delete
-- Delete an organisation (the host's foreign keys decide what goes with it).
DELETE FROM public.organisations WHERE id = %(id)s;


-- ---------------------------------------------------------------- interrupts after a commit

-- name: transaction_wrote
-- Whether the current transaction has written anything (it has a transaction id), so that
-- an interrupt from its commit on is held until the command has said what it did.
SELECT txid_current_if_assigned() IS NOT NULL AS wrote;


-- ---------------------------------------------------------------- status: who is lagging

-- name: status_most_overdue
-- The enabled scheduler that has waited longest (lag counts from its creation at the
-- earliest), so that `status` names it.
SELECT s.id, d.name AS domain, o.name AS organisation
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
LEFT JOIN public.organisations o ON o.id = s.organisation_id
WHERE s.is_enabled
  AND (%(organisation_id)s::uuid IS NULL OR s.organisation_id = %(organisation_id)s::uuid)
ORDER BY GREATEST(s.next_run_at, s.created_at), s.id
LIMIT 1;


-- ---------------------------------------------------------------- tick: pauses that run out

-- name: tick_would_resume
-- How many schedulers a pass would resume first (their `pause --until` has come), for a
-- dry run, which resumes none.
SELECT count(*) AS resumed
FROM schedctl.scheduler_settings
WHERE paused_until <= COALESCE(%(now)s::timestamptz, now());
