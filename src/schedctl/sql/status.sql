-- Health for monitoring.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: status_schedulers
-- Counts of enabled, paused and due schedulers, and the worst lag, by the database clock.
SELECT count(*) FILTER (WHERE is_enabled) AS enabled,
       count(*) FILTER (WHERE NOT is_enabled) AS paused,
       count(*) FILTER (WHERE is_enabled AND next_run_at <= now()) AS due,
       -- lag counts from the scheduler's creation at the earliest
       GREATEST(0, COALESCE(extract(epoch FROM
           now() - min(GREATEST(next_run_at, created_at)) FILTER (WHERE is_enabled)), 0))::float8
           AS worst_lag_seconds,
       now() AS now
FROM public.schedulers
WHERE %(organisation_id)s::uuid IS NULL OR organisation_id = %(organisation_id)s::uuid;

-- name: status_last_tick
-- The most recent tick pass of any host.
SELECT host, ticked_at, ok, due, created, skipped, failed, missed, message
FROM schedctl.tick_heartbeats
ORDER BY ticked_at DESC
LIMIT 1;
