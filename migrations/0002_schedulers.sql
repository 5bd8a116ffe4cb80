-- The schedulers table and jobs.scheduler_id, exactly as the seed plan defines
-- them, with the host's later ON DELETE CASCADE on domain and organisation.
-- depends: 0001_host_tables

CREATE TABLE IF NOT EXISTS schedulers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    organisation_id UUID NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
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

CREATE INDEX IF NOT EXISTS idx_schedulers_next_run
    ON schedulers (next_run_at) WHERE is_enabled = TRUE;
CREATE INDEX IF NOT EXISTS idx_schedulers_organisation
    ON schedulers (organisation_id);

ALTER TABLE jobs ADD COLUMN IF NOT EXISTS scheduler_id UUID;

-- A host that ran the seed's migration itself may hold this foreign key with
-- another delete rule: replace it, so that deleting a scheduler keeps its jobs.
DO $$
DECLARE
    fk RECORD;
BEGIN
    FOR fk IN
        SELECT c.conname, c.confdeltype
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.contype = 'f'
          AND c.conrelid = 'jobs'::regclass
          AND c.confrelid = 'schedulers'::regclass
          AND a.attname = 'scheduler_id'
    LOOP
        IF fk.confdeltype <> 'n' THEN
            EXECUTE format('ALTER TABLE jobs DROP CONSTRAINT %I', fk.conname);
        END IF;
    END LOOP;
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.contype = 'f'
          AND c.conrelid = 'jobs'::regclass
          AND c.confrelid = 'schedulers'::regclass
          AND a.attname = 'scheduler_id'
    ) THEN
        ALTER TABLE jobs ADD CONSTRAINT jobs_scheduler_id_fkey
            FOREIGN KEY (scheduler_id) REFERENCES schedulers (id) ON DELETE SET NULL;
    END IF;
END
$$;

CREATE INDEX IF NOT EXISTS idx_jobs_scheduler_id
    ON jobs (scheduler_id) WHERE scheduler_id IS NOT NULL;
