-- Schedules as code: the set-based statements of `apply` and `export`.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: apply_lock_organisations
-- Wait for each organisation's apply lock, in id order (no deadlock between two files),
-- held until the transaction ends: two `apply` runs on one organisation take turns.
SELECT count(pg_advisory_xact_lock(1399022672, hashtext(id::text)))
FROM (SELECT id FROM unnest(%(ids)s::uuid[]) AS id ORDER BY id) AS ordered;

-- name: apply_lock_schedulers
-- Lock the schedulers of the organisations an apply changes, so that no command or tick
-- changes one between the plan and its writes (the host may still insert jobs).
SELECT count(*) FROM (
    SELECT 1 FROM public.schedulers
    WHERE organisation_id = ANY (%(ids)s::uuid[])
    FOR NO KEY UPDATE
) AS locked;

-- name: apply_current
-- Every scheduler of the given organisations with its settings, its domain as the queries
-- match it (lowercased, no trailing dot), and whether `apply` manages it.
SELECT s.id, s.organisation_id, d.name AS domain, lower(rtrim(d.name, '.')) AS domain_key,
       s.schedule_interval_hours, s.is_enabled, s.concurrency, s.find_links, s.max_pages,
       s.include_paths, s.exclude_paths, s.required_workers, s.next_run_at, st.managed_by,
       {settings_columns}, st.grid_anchor
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
WHERE s.organisation_id = ANY (%(ids)s::uuid[])
ORDER BY s.organisation_id, d.name, s.id;

-- name: apply_time_zones_unknown
-- The zone names of a file that the server's time zone database (the one tick reads) does
-- not know, as time_zone_known judges one.
SELECT z.name
FROM unnest(%(zones)s::text[]) AS z (name)
WHERE NOT EXISTS (SELECT 1 FROM pg_timezone_names n WHERE n.name = z.name)
ORDER BY z.name;

-- name: export_schedulers
-- The schedulers of one organisation (or of all), optionally only those `apply` manages,
-- with their organisation's name.
SELECT s.organisation_id, o.name AS organisation_name, d.name AS domain,
       s.schedule_interval_hours, s.is_enabled, s.concurrency, s.find_links, s.max_pages,
       s.include_paths, s.exclude_paths, s.required_workers, {settings_columns}
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
JOIN public.organisations o ON o.id = s.organisation_id
LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
WHERE (%(organisation_id)s::uuid IS NULL OR s.organisation_id = %(organisation_id)s::uuid)
  AND (NOT %(managed_only)s OR st.managed_by IS NOT NULL);
