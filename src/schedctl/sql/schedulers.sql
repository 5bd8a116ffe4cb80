-- Schedulers: the host's row and schedctl's settings beside it, read and written one at a time.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- fragment: settings_columns
-- What schedctl keeps beside a scheduler, with its defaults where it keeps nothing, over
-- schedctl.scheduler_settings st (LEFT JOINed): the same values whoever reads them.
st.pause_reason, COALESCE(st.overlap_policy, 'replace') AS overlap_policy,
to_char(st.at_time, CASE WHEN extract(second FROM st.at_time) = 0 THEN 'HH24:MI'
                         ELSE 'HH24:MI:SS' END) AS at,
COALESCE(st.time_zone, 'UTC') AS time_zone,
COALESCE(st.spread_seconds, 0) AS spread_seconds,
st.catchup_window_seconds, st.paused_until

-- fragment: scheduler_columns
-- What a Scheduler is read from (models.Scheduler.from_row), over public.schedulers s,
-- public.domains d and schedctl.scheduler_settings st.
s.id, s.organisation_id, d.name AS domain, s.schedule_interval_hours, s.next_run_at,
s.is_enabled, s.concurrency, s.find_links, s.max_pages, s.include_paths, s.exclude_paths,
s.required_workers, s.created_at, s.updated_at, {settings_columns},
extract(epoch FROM schedctl.spread_offset(s.id, COALESCE(st.spread_seconds, 0)))::integer
    AS spread_offset_seconds,
st.grid_anchor, s.domain_id, now() AS db_now

-- name: scheduler_get
-- One scheduler of an organisation, by id or by domain (any spelling the host stored).
SELECT {scheduler_columns}
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
WHERE s.organisation_id = %(organisation_id)s
  AND (s.id = %(id)s::uuid OR lower(rtrim(d.name, '.')) = ANY (%(spellings)s::text[]))
ORDER BY s.id = %(id)s::uuid DESC NULLS LAST
LIMIT 1;

-- name: scheduler_lock
-- The id of one scheduler of an organisation, by id or domain, locked for a change.
-- NO KEY UPDATE keeps other changes and ticks out without blocking the host's inserts of
-- jobs that reference the scheduler (a DELETE takes the stronger lock itself).
SELECT s.id
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
WHERE s.organisation_id = %(organisation_id)s
  AND (s.id = %(id)s::uuid OR lower(rtrim(d.name, '.')) = ANY (%(spellings)s::text[]))
ORDER BY s.id = %(id)s::uuid DESC NULLS LAST
LIMIT 1
FOR NO KEY UPDATE OF s;

-- name: scheduler_list
-- Schedulers of one organisation (or of all), soonest first, optionally filtered, with the
-- organisation's name and the newest job schedctl made for each: the job of its latest
-- served slot (the primary key of served_slots read backwards) or of its latest `run` (a
-- partial index of the audit trail), whichever is newer. Two index probes per scheduler,
-- whatever the years of history in jobs, whose index on scheduler_id alone would make
-- "the newest of its jobs" read and sort every job the scheduler ever had.
SELECT {scheduler_columns},
       o.name AS organisation_name, last_run.id AS last_job_id,
       last_run.status AS last_job_status, last_run.created_at AS last_job_at
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
LEFT JOIN public.organisations o ON o.id = s.organisation_id
LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
LEFT JOIN LATERAL (
    SELECT j.id, j.status, j.created_at
    FROM (
        (SELECT ss.job_id FROM schedctl.served_slots ss
         WHERE ss.scheduler_id = s.id ORDER BY ss.slot DESC LIMIT 1)
        UNION ALL
        (SELECT a.changes -> 'job_id' ->> 1 FROM schedctl.audit a
         WHERE a.scheduler_id = s.id AND a.action = 'run' ORDER BY a.at DESC LIMIT 1)
    ) AS latest (job_id)
    JOIN public.jobs j ON j.id = latest.job_id
    ORDER BY j.created_at DESC
    LIMIT 1
) AS last_run ON TRUE
WHERE (%(organisation_id)s::uuid IS NULL OR s.organisation_id = %(organisation_id)s::uuid)
  AND (%(is_enabled)s::boolean IS NULL OR s.is_enabled = %(is_enabled)s::boolean)
  AND (NOT %(due_only)s OR (s.is_enabled AND s.next_run_at <= now()))
