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

-- name: status_most_overdue
-- The enabled scheduler that has waited longest (lag counts from its creation at the
-- earliest), so that `status` names it.
SELECT s.id, d.name AS domain, o.name AS organisation
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
LEFT JOIN public.organisations o ON o.id = s.organisation_id
WHERE s.is_enabled
  AND (%(organisation_id)s::uuid IS NULL OR s.organisation_id = %(organisation_id)s::uuid)
ORDER BY GREATEST(s.next_run_at, s.created_at), s.id
LIMIT 1;
