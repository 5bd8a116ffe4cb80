-- The schedulers table and jobs.scheduler_id in the seed plan's shape, created
-- only where the host lacks them (the foreign key validated and the index built later,
-- online); with the host's later ON DELETE CASCADE on
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
        -- Online, as the host's own queries run: a nullable column without a default
        -- is a change of the catalog alone, and a foreign key added NOT VALID reads no
        -- row, so jobs is taken for an instant. `migrate` then validates the foreign key
        -- and builds its index CONCURRENTLY, outside this transaction (migrate.py,
        -- _complete_jobs_scheduler_id); their schedctl_ names mark them as added here.
        ALTER TABLE public.jobs
            ADD COLUMN scheduler_id UUID,
            ADD CONSTRAINT schedctl_jobs_scheduler_id_fkey FOREIGN KEY (scheduler_id)
                REFERENCES public.schedulers (id) NOT VALID;
    END IF;
END
$$;
