-- Schedulers: the host's row and schedctl's settings beside it, read and written one at a time.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: domain_ensure
-- The id of the host's row for a host name, in whatever spelling the host stored it (letter
-- case, Unicode or A-label, a trailing dot: `spellings` holds the lowercased forms); a new
-- row in the normal form when there is none.
WITH found AS (
    SELECT id FROM public.domains
    WHERE lower(rtrim(name, '.')) = ANY (%(spellings)s::text[])
    ORDER BY name = %(name)s DESC, id
    LIMIT 1
),
inserted AS (
    INSERT INTO public.domains (name)
    SELECT %(name)s WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT (name) DO NOTHING
    RETURNING id
)
SELECT id FROM found
UNION ALL
SELECT id FROM inserted;

-- name: scheduler_insert
-- Create a scheduler with the seed's columns; its first run is the given time, now, or now +
-- interval.
INSERT INTO public.schedulers (
    domain_id, organisation_id, schedule_interval_hours, next_run_at, is_enabled,
    concurrency, find_links, max_pages, include_paths, exclude_paths, required_workers
) VALUES (
    %(domain_id)s, %(organisation_id)s, %(schedule_interval_hours)s,
    CASE
        WHEN %(start_at)s::timestamptz IS NOT NULL THEN %(start_at)s::timestamptz
        WHEN %(start_now)s THEN date_trunc('second', now())
        ELSE now() + make_interval(hours => %(schedule_interval_hours)s)
    END,
    %(is_enabled)s, %(concurrency)s, %(find_links)s,
    %(max_pages)s, %(include_paths)s, %(exclude_paths)s, %(required_workers)s
)
RETURNING id;

-- name: settings_write
-- Store what schedctl keeps beside a scheduler's seed columns.
INSERT INTO schedctl.scheduler_settings (
    scheduler_id, overlap_policy, pause_reason, at_time, time_zone, grid_anchor, spread_seconds,
    catchup_window_seconds, paused_until
)
VALUES (%(id)s, %(overlap_policy)s, %(pause_reason)s, %(at_time)s, %(time_zone)s,
        %(grid_anchor)s, %(spread_seconds)s, %(catchup_window_seconds)s, %(paused_until)s)
ON CONFLICT (scheduler_id) DO UPDATE
SET overlap_policy = EXCLUDED.overlap_policy, pause_reason = EXCLUDED.pause_reason,
    at_time = EXCLUDED.at_time, time_zone = EXCLUDED.time_zone,
    grid_anchor = EXCLUDED.grid_anchor, spread_seconds = EXCLUDED.spread_seconds,
    catchup_window_seconds = EXCLUDED.catchup_window_seconds,
    paused_until = EXCLUDED.paused_until;

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

-- name: scheduler_write
-- Store every changeable seed column of one scheduler and touch updated_at.
UPDATE public.schedulers SET
    schedule_interval_hours = %(schedule_interval_hours)s,
    next_run_at = %(next_run_at)s,
    is_enabled = %(is_enabled)s,
    concurrency = %(concurrency)s,
    find_links = %(find_links)s,
    max_pages = %(max_pages)s,
    include_paths = %(include_paths)s,
    exclude_paths = %(exclude_paths)s,
    required_workers = %(required_workers)s,
    updated_at = now()
WHERE id = %(id)s;

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
