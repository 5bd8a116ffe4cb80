-- Slot arithmetic for commands: wall-clock grids, spread offsets, zones, next runs.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: spread_offset_seconds
-- A scheduler's offset inside a spread window of the given width.
SELECT extract(epoch FROM schedctl.spread_offset(%(id)s, %(spread_seconds)s))::integer
    AS seconds;

-- name: local_time_of_day
-- The wall-clock time of day of an instant in a zone.
SELECT (%(moment)s::timestamptz AT TIME ZONE %(time_zone)s)::time AS at_time;

-- name: time_zone_known
-- Whether the server's time zone database knows a zone name.
SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = %(time_zone)s) AS known;

-- name: scheduler_next_runs
-- The next run times of a scheduler on a wall-clock grid: its next_run_at, then (from the
-- grid's first time after now when that is past) the grid's following times; each with its
-- wall-clock time and UTC offset in the scheduler's zone, and whether the offset changes on
-- that local day.
WITH runs AS (
    SELECT 0 AS n, %(next_run_at)s::timestamptz AS at
    UNION ALL
    SELECT g.n, schedctl.grid_slot(
        GREATEST(
            schedctl.grid_index(%(next_run_at)s, %(hours)s, %(grid_anchor)s, %(time_zone)s,
                                %(spread)s) + 1,
            schedctl.grid_next_index(now(), %(hours)s, %(grid_anchor)s, %(time_zone)s,
                                     %(spread)s)
        ) + g.n - 1,
        %(hours)s, %(grid_anchor)s, %(time_zone)s, %(spread)s)
    FROM generate_series(1, %(count)s - 1) AS g (n)
)
SELECT runs.at, local.wall AS local_time,
       extract(epoch FROM local.wall - (runs.at AT TIME ZONE 'UTC'))::integer AS utc_offset_seconds,
       ((local.day + interval '1 day') AT TIME ZONE %(time_zone)s)
           - (local.day AT TIME ZONE %(time_zone)s) <> interval '24 hours' AS dst_day
FROM runs
CROSS JOIN LATERAL (
    SELECT runs.at AT TIME ZONE %(time_zone)s AS wall,
           date_trunc('day', runs.at AT TIME ZONE %(time_zone)s) AS day
) AS local
ORDER BY runs.n;
