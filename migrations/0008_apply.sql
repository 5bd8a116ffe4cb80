-- Ownership of schedulers by `schedctl apply`: a scheduler created or updated from a file is
-- marked as managed by it, so that `apply --prune` deletes only schedulers that a file put
-- there, never those made by `create` or by the host's own code (which have no mark, or no
-- row here at all). Only schedctl's own table changes; the host's tables are not touched.
-- depends: 0007_schedules

SET LOCAL lock_timeout = '200ms';

ALTER TABLE schedctl.scheduler_settings
    -- What manages the scheduler: 'apply' (a file), or NULL (commands and the host's code).
    ADD COLUMN managed_by TEXT CHECK (managed_by IN ('apply'));