ORDER BY s.next_run_at, d.name, s.id;

-- name: scheduler_resume
-- Enable a scheduler; a slot that passed while it was paused is due at once.
WITH settings AS (
    UPDATE schedctl.scheduler_settings SET pause_reason = NULL, paused_until = NULL
    WHERE scheduler_id = %(id)s
)
UPDATE public.schedulers SET is_enabled = TRUE, updated_at = now()
WHERE id = %(id)s;

-- name: scheduler_delete
-- Delete schedulers (`ids`, or every one of `organisation_id`) and what schedctl kept beside
-- them: `delete`, `apply --prune` and `org delete --cascade`. Their jobs stay, detached
-- first (with source_detail still naming them), whatever delete rule the host's foreign key
-- has.
WITH doomed AS (
    SELECT id FROM public.schedulers
    WHERE id = ANY (%(ids)s::uuid[]) OR organisation_id = %(organisation_id)s::uuid
),
detached AS (
    UPDATE public.jobs SET scheduler_id = NULL WHERE scheduler_id IN (SELECT id FROM doomed)
),
settings AS (
    DELETE FROM schedctl.scheduler_settings WHERE scheduler_id IN (SELECT id FROM doomed)
),
slots AS (
    DELETE FROM schedctl.served_slots WHERE scheduler_id IN (SELECT id FROM doomed)
)
DELETE FROM public.schedulers WHERE id IN (SELECT id FROM doomed);

-- name: scheduler_find_prefix
-- The schedulers of an organisation (or of all) whose id begins with the given hex digits.
SELECT s.id, d.name AS domain
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
WHERE (%(organisation_id)s::uuid IS NULL OR s.organisation_id = %(organisation_id)s::uuid)
  AND replace(s.id::text, '-', '') LIKE %(prefix)s || '%%'
ORDER BY s.id
LIMIT %(limit)s;

-- name: domains_insert
-- Add the host's rows for the given host names that it has in no spelling (`spellings`
-- pairs each name's position with one lowercased spelling: letter case, Unicode or A-label,
-- a trailing dot), in one pass over domains.
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

-- name: domains_find
-- The id of the host's row for each given host name, in whatever spelling it was stored
-- (the row spelled exactly as the normal form first).
SELECT DISTINCT ON (w.idx) w.idx, d.id
FROM unnest(%(spelling_idx)s::int[], %(spellings)s::text[]) AS w (idx, spelling)
JOIN unnest(%(name_idx)s::int[], %(names)s::text[]) AS n (idx, name) ON n.idx = w.idx
JOIN public.domains d ON lower(rtrim(d.name, '.')) = w.spelling
ORDER BY w.idx, d.name = n.name DESC, d.id;

-- name: schedulers_insert
-- Create schedulers with the seed's columns, one row per element of `rows` (`create` one,
-- `apply` many); each first runs at its `start_at`, at the database's clock to the second
-- (`start_now`), or after one interval.
INSERT INTO public.schedulers (
    domain_id, organisation_id, schedule_interval_hours, next_run_at, is_enabled,
    concurrency, find_links, max_pages, include_paths, exclude_paths, required_workers
)
SELECT v.domain_id, v.organisation_id, v.schedule_interval_hours,
       CASE WHEN v.start_at IS NOT NULL THEN v.start_at
            WHEN v.start_now THEN date_trunc('second', now())
            ELSE now() + make_interval(hours => v.schedule_interval_hours) END,
       v.is_enabled, v.concurrency, v.find_links, v.max_pages, v.include_paths,
       v.exclude_paths, v.required_workers
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    idx integer, domain_id integer, organisation_id uuid, schedule_interval_hours integer,
    start_at timestamptz, start_now boolean, is_enabled boolean, concurrency integer,
    find_links boolean, max_pages integer, include_paths text, exclude_paths text,
    required_workers integer
)
ORDER BY v.idx
RETURNING id, domain_id, organisation_id, next_run_at;

