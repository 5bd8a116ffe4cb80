-- The pass as functions of schedctl's schema, so that any clock can drive it: `schedctl tick`
-- (cron, a systemd timer) calls schedctl.tick_batch once per batch, and pg_cron (Supabase
-- Cron) calls the procedure schedctl.tick(). `run` makes its job through the same step,
-- schedctl.make_jobs. Every function runs with its caller's privileges (SECURITY INVOKER):
-- the tick role of contrib/grants.sql needs EXECUTE on them and nothing more, and row-level
-- security applies as to the caller's own statements. Also the set-based create-jobs hook.
-- Only schedctl's own schema changes; the host's tables are not touched.
-- depends: 0009_cli

SET LOCAL lock_timeout = '200ms';

-- FUNCTION(scheduler_ids uuid[], slots timestamptz[])
--     RETURNS TABLE(scheduler_id uuid, slot timestamptz, job_id text),
-- called once per batch with the slots to serve; at most one of the two create hooks is set.
ALTER TABLE schedctl.hooks
    ADD COLUMN create_jobs_schema TEXT,
    ADD COLUMN create_jobs_function TEXT,
    ADD CONSTRAINT hooks_create_jobs_check
        CHECK ((create_jobs_schema IS NULL) = (create_jobs_function IS NULL)),
    ADD CONSTRAINT hooks_one_create_hook
        CHECK (create_job_function IS NULL OR create_jobs_function IS NULL);

-- What a batch did for one scheduler: the job made (NULL: none), the slot served and the
-- next run; `skip`: no job by the overlap policy or because the slot was served already;
-- `error`: the scheduler failed alone (its rows were rolled back; the others went on).
CREATE TYPE schedctl.tick_outcome AS (
    scheduler_id uuid,
    job_id text,
    organisation_id uuid,
    domain text,
    slot timestamptz,
    next_run_at timestamptz,
    missed integer,
    skip boolean,
    error text
);

-- The one step that makes jobs, for tick (run_at NULL: each scheduler's due slot, then the
-- schedule moves on) and for `run` (run_at: the run's time is the slot; the schedule stays,
-- no slot is recorded). The caller holds the schedulers' row locks. The overlap policy, the
-- database's hooks (read here; called by their quoted names), the served-slot record, the
-- audit of skipped, declined and missed slots and the new next_run_at, in one statement. In
-- a dry run no hook is called and hooks' steps write nothing (the caller rolls back).
-- The batch is carried through hashed subplans and index probes, never joined with the
-- active jobs: the planner's estimates of those (the pass's own new jobs are not yet in the
-- statistics) do not change the plan's shape.
CREATE FUNCTION schedctl.make_jobs(
    ids uuid[], clock timestamptz, actor text, dry_run boolean DEFAULT FALSE,
    run_at timestamptz DEFAULT NULL
) RETURNS SETOF schedctl.tick_outcome
LANGUAGE plpgsql AS $fn$
DECLARE
    h schedctl.hooks;
    cancel_step text := $$
        UPDATE public.jobs j SET status = 'cancelled', completed_at = $2
        WHERE j.id = ANY (ARRAY(
            SELECT a.id FROM active a
            WHERE ((a.domain_id, a.organisation_id) IN (
                SELECT domain_id, organisation_id FROM decided
                WHERE overlap_policy = 'replace' AND NOT served)) IS TRUE))
        RETURNING j.id$$;
    -- A job that is active (as schedctl_jobs_active_idx's predicate has it).
    is_active constant text := $$j.status IN ('pending', 'initializing', 'running', 'paused')$$;
    -- The batch's active jobs, found in one pass over the active jobs (each checked against a
    -- hash of the batch's keys; `IS TRUE` keeps each IN a hashed subplan rather than a join,
    -- whatever the estimates) ...
    active_step text := format($$
        SELECT j.id, j.domain_id, j.organisation_id
        FROM public.jobs j
        WHERE %s
          AND (j.organisation_id IN (SELECT organisation_id FROM planned)) IS TRUE
          AND ((j.domain_id, j.organisation_id) IN (
              SELECT domain_id, organisation_id FROM planned)) IS TRUE$$, is_active);
    made_step text := 'SELECT t.*, t.new_job_id AS job_id FROM to_serve t';
    -- The served-slot record of the slots made (tick only: a run records no slot); NULL: the
    -- hook declined the slot. No ON CONFLICT: the row lock and `served` keep a second job
    -- for a slot away, and should a row for the slot appear anyway, the unique violation
    -- rolls the scheduler's job back with it (reported as its error).
    record_step text := $$,
