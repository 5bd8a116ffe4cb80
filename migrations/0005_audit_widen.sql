-- The audit trail records more than changes to one scheduler: changes to the database's
-- hooks and to organisations have no scheduler (or no organisation), a slot tick did not
-- serve in time is 'missed', and a change can come from a file (`apply`) rather than a
-- command line. Only schedctl's own table changes; the host's tables are not touched.
-- depends: 0004_schedctl_schema

SET LOCAL lock_timeout = '200ms';

ALTER TABLE schedctl.audit
    ALTER COLUMN scheduler_id DROP NOT NULL,
    ALTER COLUMN organisation_id DROP NOT NULL,
    ALTER COLUMN domain DROP NOT NULL,
    -- Where the change came from: NULL for a command or tick, 'apply' for a file.
    ADD COLUMN source TEXT,
    DROP CONSTRAINT audit_action_check,
    ADD CONSTRAINT audit_action_check CHECK (action IN (
        'create', 'update', 'pause', 'resume', 'delete', 'run', 'skip', 'missed',
        'hooks', 'org_create', 'org_rename', 'org_delete'
    ));
