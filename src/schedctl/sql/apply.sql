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

-- name: apply_domains_insert
-- Add the host's rows for the given host names that it has in no spelling (`spellings`
-- pairs each name's position with one lowercased spelling), in one pass over domains.
WITH spelled AS (
    SELECT * FROM unnest(%(spelling_idx)s::int[], %(spellings)s::text[]) AS w (idx, spelling)
),
known AS (
    SELECT DISTINCT w.idx
    FROM spelled w
    JOIN public.domains d ON lower(rtrim(d.name, '.')) = w.spelling
)
INSERT INTO public.domains (name)
SELECT n.name
FROM unnest(%(name_idx)s::int[], %(names)s::text[]) AS n (idx, name)
WHERE n.idx NOT IN (SELECT idx FROM known)
ORDER BY n.idx
ON CONFLICT (name) DO NOTHING;

-- name: apply_domains_find
-- The id of the host's row for each given host name, in whatever spelling it was stored
-- (the row spelled exactly as the normal form first, as domain_ensure chooses).
SELECT DISTINCT ON (w.idx) w.idx, d.id
FROM unnest(%(spelling_idx)s::int[], %(spellings)s::text[]) AS w (idx, spelling)
JOIN unnest(%(name_idx)s::int[], %(names)s::text[]) AS n (idx, name) ON n.idx = w.idx
JOIN public.domains d ON lower(rtrim(d.name, '.')) = w.spelling
ORDER BY w.idx, d.name = n.name DESC, d.id;

-- name: apply_schedulers_insert
-- Create schedulers from a file, one row per element of `rows`; each first runs after one
-- interval, as `create` does.
INSERT INTO public.schedulers (
    domain_id, organisation_id, schedule_interval_hours, next_run_at, is_enabled,
    concurrency, find_links, max_pages, include_paths, exclude_paths, required_workers
)
SELECT v.domain_id, v.organisation_id, v.schedule_interval_hours,
       now() + make_interval(hours => v.schedule_interval_hours), v.is_enabled,
       v.concurrency, v.find_links, v.max_pages, v.include_paths, v.exclude_paths,
       v.required_workers
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    idx integer, domain_id integer, organisation_id uuid, schedule_interval_hours integer,
    is_enabled boolean, concurrency integer, find_links boolean, max_pages integer,
    include_paths text, exclude_paths text, required_workers integer
)
ORDER BY v.idx
RETURNING id, domain_id, organisation_id, next_run_at;

-- name: apply_schedulers_update
-- Store the seed columns of schedulers changed by a file, one row per element of `rows`; a
-- new interval keeps the grid's anchor, as `update --every` does, unless that grid time is
-- before the scheduler's creation or its last served slot (then the next run stays).
UPDATE public.schedulers s SET
    schedule_interval_hours = v.schedule_interval_hours,
    next_run_at = CASE
        WHEN v.schedule_interval_hours = s.schedule_interval_hours THEN s.next_run_at
        WHEN s.next_run_at - make_interval(hours => s.schedule_interval_hours) < GREATEST(
            s.created_at,
            (SELECT max(ss.slot) FROM schedctl.served_slots ss WHERE ss.scheduler_id = s.id)
                + interval '1 microsecond'
        ) THEN s.next_run_at
        ELSE s.next_run_at - make_interval(hours => s.schedule_interval_hours)
             + make_interval(hours => v.schedule_interval_hours)
    END,
    is_enabled = v.is_enabled,
    concurrency = v.concurrency,
    find_links = v.find_links,
    max_pages = v.max_pages,
    include_paths = v.include_paths,
    exclude_paths = v.exclude_paths,
    required_workers = v.required_workers,
    updated_at = now()
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    id uuid, schedule_interval_hours integer, is_enabled boolean, concurrency integer,
    find_links boolean, max_pages integer, include_paths text, exclude_paths text,
    required_workers integer
)
WHERE s.id = v.id
RETURNING s.id, s.next_run_at;