recorded AS (
    INSERT INTO schedctl.served_slots (scheduler_id, slot, job_id)
    SELECT id, slot, job_id FROM made WHERE job_id IS NOT NULL
)$$;
    -- The jobs of the slots made (none when a create hook made them).
    write_step text := $$,
inserted AS (
    INSERT INTO public.jobs (
        id, domain_id, organisation_id, status, progress, created_at, concurrency,
        find_links, max_pages, include_paths, exclude_paths, required_workers,
        source_type, source_detail, source_info, scheduler_id
    )
    SELECT m.job_id, m.domain_id, m.organisation_id, 'pending', 0, $2, m.concurrency,
           m.find_links, m.max_pages, m.include_paths, m.exclude_paths,
           m.required_workers, 'scheduler', m.id::text,
           CASE WHEN $4 IS NOT NULL THEN 'manual run' END, m.id
    FROM made m
)$$;
    -- What only tick writes: the audit of declined, skipped and missed slots, and the next
    -- run (a run leaves the schedule as it is).
    tick_writes text := $$,
skipped AS (
    -- Slots passed over: declined by the create-job hook, or skipped by the overlap policy.
    INSERT INTO schedctl.audit (
        actor, action, scheduler_id, organisation_id, domain, changes, reason
    )
    SELECT $3, 'skip', x.id, x.organisation_id, x.domain,
           jsonb_build_object('slot', schedctl.rfc3339(x.slot),
                              'next_run_at', jsonb_build_array(schedctl.rfc3339(x.slot),
                                                               schedctl.rfc3339(x.next_run_at))),
           x.reason
    FROM (
        SELECT m.id, m.organisation_id, m.domain, m.slot, m.next_run_at,
               'the create-job hook declined the slot (it returned NULL)' AS reason
        FROM made m
        WHERE m.job_id IS NULL
        UNION ALL
        SELECT p.id, p.organisation_id, p.domain, p.slot, p.next_run_at,
               'a job of this domain is still active'
        FROM decided p
        WHERE p.skip
    ) AS x
),
missed_late AS (
    -- Slots the catch-up window let pass, and why.
    INSERT INTO schedctl.audit (
        actor, action, scheduler_id, organisation_id, domain, changes, reason
    )
    SELECT $3, 'missed', p.id, p.organisation_id, p.domain,
           jsonb_build_object('slot', schedctl.rfc3339(p.due_slot), 'missed', p.missed,
                              'next_run_at', jsonb_build_array(schedctl.rfc3339(p.due_slot),
                                                               schedctl.rfc3339(p.next_run_at))),
           p.missed || CASE WHEN p.missed = 1 THEN ' slot was' ELSE ' slots were' END
               || ' not served: later than the catch-up window of '
               || (p.catchup_window_seconds / 60) || ' min'
    FROM decided p
    WHERE p.catchup_window_seconds IS NOT NULL AND p.missed > 0
),
advanced AS (
    UPDATE public.schedulers s
    SET next_run_at = p.next_run_at, updated_at = $2
    FROM decided p
    WHERE s.id = p.id
      AND s.id = ANY (ARRAY(SELECT id FROM decided))  -- by key, not a scan of the table
)$$;
BEGIN
    SELECT * INTO h FROM schedctl.hooks;
    -- ... or, where schedctl's index of active jobs by domain and organisation has grown past
    -- a few pages and may hold more than 20 for each scheduler of the batch (a large pass's
    -- own new jobs pile up in it, and a pass over them all would grow with each batch), by a
    -- probe of that index per key. (Its pages at 40 bytes an entry, the most they hold.)
    IF (SELECT pg_relation_size(i.indexrelid) > 8 * current_setting('block_size')::bigint
               AND pg_relation_size(i.indexrelid) / 40 > 20 * cardinality(ids)
        FROM pg_index i
        WHERE i.indexrelid = to_regclass('public.schedctl_jobs_active_idx')
          AND i.indisvalid AND i.indisready) THEN
        active_step := format($$
            SELECT j.id, j.domain_id, j.organisation_id
            FROM (SELECT DISTINCT domain_id, organisation_id FROM planned) AS k
            CROSS JOIN LATERAL (
                SELECT j.id, j.domain_id, j.organisation_id FROM public.jobs j
                WHERE j.domain_id = k.domain_id AND j.organisation_id = k.organisation_id
                  AND %s
                OFFSET 0  -- not pulled up: a probe per key
            ) AS j$$, is_active);
    END IF;
    IF h.cancel_job_function IS NOT NULL THEN
        -- The host's FUNCTION(job_id text) for each active job the replace policy cancels.
        cancel_step := CASE WHEN dry_run THEN 'SELECT NULL::text AS id WHERE FALSE' ELSE format($$
            SELECT %I.%I(a.id) AS id FROM active a
            WHERE ((a.domain_id, a.organisation_id) IN (
                SELECT domain_id, organisation_id FROM decided
                WHERE overlap_policy = 'replace' AND NOT served)) IS TRUE
            ORDER BY a.id$$, h.cancel_job_schema, h.cancel_job_function) END;
    END IF;
    IF (h.create_job_function IS NOT NULL OR h.create_jobs_function IS NOT NULL)
       AND NOT dry_run THEN
        IF h.create_job_function IS NOT NULL THEN
            -- The host's FUNCTION(scheduler_id uuid, slot timestamptz): the id of its job.
            made_step := format('SELECT t.*, %I.%I(t.id, t.slot) AS job_id FROM to_serve t',
                                h.create_job_schema, h.create_job_function);
        ELSE
            -- The host's FUNCTION(scheduler_ids uuid[], slots timestamptz[]), once for the
            -- batch; its rows looked up by scheduler id (a jsonb object, not a join).
            made_step := format($$
                SELECT t.*, r.made ->> t.id::text AS job_id
                FROM to_serve t
                CROSS JOIN (
                    SELECT jsonb_object_agg(h.scheduler_id, h.job_id) AS made
                    FROM %I.%I(ARRAY(SELECT id FROM to_serve ORDER BY slot, id),
                               ARRAY(SELECT slot FROM to_serve ORDER BY slot, id)) AS h
                    WHERE EXISTS (SELECT 1 FROM to_serve)
                ) AS r$$, h.create_jobs_schema, h.create_jobs_function);
        END IF;
        write_step := '';  -- the hook made the jobs
    ELSIF h.create_job_function IS NOT NULL OR h.create_jobs_function IS NOT NULL THEN
        -- A dry run with a create hook: no hook is called and nothing is written.
        record_step := '';
        write_step := '';
    END IF;
    IF run_at IS NOT NULL THEN
        record_step := '';  -- a run records no slot
        tick_writes := '';  -- and leaves the schedule as it is
    END IF;
    RETURN QUERY EXECUTE format($$
WITH planned AS MATERIALIZED (
    SELECT s.id, s.domain_id, s.organisation_id, d.name AS domain,
           CASE WHEN $4 IS NOT NULL THEN $4
                WHEN z.next_run_at IS NULL THEN s.next_run_at
                ELSE COALESCE(z.serve, s.next_run_at) END AS slot,
           COALESCE(st.overlap_policy, 'replace') AS overlap_policy, s.concurrency,
           s.find_links, s.max_pages, s.include_paths, s.exclude_paths, s.required_workers,
           -- grid times from before the scheduler existed are not counted
           CASE WHEN $4 IS NOT NULL THEN 0
                ELSE COALESCE(z.missed, m.missed - CASE WHEN s.next_run_at < s.created_at
                    THEN GREATEST(0, ceil(extract(epoch FROM s.created_at - s.next_run_at)
                                          / (s.schedule_interval_hours * 3600))::integer - 1)
                    ELSE 0 END) END AS missed,
           CASE WHEN $4 IS NOT NULL THEN s.next_run_at
                ELSE COALESCE(z.next_run_at, s.next_run_at
                    + make_interval(hours => s.schedule_interval_hours * (m.missed + 1))) END
               AS next_run_at,
           -- A slot that already has its job (next_run_at was set back onto it): nothing is
           -- cancelled or made for it again; the schedule just moves on. So too when no slot
           -- is to be served: every due one is later than the catch-up window allows.
           $4 IS NULL AND (z.next_run_at IS NOT NULL AND z.serve IS NULL OR ss.served IS TRUE)
               AS served,
           s.next_run_at AS due_slot, st.catchup_window_seconds,
           gen_random_uuid()::text AS new_job_id
    -- Each claimed row looked up by its key (lateral, not pulled up): a probe per row of
    -- the batch, never a scan of the whole table, whatever the planner's estimates.
    FROM unnest($1::uuid[]) AS claimed (id)
    CROSS JOIN LATERAL (
        SELECT * FROM public.schedulers s WHERE s.id = claimed.id OFFSET 0
    ) AS s
    CROSS JOIN LATERAL (
        SELECT d.name FROM public.domains d WHERE d.id = s.domain_id OFFSET 0
    ) AS d
    LEFT JOIN LATERAL (
        SELECT * FROM schedctl.scheduler_settings st WHERE st.scheduler_id = s.id OFFSET 0
    ) AS st ON TRUE
    -- grid times <= now after the slot: exact (numeric) division of the elapsed seconds
    CROSS JOIN LATERAL (
        SELECT floor(extract(epoch FROM $2 - s.next_run_at)
                     / (s.schedule_interval_hours * 3600))::integer AS missed
    ) AS m
    -- A wall-clock grid (--at) or a catch-up window: planned by schedctl.plan_slot, for
    -- those rows only (the others keep the arithmetic above).
    LEFT JOIN LATERAL (
        SELECT * FROM schedctl.plan_slot(
            s.next_run_at, $2, s.created_at, s.schedule_interval_hours, st.grid_anchor,
            st.time_zone, schedctl.spread_offset(s.id, st.spread_seconds),
            st.catchup_window_seconds
        )
        WHERE $4 IS NULL
          AND (st.grid_anchor IS NOT NULL OR st.catchup_window_seconds IS NOT NULL)
        -- not pulled up: the condition is checked before the call, not after it
        OFFSET 0
    ) AS z ON TRUE
    -- The served-slot record of the slot, if any: a probe of its key per row (not a hash of
    -- every slot ever served, which grows with each batch of a pass).
    LEFT JOIN LATERAL (
        SELECT TRUE AS served FROM schedctl.served_slots ss
        WHERE $4 IS NULL AND ss.scheduler_id = s.id
          AND ss.slot = CASE WHEN z.next_run_at IS NULL THEN s.next_run_at ELSE z.serve END
        OFFSET 0
    ) AS ss ON TRUE
),
-- The active jobs of the batch's domains and organisations (see active_step).
active AS MATERIALIZED (%s),
decided AS MATERIALIZED (
    SELECT p.*,
           NOT p.served AND p.overlap_policy = 'skip'
               AND ((p.domain_id, p.organisation_id) IN (
                   SELECT domain_id, organisation_id FROM active)) IS TRUE AS skip
    FROM planned p
),
-- The active jobs the replace policy cancels (by id: probes of the jobs' primary key).
cancelled AS MATERIALIZED (%s),
-- The slots to serve; a one-time filter: the replaced jobs are cancelled first.
to_serve AS MATERIALIZED (
    SELECT p.* FROM decided p
    WHERE NOT p.skip AND NOT p.served AND (SELECT count(*) FROM cancelled) >= 0
),
-- Each slot to serve with the id of its job (NULL: the hook declined it).
made AS MATERIALIZED (%s)%s%s%s
SELECT m.id, m.job_id, m.organisation_id, m.domain, m.slot, m.next_run_at, m.missed, FALSE,
       NULL::text
FROM made m
UNION ALL
SELECT p.id, NULL, p.organisation_id, p.domain, p.slot, p.next_run_at, p.missed, TRUE, NULL
FROM decided p
WHERE p.skip OR p.served
ORDER BY 5, 1
$$, active_step, cancel_step, made_step, record_step, write_step, tick_writes
    ) USING ids, clock, actor, run_at;
END
$fn$;

-- A time as schedctl writes it (render.rfc3339): UTC, "Z", microseconds when not 0.
CREATE FUNCTION schedctl.rfc3339(moment timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT replace(to_char(moment AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                   '.000000', '') || 'Z'
$$;

-- Tell the notify channel's listeners (if the database has one) about new jobs: when the
-- caller's transaction commits, not before, and not at all if it rolls back. The payload is
-- how many there are and their ids, as many as fit in 7000 bytes (`truncated` says so).
CREATE FUNCTION schedctl.notify_jobs(job_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    channel text;
BEGIN
    IF COALESCE(cardinality(job_ids), 0) = 0 THEN
        RETURN;
    END IF;
    SELECT notify_channel INTO channel FROM schedctl.hooks;
    IF channel IS NULL THEN
        RETURN;
    END IF;
    PERFORM pg_notify(channel, (
        SELECT '{"created":' || cardinality(job_ids) || ',"job_ids":['
               || COALESCE(string_agg(to_json(listed.id)::text, ',' ORDER BY listed.n), '')
               || '],"truncated":' || (count(*) < cardinality(job_ids)) || '}'
        FROM (
            SELECT u.id, u.n,
                   60 + sum(octet_length(to_json(u.id)::text) + 2) OVER (ORDER BY u.n) AS size
            FROM unnest(job_ids) WITH ORDINALITY AS u (id, n)
        ) AS listed
        WHERE listed.size <= 7000
    ));
END
$$;

-- Whether an error caught while making a batch's jobs belongs to one scheduler's rows (a
-- host constraint or trigger refusing a job, or any error raised inside a hook function),
-- not to the session or the statement (cancelled, ended by the server, a transaction state).
CREATE FUNCTION schedctl.row_error(sqlstate text, context text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    h schedctl.hooks;
    hook text;
BEGIN
    IF left(sqlstate, 2) IN ('25', '57', '08') THEN
        RETURN FALSE;
    END IF;
    IF left(sqlstate, 2) IN ('22', '23', 'XX')
       OR sqlstate IN ('P0001', 'P0002', 'P0003', 'P0004') THEN
        RETURN TRUE;
    END IF;
    SELECT * INTO h FROM schedctl.hooks;
    FOREACH hook IN ARRAY ARRAY(
        SELECT name
        FROM (VALUES (h.create_job_schema, h.create_job_function),
                     (h.create_jobs_schema, h.create_jobs_function),
                     (h.cancel_job_schema, h.cancel_job_function)) AS f (schema, fn)
        CROSS JOIN LATERAL (VALUES (format('%I.%I', f.schema, f.fn)), (quote_ident(f.fn)))
            AS n (name)
        WHERE f.fn IS NOT NULL
    ) LOOP
        IF strpos(context, 'function ' || hook || '(') > 0 THEN
            RETURN TRUE;
        END IF;
    END LOOP;
    RETURN FALSE;
END
$$;

-- One batch of a pass: lock up to `batch` due schedulers, most overdue first, skipping rows
-- another tick or an operator holds (and the `exclude`d ones, which failed earlier in the
-- pass); make their jobs (schedctl.make_jobs); notify the channel. A scheduler whose rows
-- fail is retried alone and reported with its error; the others are made. `clock` replaces
-- the database's (tests); `lock_timeout` bounds the wait for a job's lock (a cancel).
-- Called as one statement, it is its own transaction: nothing is held open meanwhile.
CREATE FUNCTION schedctl.tick_batch(
    batch integer, exclude uuid[] DEFAULT '{}', clock timestamptz DEFAULT NULL,
    actor text DEFAULT 'tick', dry_run boolean DEFAULT FALSE, lock_timeout text DEFAULT NULL
) RETURNS SETOF schedctl.tick_outcome
LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := COALESCE(clock, now());
    ids uuid[];
    one uuid;
    outcomes schedctl.tick_outcome[];
    state text;
    context text;
    message text;
BEGIN
    IF lock_timeout IS NOT NULL THEN
        PERFORM set_config('lock_timeout', lock_timeout, TRUE);
    END IF;
    -- NO KEY UPDATE is enough to keep other ticks and operators out, and lets the host keep
    -- inserting jobs that reference these schedulers meanwhile.
    ids := ARRAY(
        SELECT s.id FROM public.schedulers s
        WHERE s.is_enabled AND s.next_run_at <= at
          AND NOT (s.id = ANY (COALESCE(exclude, '{}')))
        ORDER BY s.next_run_at
        LIMIT batch
        FOR NO KEY UPDATE SKIP LOCKED
    );
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    BEGIN
        outcomes := ARRAY(SELECT o FROM schedctl.make_jobs(ids, at, actor, dry_run) AS o);
    EXCEPTION WHEN assert_failure OR OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, context = PG_EXCEPTION_CONTEXT;
        IF NOT schedctl.row_error(state, context) THEN
            RAISE;
        END IF;
        -- A row of the batch failed: one scheduler at a time, so that only the failing
        -- ones are left out (their locks stay until the batch ends).
        outcomes := '{}';
        FOREACH one IN ARRAY ids LOOP
            BEGIN
                outcomes := outcomes
                    || ARRAY(SELECT o FROM schedctl.make_jobs(ARRAY[one], at, actor, dry_run) AS o);
            EXCEPTION WHEN assert_failure OR OTHERS THEN
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, context = PG_EXCEPTION_CONTEXT,
                                        message = MESSAGE_TEXT;
                IF NOT schedctl.row_error(state, context) THEN
                    RAISE;
                END IF;
                outcomes := outcomes || ROW(one, NULL, NULL, NULL, NULL, NULL, 0, FALSE,
                    COALESCE(NULLIF(split_part(btrim(message), E'\n', 1), ''), state)
                )::schedctl.tick_outcome;
            END;
        END LOOP;
    END;
    IF NOT dry_run THEN
        PERFORM schedctl.notify_jobs(
            ARRAY(SELECT o.job_id FROM unnest(outcomes) AS o WHERE o.job_id IS NOT NULL));
    END IF;
    RETURN QUERY SELECT * FROM unnest(outcomes);
END
$$;

-- `run`: a job for one scheduler now, outside its schedule, through the same step as tick
-- (the run's time is its slot), and the notification. The caller holds the scheduler's lock;
-- it refuses the run when the outcome says skip (the overlap policy) or no job (declined).
CREATE FUNCTION schedctl.run_job(scheduler_id uuid, actor text)
RETURNS SETOF schedctl.tick_outcome
LANGUAGE plpgsql AS $$
DECLARE
    outcomes schedctl.tick_outcome[];
BEGIN
    outcomes := ARRAY(
        SELECT o FROM schedctl.make_jobs(ARRAY[scheduler_id], now(), actor, FALSE, now()) AS o
    );
    PERFORM schedctl.notify_jobs(
        ARRAY(SELECT o.job_id FROM unnest(outcomes) AS o WHERE o.job_id IS NOT NULL));
    RETURN QUERY SELECT * FROM unnest(outcomes);
END
$$;

-- A whole pass inside the database, for pg_cron (`CALL schedctl.tick()`): the schedulers
-- whose pause ran out are resumed, then batches of growing size are made and committed one
-- by one (a pass stopped part-way keeps the batches it finished), then the heartbeat of
-- `host` is left for `status`, as a `schedctl tick` run leaves its host's. Call it outside a
-- transaction block (COMMIT between batches).
CREATE PROCEDURE schedctl.tick(
    host text DEFAULT 'pg_cron', batch_size integer DEFAULT 1000,
    max_batch_size integer DEFAULT 2000
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    size integer := batch_size;
    claimed integer;
    outcome record;
    failed_ids uuid[] := '{}';
    due integer := 0;
    created integer := 0;
    skipped integer := 0;
    failed integer := 0;
    missed integer := 0;
    message text;
BEGIN
    PERFORM schedctl.resume_paused(now(), 'tick');
    COMMIT;
    LOOP
        claimed := 0;
        FOR outcome IN SELECT * FROM schedctl.tick_batch(size, failed_ids) LOOP
            claimed := claimed + 1;
            due := due + 1;
            missed := missed + outcome.missed;
            IF outcome.error IS NOT NULL THEN
                failed := failed + 1;
                failed_ids := failed_ids || outcome.scheduler_id;
                message := COALESCE(message, outcome.error);
            ELSIF outcome.job_id IS NOT NULL THEN
                created := created + 1;
            ELSE
                skipped := skipped + 1;
            END IF;
        END LOOP;
        COMMIT;
        EXIT WHEN claimed = 0;
        size := LEAST(size * 2, max_batch_size);
    END LOOP;
    -- A heartbeat lost in a crash costs nothing: no wait for its WAL flush.
    PERFORM set_config('synchronous_commit', 'off', TRUE);
    INSERT INTO schedctl.tick_heartbeats AS hb
        (host, ticked_at, ok, due, created, skipped, failed, missed, message)
    VALUES (tick.host, now(), failed = 0, due, created, skipped, failed, missed, message)
    ON CONFLICT (host) DO UPDATE SET
        ticked_at = EXCLUDED.ticked_at, ok = EXCLUDED.ok, due = EXCLUDED.due,
        created = EXCLUDED.created, skipped = EXCLUDED.skipped, failed = EXCLUDED.failed,
        missed = EXCLUDED.missed, message = EXCLUDED.message;
    COMMIT;
END
$$;
