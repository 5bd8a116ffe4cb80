-- The tick pass: one batch at a time in the database (schedctl.tick_batch, migration 0010_tick:
-- claim, make the jobs, move the schedulers on, notify), then the heartbeat.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: tick_batch
-- One batch of a tick pass (schedctl.tick_batch): claim, make the jobs, notify; one row per
-- scheduler claimed, in schedctl.tick_outcome's column order (tick.py unpacks them).
SELECT * FROM schedctl.tick_batch(
    %(batch)s, %(exclude)s::uuid[], %(now)s::timestamptz, %(actor)s, %(dry_run)s,
    %(lock_timeout)s
);

-- name: tick_resume_paused
-- Resume the schedulers whose pause has run out (`pause --until`), all at once, each with an
-- audit entry by tick (schedctl.resume_paused: tick's role may not enable schedulers itself).
-- One statement, its own transaction; the lock timeout set first (the select list is
-- evaluated in order).
SELECT set_config('lock_timeout', %(lock_timeout)s, true) AS lock_timeout,
       schedctl.resume_paused(COALESCE(%(now)s::timestamptz, now()), %(actor)s) AS resumed;

-- name: tick_would_resume
-- How many schedulers a pass would resume first (their `pause --until` has come), for a
-- dry run, which resumes none.
-- As schedctl.resume_paused counts: the paused ones (an enabled scheduler's stale
-- `paused_until` is cleared, not resumed).
SELECT count(*) AS resumed
FROM schedctl.scheduler_settings st
JOIN public.schedulers s ON s.id = st.scheduler_id
WHERE st.paused_until <= COALESCE(%(now)s::timestamptz, now()) AND NOT s.is_enabled;

-- name: tick_heartbeat
-- Record this host's last tick pass and its outcome, for `status`. One statement, its own
-- transaction, which does not wait for its WAL flush: a heartbeat lost in a crash costs
-- nothing, and an idle tick, run every minute, stays cheap.
WITH relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true) AS synchronous_commit
)
INSERT INTO schedctl.tick_heartbeats (host, ticked_at, ok, due, created, skipped, failed, missed, message)
SELECT %(host)s, now(), %(ok)s, %(due)s, %(created)s, %(skipped)s, %(failed)s, %(missed)s,
       %(message)s
FROM relaxed
ON CONFLICT (host) DO UPDATE SET
    ticked_at = EXCLUDED.ticked_at, ok = EXCLUDED.ok, due = EXCLUDED.due,
    created = EXCLUDED.created, skipped = EXCLUDED.skipped, failed = EXCLUDED.failed,
    missed = EXCLUDED.missed, message = EXCLUDED.message;
