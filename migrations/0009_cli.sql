-- Indexes of schedctl's own audit trail for the command line: `list` finds each
-- scheduler's latest `run` (its "last run" column) with one probe, and `log --all-orgs`
-- reads the newest entries of every organisation without sorting the whole trail.
-- Only schedctl's table changes; the host's tables are not touched.
-- depends: 0008_apply

SET LOCAL lock_timeout = '200ms';

CREATE INDEX audit_scheduler_runs ON schedctl.audit (scheduler_id, at DESC) WHERE action = 'run';
CREATE INDEX audit_at ON schedctl.audit (at DESC, id DESC);
