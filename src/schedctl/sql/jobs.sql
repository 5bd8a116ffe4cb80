-- Jobs: read in the history shape, and made by `run` (through schedctl.run_job).
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- fragment: active_statuses
-- The job statuses that count as active (the host's), as an array: `status = ANY (...)`.
ARRAY['pending', 'initializing', 'running', 'paused']

-- fragment: made_by_run
-- Whether an operator's `run` made job j (over public.jobs j): schedctl's insert marks it; a
-- create-job hook's job is named by the run's audit entry.
(j.source_info = 'manual run' OR EXISTS (
    SELECT 1 FROM schedctl.audit a
    WHERE a.action = 'run' AND a.scheduler_id = j.scheduler_id
      AND a.changes -> 'job_id' ->> 1 = j.id))

-- fragment: job_columns
-- A job in the history shape (models.Job), over public.jobs j, public.domains d and
-- schedctl.served_slots ss: with the slot a tick made it for, if any, and whether an
-- operator's `run` made it (schedctl's insert marks it; a create-job hook's job is named by
-- the run's audit entry).
j.id, j.scheduler_id, d.name AS domain, j.status, j.progress, j.created_at, j.started_at,
j.completed_at, j.total_tasks, j.completed_tasks, j.failed_tasks, j.skipped_tasks, ss.slot,
CASE WHEN ss.slot IS NULL AND {made_by_run} THEN 'manual' ELSE 'scheduled' END AS trigger

-- name: scheduler_history
-- A scheduler's jobs, newest first, one page; only those of the scheduler's organisation,
-- even where the host linked another organisation's job to it. Each with the slot a tick
-- made it for, if any, and whether an operator's `run` made it.
SELECT {job_columns}
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
SELECT {job_columns}
FROM public.jobs j
JOIN public.domains d ON d.id = j.domain_id
LEFT JOIN schedctl.served_slots ss ON ss.scheduler_id = j.scheduler_id AND ss.job_id = j.id
WHERE j.id = %(id)s;

-- name: jobs_made
-- The jobs schedctl made (for a served slot, or by `run`) for the schedulers of an
-- organisation (or of all), newest first, one page: from `since` (a time, or an age by the
-- database clock), of one status; each with its domain, slot and trigger.
SELECT {job_columns}
FROM public.jobs j
JOIN public.domains d ON d.id = j.domain_id
JOIN public.schedulers s ON s.id = j.scheduler_id AND s.organisation_id = j.organisation_id
LEFT JOIN schedctl.served_slots ss ON ss.scheduler_id = j.scheduler_id AND ss.job_id = j.id
WHERE (%(organisation_id)s::uuid IS NULL OR j.organisation_id = %(organisation_id)s::uuid)
  AND j.created_at >= COALESCE(%(since_at)s::timestamptz, now() - %(since_ago)s::interval,
                               '-infinity'::timestamptz)
  AND (%(status)s::text IS NULL OR j.status = %(status)s::text)
  AND (ss.job_id IS NOT NULL OR {made_by_run})
ORDER BY j.created_at DESC, j.id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: run_job
-- `run`: a job for one scheduler (locked by the caller) now, as tick makes one (see
-- schedctl.run_job); its outcome.
SELECT * FROM schedctl.run_job(%(scheduler_id)s, %(actor)s);
