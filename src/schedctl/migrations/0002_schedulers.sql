-- The schedulers table and jobs.scheduler_id in the seed plan's shape, created
-- only where the host lacks them; with the host's later ON DELETE CASCADE on
-- domain and organisation. A host that has them keeps them exactly as they are
-- (whatever delete rule its jobs.scheduler_id foreign key has: `delete` detaches
-- a scheduler's jobs itself).
-- depends: 0001_host_tables

-- A statement that changes a host table waits at most this long for its lock (the
-- host's queries queue behind it meanwhile); `migrate` tries the migration again later.
SET LOCAL lock_timeout = '200ms';

DO $$
BEGIN
    IF to_regclass('public.schedulers') IS NULL THEN
        CREATE TABLE public.schedulers (
            id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            domain_id INTEGER NOT NULL REFERENCES public.domains (id) ON DELETE CASCADE,
            organisation_id UUID NOT NULL REFERENCES public.organisations (id) ON DELETE CASCADE,
            schedule_interval_hours INTEGER NOT NULL
                CHECK (schedule_interval_hours IN (6, 12, 24, 48)),
            next_run_at TIMESTAMPTZ NOT NULL,
            is_enabled BOOLEAN NOT NULL DEFAULT TRUE,
            concurrency INTEGER NOT NULL DEFAULT 20,
            find_links BOOLEAN NOT NULL DEFAULT TRUE,
            max_pages INTEGER NOT NULL DEFAULT 0,
            include_paths TEXT,
            exclude_paths TEXT,
            required_workers INTEGER NOT NULL DEFAULT 1,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            CONSTRAINT unique_domain_org UNIQUE (domain_id, organisation_id)
        );
        CREATE INDEX idx_schedulers_next_run
            ON public.schedulers (next_run_at) WHERE is_enabled = TRUE;
        CREATE INDEX idx_schedulers_organisation ON public.schedulers (organisation_id);
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = 'public.jobs'::regclass AND attname = 'scheduler_id' AND NOT attisdropped
    ) THEN
        ALTER TABLE public.jobs ADD COLUMN scheduler_id UUID REFERENCES public.schedulers (id);
        CREATE INDEX idx_jobs_scheduler_id
            ON public.jobs (scheduler_id) WHERE scheduler_id IS NOT NULL;
    END IF;
END
$$;