-- name: schedulers_update
-- Store the seed columns of changed schedulers, one row per element of `rows` (`update` one,
-- `apply` many), and touch updated_at. The next run is the row's `next_run_at` where it
-- gives one (`--start-at`); else a new interval keeps the grid's anchor (the grid time
-- before the next run), unless that time is before the scheduler's creation or its last
-- served slot, when the next run stays and the new interval follows it.
UPDATE public.schedulers s SET
    schedule_interval_hours = v.schedule_interval_hours,
    next_run_at = CASE
        WHEN v.next_run_at IS NOT NULL THEN v.next_run_at
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
    id uuid, next_run_at timestamptz, schedule_interval_hours integer, is_enabled boolean,
    concurrency integer, find_links boolean, max_pages integer, include_paths text,
    exclude_paths text, required_workers integer
)
WHERE s.id = v.id
RETURNING s.id, s.next_run_at;

-- name: schedulers_place
-- Move the next run of schedulers whose schedule was set, one row per element of `rows`
-- (store.placement decides how): "now" is the wall-clock grid's first time from now, never
-- before the scheduler's creation or just after its last served slot; "start" the grid's
-- first time from the row's `start`; "next" the grid's first time from the next run moved
-- by the new spread offset (to the second); "shift" the elapsed-time grid moved by it.
-- Returns each next run and the grid's anchor (NULL for the elapsed-time grid).
WITH v AS (
    SELECT v.id, v.placement, v.at_time, v.time_zone, s.schedule_interval_hours, v.start,
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
        spread_seconds integer, start timestamptz
    )
    JOIN public.schedulers s ON s.id = v.id
),
placed AS (
    SELECT v.id, COALESCE(g.first_slot, v.shifted) AS next_run_at, g.anchor
    FROM v
    LEFT JOIN LATERAL schedctl.grid_start(
        CASE v.placement
            WHEN 'next' THEN date_trunc('second', v.shifted)
            WHEN 'start' THEN v.start
            ELSE v.from_now
        END,
        v.schedule_interval_hours, v.at_time, v.time_zone, v.spread
    ) AS g ON v.placement <> 'shift'
)
UPDATE public.schedulers s SET next_run_at = p.next_run_at, updated_at = now()
FROM placed p
WHERE s.id = p.id
RETURNING s.id, s.next_run_at, p.anchor;

-- name: settings_write
-- Store what schedctl keeps beside schedulers, one row per element of `rows`; `managed_by`
-- marks one as managed by `apply` (NULL keeps the mark it has).
INSERT INTO schedctl.scheduler_settings (
    scheduler_id, overlap_policy, pause_reason, at_time, time_zone, grid_anchor, spread_seconds,
    catchup_window_seconds, paused_until, managed_by
)
SELECT v.id, v.overlap_policy, v.pause_reason, v.at, v.time_zone, v.grid_anchor,
       v.spread_seconds, v.catchup_window_seconds, v.paused_until, v.managed_by
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    id uuid, overlap_policy text, pause_reason text, at time, time_zone text,
    grid_anchor timestamp, spread_seconds integer, catchup_window_seconds integer,
    paused_until timestamptz, managed_by text
)
ORDER BY v.id
ON CONFLICT (scheduler_id) DO UPDATE
SET overlap_policy = EXCLUDED.overlap_policy, pause_reason = EXCLUDED.pause_reason,
    at_time = EXCLUDED.at_time, time_zone = EXCLUDED.time_zone,
    grid_anchor = EXCLUDED.grid_anchor, spread_seconds = EXCLUDED.spread_seconds,
    catchup_window_seconds = EXCLUDED.catchup_window_seconds,
    paused_until = EXCLUDED.paused_until,
    managed_by = COALESCE(EXCLUDED.managed_by, scheduler_settings.managed_by);

-- name: db_clock
-- The database's clock (the transaction's start).
SELECT now() AS db_now;