-- name: apply_settings_write
-- Store what schedctl keeps beside schedulers created, changed or adopted by a file, and
-- mark them as managed by `apply`.
INSERT INTO schedctl.scheduler_settings (
    scheduler_id, overlap_policy, pause_reason, at_time, time_zone, grid_anchor, spread_seconds,
    catchup_window_seconds, paused_until, managed_by
)
SELECT v.id, v.overlap_policy, v.pause_reason, v.at, v.time_zone, v.grid_anchor,
       v.spread_seconds, v.catchup_window_seconds, v.paused_until, 'apply'
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    id uuid, overlap_policy text, pause_reason text, at time, time_zone text,
    grid_anchor timestamp, spread_seconds integer, catchup_window_seconds integer,
    paused_until timestamptz
)
ORDER BY v.id
ON CONFLICT (scheduler_id) DO UPDATE
SET overlap_policy = EXCLUDED.overlap_policy, pause_reason = EXCLUDED.pause_reason,
    at_time = EXCLUDED.at_time, time_zone = EXCLUDED.time_zone,
    grid_anchor = EXCLUDED.grid_anchor, spread_seconds = EXCLUDED.spread_seconds,
    catchup_window_seconds = EXCLUDED.catchup_window_seconds,
    paused_until = EXCLUDED.paused_until, managed_by = EXCLUDED.managed_by;

-- name: apply_time_zones_unknown
-- The zone names of a file that the server's time zone database (the one tick reads) does
-- not know, as time_zone_known judges one.
SELECT z.name
FROM unnest(%(zones)s::text[]) AS z (name)
WHERE NOT EXISTS (SELECT 1 FROM pg_timezone_names n WHERE n.name = z.name)
ORDER BY z.name;

-- name: apply_clock
-- The database's clock for this apply (a pause whose end has passed is over).
SELECT now() AS db_now;

-- name: apply_schedulers_place
-- Move the next run of schedulers whose schedule a file set, one row per element of `rows`,
-- as `create` and `update` place it (schedulers._scheduled, grid_start): `placement` "now"
-- is the wall-clock grid's first time from now, never before the scheduler's creation or
-- just after its last served slot; "next" the grid's first time from the next run moved by
-- the new spread offset (to the second); "shift" the elapsed-time grid moved by it. Returns
-- each next run and the grid's anchor (NULL for the elapsed-time grid).
WITH v AS (
    SELECT v.id, v.placement, v.at_time, v.time_zone, s.schedule_interval_hours,
           s.next_run_at - schedctl.spread_offset(v.id, v.old_spread)
               + schedctl.spread_offset(v.id, v.spread_seconds) AS shifted,
           schedctl.spread_offset(v.id, v.spread_seconds) AS spread,
           GREATEST(
               now(), s.created_at,
               (SELECT max(ss.slot) FROM schedctl.served_slots ss WHERE ss.scheduler_id = v.id)
                   + interval '1 microsecond'
           ) AS from_now
    FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
        id uuid, placement text, at_time time, time_zone text, old_spread integer,
        spread_seconds integer
    )
    JOIN public.schedulers s ON s.id = v.id
),
placed AS (
    SELECT v.id, COALESCE(g.first_slot, v.shifted) AS next_run_at, g.anchor
    FROM v
    LEFT JOIN LATERAL schedctl.grid_start(
        CASE v.placement WHEN 'next' THEN date_trunc('second', v.shifted) ELSE v.from_now END,
        v.schedule_interval_hours, v.at_time, v.time_zone, v.spread
    ) AS g ON v.placement <> 'shift'
)
UPDATE public.schedulers s SET next_run_at = p.next_run_at, updated_at = now()
FROM placed p
WHERE s.id = p.id
RETURNING s.id, s.next_run_at, p.anchor;

-- name: apply_audit_insert
-- Append the audit entries of one apply, in order, with `apply` as their source.
INSERT INTO schedctl.audit (
    actor, action, scheduler_id, organisation_id, domain, changes, reason, source
)
SELECT %(actor)s, v.action, v.scheduler_id, v.organisation_id, v.domain, v.changes, v.reason,
       'apply'
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    ord integer, action text, scheduler_id uuid, organisation_id uuid, domain text,
    changes jsonb, reason text
)
ORDER BY v.ord;

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
