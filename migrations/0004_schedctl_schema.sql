-- schedctl's own objects, in its own schema: everything its guarantees and
-- features need beside the host's tables, which it leaves as the host made them.
-- Rows written by the host's own code (which knows only the seed's columns) have
-- no row here and get the defaults. Nothing is granted to anyone: `migrate`
-- revokes what default privileges may have granted (see contrib/grants.sql for
-- the roles that run schedctl).
-- A database migrated by schedctl 0.1 has these things in the host's tables and
-- in public: they are copied here, and `migrate` then removes them from there.
-- depends: 0003_schedctl_guarantees

-- A statement that changes a host table waits at most this long for its lock (the
-- host's queries queue behind it meanwhile); `migrate` tries the migration again later.
SET LOCAL lock_timeout = '200ms';

CREATE SCHEMA IF NOT EXISTS schedctl;

-- What schedctl keeps per scheduler beyond the seed's columns.
CREATE TABLE schedctl.scheduler_settings (
    scheduler_id UUID PRIMARY KEY,
    -- What tick does when a job of the same domain and organisation is still
    -- active. 'replace' is the host's own create-job behaviour.
    overlap_policy TEXT NOT NULL DEFAULT 'replace'
        CHECK (overlap_policy IN ('replace', 'skip', 'allow')),
    -- Why an operator paused the scheduler; NULL while it is enabled.
    pause_reason TEXT
);

-- Exactly once per slot, enforced by the database: one row per slot a job was
-- made for (the scheduler's next_run_at at the time), written in the same
-- statement as the job. Jobs made by `run` or by the host have no slot.
CREATE TABLE schedctl.served_slots (
    scheduler_id UUID NOT NULL,
    slot TIMESTAMPTZ NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (scheduler_id, slot)
);

-- Append-only audit trail of operator changes and of slots tick skipped. No
-- foreign key to schedulers: a deleted scheduler's entries stay.
CREATE TABLE schedctl.audit (
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
CREATE INDEX audit_org_at ON schedctl.audit (organisation_id, at DESC, id DESC);
CREATE INDEX audit_scheduler_at ON schedctl.audit (scheduler_id, at DESC, id DESC);

CREATE FUNCTION schedctl.audit_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    RAISE EXCEPTION 'schedctl.audit is append-only';
END
$$;
CREATE TRIGGER audit_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON schedctl.audit
    FOR EACH STATEMENT EXECUTE FUNCTION schedctl.audit_append_only();

-- Tick heartbeat for `status`: one row per host running tick, overwritten by
-- each pass, so it stays small however long tick runs.
CREATE TABLE schedctl.tick_heartbeats (
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

-- What schedctl 0.1 added to the host's tables and `migrate` is still to remove, outside
-- this transaction, one short lock at a time (see migrate.py).
CREATE TABLE schedctl.legacy_host_objects (
    name TEXT PRIMARY KEY
        CHECK (name IN ('jobs_scheduler_slot', 'jobs_active_index', 'schedulers_columns'))
);

-- Carry over what schedctl 0.1 kept in the host's tables and in public. A database that
-- 0.1 migrated is recognised by its audit table's append-only trigger; anything else of
-- the same names belongs to the host and is left alone.
DO $$
DECLARE
    column_present CONSTANT text :=
        'SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass'
        ' AND attname = $2 AND NOT attisdropped)';
    present boolean;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgname = 'scheduler_audit_append_only'
          AND tgrelid = to_regclass('public.scheduler_audit')
    ) THEN
        RETURN;
    END IF;
    EXECUTE column_present INTO present USING 'public.schedulers', 'overlap_policy';
    IF present THEN
        EXECUTE 'INSERT INTO schedctl.scheduler_settings (scheduler_id, overlap_policy, pause_reason)'
            ' SELECT id, overlap_policy, pause_reason FROM public.schedulers'
            ' WHERE overlap_policy <> ''replace'' OR pause_reason IS NOT NULL';
        INSERT INTO schedctl.legacy_host_objects VALUES ('schedulers_columns');
    END IF;
    EXECUTE column_present INTO present USING 'public.jobs', 'scheduler_slot';
    IF present THEN
        EXECUTE 'INSERT INTO schedctl.served_slots (scheduler_id, slot, job_id)'
            ' SELECT scheduler_id, scheduler_slot, id FROM public.jobs'
            ' WHERE scheduler_slot IS NOT NULL AND scheduler_id IS NOT NULL'
            ' ON CONFLICT DO NOTHING';
        INSERT INTO schedctl.legacy_host_objects VALUES ('jobs_scheduler_slot');
    END IF;
    IF to_regclass('public.idx_jobs_active_domain_org') IS NOT NULL THEN
        INSERT INTO schedctl.legacy_host_objects VALUES ('jobs_active_index');
    END IF;
    INSERT INTO schedctl.audit
        (at, actor, action, scheduler_id, organisation_id, domain, changes, reason)
    SELECT at, actor, action, scheduler_id, organisation_id, domain, changes, reason
    FROM public.scheduler_audit
    ORDER BY id;
    DROP TABLE public.scheduler_audit;
    DROP FUNCTION IF EXISTS public.scheduler_audit_append_only();
    IF to_regclass('public.tick_heartbeats') IS NOT NULL THEN
        INSERT INTO schedctl.tick_heartbeats
        SELECT host, ticked_at, ok, due, created, skipped, failed, missed, message
        FROM public.tick_heartbeats;
        DROP TABLE public.tick_heartbeats;
    END IF;
END
$$;
