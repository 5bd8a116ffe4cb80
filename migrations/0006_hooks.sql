-- The database's hooks: how the host makes a job for a slot and cancels an active one (its
-- own SQL functions, called by tick and `run`), and the channel told about new jobs. One
-- row, shared by every tick host and operator; NULL everywhere is schedctl's defaults.
-- Only schedctl's own schema changes; the host's tables are not touched.
-- depends: 0005_audit_widen

SET LOCAL lock_timeout = '200ms';

CREATE TABLE schedctl.hooks (
    -- Exactly one row.
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    -- FUNCTION(scheduler_id uuid, slot timestamptz) RETURNS text, by schema and name.
    create_job_schema TEXT,
    create_job_function TEXT,
    -- FUNCTION(job_id text) RETURNS void, by schema and name.
    cancel_job_schema TEXT,
    cancel_job_function TEXT,
    -- The channel of the NOTIFY sent after each committed batch that made jobs.
    notify_channel TEXT,
    updated_at TIMESTAMPTZ,
    updated_by TEXT,
    CHECK ((create_job_schema IS NULL) = (create_job_function IS NULL)),
    CHECK ((cancel_job_schema IS NULL) = (cancel_job_function IS NULL))
);
INSERT INTO schedctl.hooks DEFAULT VALUES;
