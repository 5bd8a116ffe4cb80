-- An example host whose workers run a job only once it has tasks: schedctl's hooks make
-- each scheduled job together with its first task, and cancel a job together with its
-- queued tasks, in the transaction of the tick batch (or `schedctl run`) that calls them.
--
-- Install it as the owner of the host's tables, after `schedctl migrate`:
--
--     psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f contrib/hooks/first-task.sql
--     schedctl hooks set --create-job public.schedctl_create_job \
--                        --cancel-job public.schedctl_cancel_job --notify schedctl_jobs
--
-- or, with the set-based form (one call per batch instead of one per slot):
--
--     schedctl hooks set --create-jobs public.schedctl_create_jobs \
--                        --cancel-job public.schedctl_cancel_job --notify schedctl_jobs
--
-- The functions run with the privileges of the role that calls them (the role that runs
-- tick, or the operator's for `run`), which the end of this file grants what they need.
-- They name every table with its schema. (SECURITY DEFINER would spare those grants, but it
-- wants a fixed search_path, and a function with a SET clause costs several times as much
-- per call: tick calls it once per slot.) Running this file again is safe.

-- The example host's tasks: one row per URL to crawl (a real host has many more columns).
CREATE TABLE IF NOT EXISTS public.tasks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES public.jobs (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'waiting', 'running', 'completed', 'failed', 'skipped')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tasks_job_id ON public.tasks (job_id);

-- create-job: the job as SPEC §4 describes tick's own (pending, the scheduler's template,
-- linked through jobs.scheduler_id, so that `history` and `show` find it), and its first
-- task, the root URL of the domain, in one statement. Returns the job's id; returning NULL
-- would decline the slot. tick calls it once per slot it serves; `run` calls it with the
-- time of the run.
CREATE OR REPLACE FUNCTION public.schedctl_create_job(scheduler_id uuid, slot timestamptz)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    new_id text := gen_random_uuid()::text;
BEGIN
    WITH job AS (
        INSERT INTO public.jobs (
            id, domain_id, organisation_id, status, progress, created_at, concurrency,
            find_links, max_pages, include_paths, exclude_paths, required_workers,
            source_type, source_detail, source_info, scheduler_id
        )
        SELECT new_id, s.domain_id, s.organisation_id, 'pending', 0, now(), s.concurrency,
               s.find_links, s.max_pages, s.include_paths, s.exclude_paths,
               s.required_workers, 'scheduler', s.id::text, NULL, s.id
        FROM public.schedulers s
        WHERE s.id = schedctl_create_job.scheduler_id
        RETURNING domain_id
    )
    INSERT INTO public.tasks (job_id, url)
    SELECT new_id, 'https://' || d.name || '/'
    FROM job JOIN public.domains d ON d.id = job.domain_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no scheduler %', schedctl_create_job.scheduler_id;
    END IF;
    RETURN new_id;
END
$$;

-- create-jobs: the same, set-based: tick calls it once per batch with the slots to serve
-- (the scheduler ids and their slots, in step), and it makes every job and its first task
-- in one statement. A row with a NULL job_id (or no row for a scheduler) declines its slot.
CREATE OR REPLACE FUNCTION public.schedctl_create_jobs(scheduler_ids uuid[], slots timestamptz[])
RETURNS TABLE (scheduler_id uuid, slot timestamptz, job_id text)
LANGUAGE sql
AS $$
    WITH wanted AS (
        SELECT w.scheduler_id, w.slot, gen_random_uuid()::text AS job_id
        FROM unnest(scheduler_ids, slots) AS w (scheduler_id, slot)
    ),
    job AS (
        INSERT INTO public.jobs (
            id, domain_id, organisation_id, status, progress, created_at, concurrency,
            find_links, max_pages, include_paths, exclude_paths, required_workers,
            source_type, source_detail, source_info, scheduler_id
        )
        SELECT w.job_id, s.domain_id, s.organisation_id, 'pending', 0, now(), s.concurrency,
               s.find_links, s.max_pages, s.include_paths, s.exclude_paths,
               s.required_workers, 'scheduler', s.id::text, NULL, s.id
        FROM wanted w
        JOIN public.schedulers s ON s.id = w.scheduler_id
        RETURNING id, domain_id
    ),
    task AS (
        INSERT INTO public.tasks (job_id, url)
        SELECT job.id, 'https://' || d.name || '/'
        FROM job JOIN public.domains d ON d.id = job.domain_id
    )
    SELECT w.scheduler_id, w.slot, job.id
    FROM wanted w
    LEFT JOIN job ON job.id = w.job_id
$$;

-- cancel-job: what the replace policy does to the active job it replaces: the job is
-- cancelled, and its queued tasks are skipped (they would otherwise keep counting against
-- the organisation's quota).
CREATE OR REPLACE FUNCTION public.schedctl_cancel_job(job_id text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE public.jobs SET status = 'cancelled', completed_at = now()
    WHERE id = schedctl_cancel_job.job_id
      AND status IN ('pending', 'initializing', 'running', 'paused');
    UPDATE public.tasks SET status = 'skipped'
    WHERE tasks.job_id = schedctl_cancel_job.job_id AND status IN ('pending', 'waiting');
END
$$;

-- Only the roles that run schedctl may call them; the tick role of contrib/grants.sql, when
-- there is one, also gets what the functions write beyond what tick itself may.
REVOKE ALL ON FUNCTION public.schedctl_create_job(uuid, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.schedctl_create_jobs(uuid[], timestamptz[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.schedctl_cancel_job(text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'schedctl_tick') THEN
        GRANT EXECUTE ON FUNCTION public.schedctl_create_job(uuid, timestamptz),
            public.schedctl_create_jobs(uuid[], timestamptz[]),
            public.schedctl_cancel_job(text) TO schedctl_tick;
        GRANT SELECT (job_id, status), INSERT (job_id, url), UPDATE (status)
            ON public.tasks TO schedctl_tick;
    END IF;
END
$$;
