-- What schedctl's guarantees and operator features need beyond the seed plan.
-- Every added column has a default or is nullable, so rows written by the host's
-- own code (which knows only the seed's columns) stay valid and are ticked.
-- depends: 0002_schedulers

-- Overlap policy: what tick does when a job of the same domain and organisation
-- is still active. 'replace' is the host's own create-job behaviour.
ALTER TABLE schedulers ADD COLUMN IF NOT EXISTS overlap_policy TEXT NOT NULL DEFAULT 'replace';
ALTER TABLE schedulers DROP CONSTRAINT IF EXISTS schedulers_overlap_policy_check;
ALTER TABLE schedulers ADD CONSTRAINT schedulers_overlap_policy_check
    CHECK (overlap_policy IN ('replace', 'skip', 'allow'));

-- Why an operator paused the scheduler; NULL while it is enabled.
ALTER TABLE schedulers ADD COLUMN IF NOT EXISTS pause_reason TEXT;

-- Exactly once per slot, enforced by the database: the slot (the scheduler's
-- next_run_at that a job was made for) is stored on the job, and no two jobs
-- of one scheduler may share a slot. Jobs made by the host, or by `run`, have
-- no slot and are not constrained.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS scheduler_slot TIMESTAMPTZ;
CREATE UNIQUE INDEX IF NOT EXISTS uq_jobs_scheduler_slot
    ON jobs (scheduler_id, scheduler_slot) WHERE scheduler_slot IS NOT NULL;

-- The overlap check looks up active jobs of a domain and organisation for every
-- due scheduler; without this index each tick batch would scan all of jobs.
CREATE INDEX IF NOT EXISTS idx_jobs_active_domain_org
    ON jobs (domain_id, organisation_id)
    WHERE status IN ('pending', 'initializing', 'running', 'paused');

-- Append-only audit trail of operator changes and of slots tick skipped. No
-- foreign key to schedulers: a deleted scheduler's entries stay.
CREATE TABLE IF NOT EXISTS scheduler_audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor TEXT NOT NULL,
    action TEXT NOT NULL
        CHECK (action IN ('create', 'update', 'pause', 'resume', 'delete', 'run', 'skip')),
    scheduler_id UUID NOT NULL,
    organisation_id UUID NOT NULL,
    domain TEXT NOT NULL,
    changes JSONB NOT NULL DEFAULT '{}'::jsonb,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS idx_scheduler_audit_org_at ON scheduler_audit (organisation_id, at DESC, id DESC);
CREATE INDEX IF NOT EXISTS idx_scheduler_audit_scheduler_at ON scheduler_audit (scheduler_id, at DESC, id DESC);

CREATE OR REPLACE FUNCTION scheduler_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'scheduler_audit is append-only';
END
$$;
DROP TRIGGER IF EXISTS scheduler_audit_append_only ON scheduler_audit;
CREATE TRIGGER scheduler_audit_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON scheduler_audit
    FOR EACH STATEMENT EXECUTE FUNCTION scheduler_audit_append_only();

-- Tick heartbeat for `status`: one row per host running tick, overwritten by
-- each pass, so it stays small however long tick runs.
CREATE TABLE IF NOT EXISTS tick_heartbeats (
    host TEXT PRIMARY KEY,
    ticked_at TIMESTAMPTZ NOT NULL,
    ok BOOLEAN NOT NULL,
    due INTEGER NOT NULL,
    created INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    missed INTEGER NOT NULL,
    message TEXT
);
