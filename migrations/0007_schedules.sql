-- Schedules in a time zone: a wall-clock time of day (`--at`) in an IANA zone, a stable spread
-- inside a window, a catch-up window, and a pause that ends by itself (`pause --until`). The
-- settings live beside the others in schedctl's own table (rows without them keep today's
-- elapsed-time grid in UTC); the slot arithmetic is a handful of functions that tick's
-- set-based statement calls, using PostgreSQL's own time zone database. The host's tables are
-- not touched.
-- depends: 0006_hooks

SET LOCAL lock_timeout = '200ms';

ALTER TABLE schedctl.scheduler_settings
    -- The wall-clock time of day of the grid in time_zone; NULL: the elapsed-time grid.
    ADD COLUMN at_time TIME,
    -- An IANA zone name (checked by schedctl against the server's zone database).
    ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC',
    -- One wall-clock time of the grid, in time_zone: the grid is every schedule_interval_hours
    -- of wall-clock time from it (for 48 h it fixes which days). Set together with at_time.
    ADD COLUMN grid_anchor TIMESTAMP,
    -- The width of the spread window; each scheduler runs at a stable offset inside it.
    ADD COLUMN spread_seconds INTEGER NOT NULL DEFAULT 0
        CHECK (spread_seconds BETWEEN 0 AND 172800),
    -- How late a slot may still be served; NULL: however late (one job for the coalesced slots).
    ADD COLUMN catchup_window_seconds INTEGER CHECK (catchup_window_seconds >= 60),
    -- When a paused scheduler resumes by itself (a tick does it); NULL: when an operator says.
    ADD COLUMN paused_until TIMESTAMPTZ,
    ADD CONSTRAINT scheduler_settings_grid_check CHECK ((at_time IS NULL) = (grid_anchor IS NULL));

CREATE INDEX scheduler_settings_paused_until
    ON schedctl.scheduler_settings (paused_until) WHERE paused_until IS NOT NULL;

-- The offset of a scheduler's runs inside its spread window: a hash of its id, so the same
-- for every run and evenly spread across schedulers (whole seconds, 0 <= offset < spread).
CREATE FUNCTION schedctl.spread_offset(scheduler_id uuid, spread_seconds integer)
RETURNS interval
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT make_interval(secs => floor(
        ('x' || left(md5(scheduler_id::text), 8))::bit(32)::bigint::numeric / 4294967296
        * spread_seconds
    ))
$$;

-- The instant a wall-clock time of a zone happens, by schedctl's daylight-saving policy: a
-- time that does not exist that day (the clocks spring forward over it) is the first instant
-- after the gap; a time that happens twice (the clocks fall back) is its first occurrence.
-- PostgreSQL alone reads both with the standard-time offset: a time in the gap comes out as
-- late as the gap is long (02:30 New York -> 03:30 EDT), a repeated one at its second
-- occurrence.
CREATE FUNCTION schedctl.wall_instant(wall timestamp, zone text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    reading timestamptz := wall AT TIME ZONE zone;
    earlier timestamptz;
    lo timestamptz;
    hi timestamptz;
    mid timestamptz;
    after_offset interval;
BEGIN
    IF (reading AT TIME ZONE zone) = wall THEN
        -- A repeated time: read it with the offset of three hours before (the one in force
        -- before the clocks fell back); when that is an earlier reading of the same time, it
        -- is the first occurrence.
        earlier := (wall AT TIME ZONE 'UTC')
            - (((reading - interval '3 hours') AT TIME ZONE zone)
               - ((reading - interval '3 hours') AT TIME ZONE 'UTC'));
        IF earlier < reading AND (earlier AT TIME ZONE zone) = wall THEN
            RETURN earlier;
        END IF;
        RETURN reading;
    END IF;
    -- In a gap: the reading lies after the transition by as much as the wall time lies after
    -- the gap's start, less than the gap is long. Find the transition (where the offset
    -- becomes the reading's) between the two, to the microsecond.
    after_offset := (reading AT TIME ZONE zone) - (reading AT TIME ZONE 'UTC');
    hi := reading;
    lo := reading - ((reading AT TIME ZONE zone) - wall);
    WHILE hi - lo > interval '1 microsecond' LOOP
        mid := lo + (hi - lo) / 2;
        IF (mid AT TIME ZONE zone) - (mid AT TIME ZONE 'UTC') = after_offset THEN
            hi := mid;
        ELSE
            lo := mid;
        END IF;
    END LOOP;
    RETURN hi;
END
$$;

-- Slot number `i` of a wall-clock grid: the wall time i intervals after the anchor, as the
-- DST policy places it, plus the scheduler's spread offset.
CREATE FUNCTION schedctl.grid_slot(
    i bigint, hours integer, anchor timestamp, zone text, spread interval
) RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT schedctl.wall_instant(anchor + (i * hours) * interval '1 hour', zone) + spread
$$;

-- The number of the first slot of a wall-clock grid strictly after `after`. The wall-clock
-- reading of `after` gives the last slot at or before it, but for an hour that happens twice:
-- slots already passed at their first occurrence are stepped over.
CREATE FUNCTION schedctl.grid_next_index(
    after timestamptz, hours integer, anchor timestamp, zone text, spread interval
) RETURNS bigint
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    i bigint := floor(extract(epoch FROM ((after - spread) AT TIME ZONE zone) - anchor)
                      / (hours * 3600)) + 1;
BEGIN
    WHILE schedctl.grid_slot(i, hours, anchor, zone, spread) <= after LOOP
        i := i + 1;
    END LOOP;
    RETURN i;
END
$$;

-- The number of a slot of a wall-clock grid (a time the grid placed).
CREATE FUNCTION schedctl.grid_index(
    slot timestamptz, hours integer, anchor timestamp, zone text, spread interval
) RETURNS bigint
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT floor(extract(epoch FROM ((slot - spread) AT TIME ZONE zone) - anchor)
                 / (hours * 3600))::bigint
$$;

-- What tick does for one scheduler on a wall-clock grid or with a catch-up window (anchor NULL:
-- the elapsed-time grid). `slot` is its next_run_at, due at `now`. Returns the slot to serve
-- (NULL when every due slot is later than the window allows), how many due grid times are not
-- served (none from before the scheduler existed), and the first grid time after now.
-- Tick calls it once per such scheduler in a pass, so it places as few wall times as it can:
-- the next grid time is the one the search for it placed last (grid_next_index's loop, here
-- inline), and the latest due one is placed only for a catch-up window, which alone needs it.
CREATE FUNCTION schedctl.plan_slot(
    slot timestamptz, clock timestamptz, created_at timestamptz, hours integer,
    anchor timestamp, zone text, spread interval, window_seconds integer,
    OUT serve timestamptz, OUT missed integer, OUT next_run_at timestamptz
)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    step interval := hours * interval '1 hour';
    first_index bigint;
    next_index bigint;
    latest timestamptz;
    due integer;  -- grid times after the slot and at or before the clock, since creation
BEGIN
    IF anchor IS NULL THEN
        -- The elapsed-time grid: exact division of the elapsed seconds.
        due := floor(extract(epoch FROM clock - slot) / (hours * 3600))::integer;
        next_run_at := slot + step * (due + 1);
        IF window_seconds IS NOT NULL THEN
            latest := slot + step * due;
        END IF;
        IF slot < created_at THEN
            due := due - greatest(
                0, ceil(extract(epoch FROM created_at - slot) / (hours * 3600))::integer - 1);
        END IF;
    ELSE
        first_index := schedctl.grid_index(slot, hours, anchor, zone, spread);
        -- schedctl.grid_next_index(clock, ...), keeping the grid time it placed last
        next_index := floor(extract(epoch FROM ((clock - spread) AT TIME ZONE zone) - anchor)
                            / (hours * 3600)) + 1;
        LOOP
            next_run_at := schedctl.grid_slot(next_index, hours, anchor, zone, spread);
            EXIT WHEN next_run_at > clock;
            next_index := next_index + 1;
        END LOOP;
        due := greatest(0, next_index - first_index - 1)::integer;
        IF window_seconds IS NOT NULL THEN
            latest := CASE WHEN due = 0 THEN slot
                           ELSE schedctl.grid_slot(next_index - 1, hours, anchor, zone, spread) END;
        END IF;
        IF slot < created_at THEN
            due := greatest(0, next_index - greatest(first_index + 1, schedctl.grid_next_index(
                created_at - interval '1 microsecond', hours, anchor, zone, spread)))::integer;
        END IF;
    END IF;
    due := greatest(due, 0);
    IF window_seconds IS NULL THEN
        serve := slot;  -- one job for the coalesced slots, made for the first
        missed := due;
    ELSIF clock - latest <= window_seconds * interval '1 second' THEN
        serve := latest;  -- the most recent due slot is on time; those before it are missed
        missed := due - (latest >= created_at)::integer + (slot >= created_at)::integer;
    ELSE
        serve := NULL;  -- every due slot is later than the window allows: none is served
        missed := due + (slot >= created_at)::integer;
    END IF;
END
$$;

-- The first slot of a wall-clock grid at or after `start`, and the anchor of that grid: for
-- 6, 12 and 24 hours any day at the time of day; for 48 hours the day of that first slot.
CREATE FUNCTION schedctl.grid_start(
    start timestamptz, hours integer, at_time time, zone text, spread interval,
    OUT first_slot timestamptz, OUT anchor timestamp
)
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    daily timestamp := date '2000-01-01' + at_time;
    i bigint;
BEGIN
    i := schedctl.grid_next_index(start - interval '1 microsecond', least(hours, 24), daily, zone,
                                  spread);
    anchor := daily + (i * least(hours, 24)) * interval '1 hour';
    first_slot := schedctl.grid_slot(0, hours, anchor, zone, spread);
END
$$;

-- Resume the schedulers whose pause has run out (`pause --until`) by `clock`, all at once, each
-- with an audit entry by `actor`; one an operator is changing at this moment is left to the
-- next pass. Slots that passed meanwhile are due, as after `resume`. It runs with its owner's
-- rights, so that tick's role needs no right to enable (or disable) schedulers itself.
CREATE FUNCTION schedctl.resume_paused(clock timestamptz, actor text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    resumed integer;
BEGIN
    WITH due AS MATERIALIZED (
        SELECT s.id, s.organisation_id, s.domain_id, NOT s.is_enabled AS paused,
               st.paused_until, st.pause_reason
        FROM schedctl.scheduler_settings st
        JOIN public.schedulers s ON s.id = st.scheduler_id
        WHERE st.paused_until <= clock
        FOR NO KEY UPDATE OF s SKIP LOCKED
    ),
    settings AS (
        UPDATE schedctl.scheduler_settings st SET paused_until = NULL, pause_reason = NULL
        FROM due
        WHERE st.scheduler_id = due.id
    ),
    enabled AS (
        UPDATE public.schedulers s SET is_enabled = TRUE, updated_at = clock
        FROM due
        WHERE s.id = due.id AND due.paused
    )
    INSERT INTO schedctl.audit (
        actor, action, scheduler_id, organisation_id, domain, changes, reason
    )
    SELECT resume_paused.actor, 'resume', due.id, due.organisation_id, d.name,
           jsonb_build_object(
               'is_enabled', jsonb_build_array(false, true),
               'pause_reason', jsonb_build_array(due.pause_reason, NULL),
               'paused_until', jsonb_build_array(t.until, NULL)
           ),
           'paused until ' || t.until
    FROM due
    JOIN public.domains d ON d.id = due.domain_id
    CROSS JOIN LATERAL (
        -- as schedctl writes times: UTC, "Z", microseconds when not 0
        SELECT replace(to_char(due.paused_until AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '') || 'Z' AS until
    ) AS t
    WHERE due.paused;
    GET DIAGNOSTICS resumed = ROW_COUNT;
    RETURN resumed;
END
$$;
