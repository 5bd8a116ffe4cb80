-- Jobs: read in the history shape, and made by `run`.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- fragment: active_statuses
-- The job statuses that count as active (the host's), as an array: `status = ANY (...)`.
ARRAY['pending', 'initializing', 'running', 'paused']

-- fragment: job_columns
-- A job in the history shape (models.Job), over public.jobs j, public.domains d and
-- schedctl.served_slots ss: with the slot a tick made it for, if any, and whether an
-- operator's `run` made it.
j.id, j.scheduler_id, d.name AS domain, j.status, j.progress, j.created_at, j.started_at,
j.completed_at, j.total_tasks, j.completed_tasks, j.failed_tasks, j.skipped_tasks, ss.slot,
CASE WHEN ss.slot IS NULL AND j.source_info = 'manual run' THEN 'manual'
     ELSE 'scheduled' END AS trigger

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

-- name: job_active_exists
-- Whether a job of this domain and organisation is still active.
SELECT EXISTS (
    SELECT 1 FROM public.jobs
    WHERE domain_id = %(domain_id)s AND organisation_id = %(organisation_id)s
      AND status = ANY ({active_statuses})
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
      AND j.status = ANY ({active_statuses})
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

-- name: job_cancel_active
-- `run` under replace with hooks: cancel the active jobs of the scheduler's domain and
-- organisation as the host's flow does (no cancel-job hook).
UPDATE public.jobs SET status = 'cancelled', completed_at = now()
WHERE domain_id = %(domain_id)s AND organisation_id = %(organisation_id)s
  AND status = ANY ({active_statuses});

-- name: job_cancel_active_hook
-- `run` under replace with a cancel-job hook: the host's FUNCTION(job_id text) for each
-- active job of the scheduler's domain and organisation ({function} is its quoted name).
SELECT {function}(id) FROM public.jobs
WHERE domain_id = %(domain_id)s AND organisation_id = %(organisation_id)s
  AND status = ANY ({active_statuses})
ORDER BY id;

-- name: job_create_hook
-- `run` with a create-job hook: the host's FUNCTION(scheduler_id, slot) with the time of the
-- run as its slot ({function} is its quoted name); the id of the job it made, or NULL.
SELECT {function}(%(scheduler_id)s, now()) AS id;
