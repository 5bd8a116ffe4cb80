-- The timeline: the runs to come, counted per bucket by the slot arithmetic of tick.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: timeline_clock
-- The window of a timeline: now (the database's clock unless `now` is given), its end, and
-- the start of the bucket that holds now (a whole multiple of the bucket size since the
-- epoch, in UTC).
SELECT c.now, c.now + make_interval(hours => %(hours)s) AS until,
       to_timestamp(floor(extract(epoch FROM c.now) / %(bucket_seconds)s) * %(bucket_seconds)s)
           AS start
FROM (SELECT COALESCE(%(now)s::timestamptz, now()) AS now) AS c;

-- name: timeline_counts
-- The runs that will start between now and `hours` from now, counted per bucket and
-- organisation, by the slot arithmetic of tick and `show --next`: each scheduler wakes now
-- (enabled) or when its `pause --until` runs out (inside the window); a slot already due then
-- is planned as tick plans it (coalesced, or dropped by a catch-up window) and runs at once;
-- then every grid time up to the window's end (wall-clock grids placed by grid_slot). Set-based:
-- each scheduler is joined to the few step numbers the window can hold, and a grid time is
-- placed only for the steps inside it.
WITH clock AS (
    SELECT c.now, c.now + make_interval(hours => %(hours)s) AS until,
           floor(date_part('epoch', c.now) / %(bucket_seconds)s) * %(bucket_seconds)s AS start
    FROM (SELECT COALESCE(%(now)s::timestamptz, now()) AS now) AS c
),
woken AS MATERIALIZED (
    SELECT s.id, s.organisation_id, s.schedule_interval_hours AS hours, s.next_run_at,
           s.created_at, st.grid_anchor AS anchor, COALESCE(st.time_zone, 'UTC') AS zone,
           CASE WHEN st.grid_anchor IS NULL THEN interval '0'
                ELSE schedctl.spread_offset(s.id, st.spread_seconds) END AS spread,
           st.catchup_window_seconds AS window_seconds,
           CASE WHEN s.is_enabled THEN c.now ELSE GREATEST(c.now, st.paused_until) END AS wake,
           c.until
    FROM public.schedulers s
    LEFT JOIN schedctl.scheduler_settings st ON st.scheduler_id = s.id
    CROSS JOIN clock c
    WHERE (%(organisation_id)s::uuid IS NULL OR s.organisation_id = %(organisation_id)s::uuid)
      AND (s.is_enabled OR st.paused_until < c.until)
),
-- Where each grid continues from: the next run, or for a scheduler due when it wakes, what
-- plan_slot says (and whether it runs then)
planned AS (
    SELECT w.*, FALSE AS runs_at_wake, w.next_run_at AS following
    FROM woken w
    WHERE w.next_run_at > w.wake
    UNION ALL
    SELECT w.*, p.serve IS NOT NULL, p.next_run_at
    FROM woken w
    CROSS JOIN LATERAL schedctl.plan_slot(
        w.next_run_at, w.wake, w.created_at, w.hours, w.anchor, w.zone, w.spread,
        w.window_seconds
    ) AS p
    WHERE w.next_run_at <= w.wake
),
placed AS MATERIALIZED (
    SELECT organisation_id, hours, anchor, zone, spread, wake, runs_at_wake, following,
           -- the last step inside the window (one more on a wall-clock grid, whose steps
           -- are not all the same length)
           floor(date_part('epoch', until - following) / (hours * 3600))::integer
               + (anchor IS NOT NULL)::integer AS last_step,
           CASE WHEN anchor IS NOT NULL THEN
               schedctl.grid_index(following, hours, anchor, zone, spread)
           END AS first_index
    FROM planned
),
runs AS (
    SELECT organisation_id, wake AS at FROM placed WHERE runs_at_wake
    UNION ALL
    SELECT pl.organisation_id,
           CASE WHEN pl.anchor IS NULL THEN pl.following + k.n * make_interval(hours => pl.hours)
                WHEN k.n = 0 THEN pl.following
                ELSE schedctl.grid_slot(pl.first_index + k.n, pl.hours, pl.anchor, pl.zone,
                                        pl.spread)
           END
    FROM placed pl
    JOIN generate_series(0, %(hours)s / 6 + 2) AS k (n) ON k.n <= pl.last_step
)
SELECT counted.bucket, counted.organisation_id, o.name AS organisation_name, counted.runs
FROM (
    SELECT floor((date_part('epoch', r.at) - c.start) / %(bucket_seconds)s)::integer AS bucket,
           r.organisation_id, count(*)::integer AS runs
    FROM runs r
    CROSS JOIN clock c
    WHERE r.at < c.until
    GROUP BY 1, 2
) AS counted
LEFT JOIN public.organisations o ON o.id = counted.organisation_id
ORDER BY counted.bucket, counted.runs DESC, o.name, counted.organisation_id;
