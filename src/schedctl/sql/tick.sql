-- The tick pass: claim due schedulers, make their jobs, move them on, record the heartbeat.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

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
    WHERE j.status = ANY ({active_statuses})
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

-- name: tick_resume_paused
-- Resume the schedulers whose pause has run out (`pause --until`), all at once, each with an
-- audit entry by tick (schedctl.resume_paused: tick's role may not enable schedulers itself).
SELECT schedctl.resume_paused(COALESCE(%(now)s::timestamptz, now()), %(actor)s) AS resumed;

-- name: tick_would_resume
-- How many schedulers a pass would resume first (their `pause --until` has come), for a
-- dry run, which resumes none.
SELECT count(*) AS resumed
FROM schedctl.scheduler_settings
WHERE paused_until <= COALESCE(%(now)s::timestamptz, now());

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
