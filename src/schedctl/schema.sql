-- The objects schedctl's migrations make on a new database: everything in the schedctl
-- schema, and the host's tables in public that the migrations create where the host has
-- none. Generated from the server's catalogs; do not edit by hand. After adding a
-- migration, regenerate it (README, "Development"):
--     python -m tests.schema_snapshot --write
-- tests/test_schema_snapshot.py checks that the migrations make exactly this.

CREATE SCHEMA schedctl;

CREATE TABLE public.domains (
    id integer DEFAULT nextval('public.domains_id_seq'::regclass) NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT domains_name_key UNIQUE (name),
    CONSTRAINT domains_pkey PRIMARY KEY (id)
);

CREATE SEQUENCE public.domains_id_seq AS integer START 1 INCREMENT 1 MINVALUE 1 MAXVALUE 2147483647 CACHE 1 OWNED BY public.domains.id;

CREATE TABLE public.jobs (
    id text NOT NULL,
    domain_id integer NOT NULL,
    user_id uuid,
    organisation_id uuid,
    status text NOT NULL,
    progress real NOT NULL,
    sitemap_tasks integer DEFAULT 0 NOT NULL,
    found_tasks integer DEFAULT 0 NOT NULL,
    total_tasks integer DEFAULT 0 NOT NULL,
    completed_tasks integer DEFAULT 0 NOT NULL,
    failed_tasks integer DEFAULT 0 NOT NULL,
    skipped_tasks integer DEFAULT 0 NOT NULL,
    running_tasks integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    concurrency integer NOT NULL,
    find_links boolean NOT NULL,
    max_pages integer NOT NULL,
    include_paths text,
    exclude_paths text,
    required_workers integer DEFAULT 0,
    error_message text,
    source_type text,
    source_detail text,
    source_info text,
    scheduler_id uuid,
    CONSTRAINT jobs_domain_id_fkey FOREIGN KEY (domain_id) REFERENCES public.domains(id) ON DELETE CASCADE,
    CONSTRAINT jobs_organisation_id_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisations(id) ON DELETE CASCADE,
    CONSTRAINT jobs_pkey PRIMARY KEY (id),
    CONSTRAINT jobs_scheduler_id_fkey FOREIGN KEY (scheduler_id) REFERENCES public.schedulers(id)
);
CREATE INDEX idx_jobs_scheduler_id ON public.jobs USING btree (scheduler_id) WHERE (scheduler_id IS NOT NULL);

CREATE TABLE public.organisations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT organisations_pkey PRIMARY KEY (id)
);

CREATE TABLE public.schedulers (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    domain_id integer NOT NULL,
    organisation_id uuid NOT NULL,
    schedule_interval_hours integer NOT NULL,
    next_run_at timestamp with time zone NOT NULL,
    is_enabled boolean DEFAULT true NOT NULL,
    concurrency integer DEFAULT 20 NOT NULL,
    find_links boolean DEFAULT true NOT NULL,
    max_pages integer DEFAULT 0 NOT NULL,
    include_paths text,
    exclude_paths text,
    required_workers integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schedulers_domain_id_fkey FOREIGN KEY (domain_id) REFERENCES public.domains(id) ON DELETE CASCADE,
    CONSTRAINT schedulers_organisation_id_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisations(id) ON DELETE CASCADE,
    CONSTRAINT schedulers_pkey PRIMARY KEY (id),
    CONSTRAINT schedulers_schedule_interval_hours_check CHECK (schedule_interval_hours = ANY (ARRAY[6, 12, 24, 48])),
    CONSTRAINT unique_domain_org UNIQUE (domain_id, organisation_id)
);
CREATE INDEX idx_schedulers_next_run ON public.schedulers USING btree (next_run_at) WHERE (is_enabled = true);
CREATE INDEX idx_schedulers_organisation ON public.schedulers USING btree (organisation_id);

CREATE TABLE schedctl.audit (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    at timestamp with time zone DEFAULT now() NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    scheduler_id uuid,
    organisation_id uuid,
    domain text,
    changes jsonb DEFAULT '{}'::jsonb NOT NULL,
    reason text,
    source text,
    CONSTRAINT audit_action_check CHECK (action = ANY (ARRAY['create'::text, 'update'::text, 'pause'::text, 'resume'::text, 'delete'::text, 'run'::text, 'skip'::text, 'missed'::text, 'hooks'::text, 'org_create'::text, 'org_rename'::text, 'org_delete'::text])),
    CONSTRAINT audit_pkey PRIMARY KEY (id)
);
CREATE INDEX audit_at ON schedctl.audit USING btree (at DESC, id DESC);
CREATE INDEX audit_org_at ON schedctl.audit USING btree (organisation_id, at DESC, id DESC);
CREATE INDEX audit_scheduler_at ON schedctl.audit USING btree (scheduler_id, at DESC, id DESC);
CREATE INDEX audit_scheduler_runs ON schedctl.audit USING btree (scheduler_id, at DESC) WHERE (action = 'run'::text);
CREATE TRIGGER audit_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON schedctl.audit FOR EACH STATEMENT EXECUTE FUNCTION schedctl.audit_append_only();

-- SEQUENCE schedctl.audit_id_seq: the identity of schedctl.audit.id

CREATE TABLE schedctl.hooks (
    singleton boolean DEFAULT true NOT NULL,
    create_job_schema text,
    create_job_function text,
    cancel_job_schema text,
    cancel_job_function text,
    notify_channel text,
    updated_at timestamp with time zone,
    updated_by text,
    CONSTRAINT hooks_check CHECK ((create_job_schema IS NULL) = (create_job_function IS NULL)),
    CONSTRAINT hooks_check1 CHECK ((cancel_job_schema IS NULL) = (cancel_job_function IS NULL)),
    CONSTRAINT hooks_pkey PRIMARY KEY (singleton),
    CONSTRAINT hooks_singleton_check CHECK (singleton)
);

CREATE TABLE schedctl.legacy_host_objects (
    name text NOT NULL,
    CONSTRAINT legacy_host_objects_name_check CHECK (name = ANY (ARRAY['jobs_scheduler_slot'::text, 'jobs_active_index'::text, 'schedulers_columns'::text])),
    CONSTRAINT legacy_host_objects_pkey PRIMARY KEY (name)
);

CREATE TABLE schedctl.scheduler_settings (
    scheduler_id uuid NOT NULL,
    overlap_policy text DEFAULT 'replace'::text NOT NULL,
    pause_reason text,
    at_time time without time zone,
    time_zone text DEFAULT 'UTC'::text NOT NULL,
    grid_anchor timestamp without time zone,
    spread_seconds integer DEFAULT 0 NOT NULL,
    catchup_window_seconds integer,
    paused_until timestamp with time zone,
    managed_by text,
    CONSTRAINT scheduler_settings_catchup_window_seconds_check CHECK (catchup_window_seconds >= 60),
    CONSTRAINT scheduler_settings_grid_check CHECK ((at_time IS NULL) = (grid_anchor IS NULL)),
    CONSTRAINT scheduler_settings_managed_by_check CHECK (managed_by = 'apply'::text),
    CONSTRAINT scheduler_settings_overlap_policy_check CHECK (overlap_policy = ANY (ARRAY['replace'::text, 'skip'::text, 'allow'::text])),
    CONSTRAINT scheduler_settings_pkey PRIMARY KEY (scheduler_id),
    CONSTRAINT scheduler_settings_spread_seconds_check CHECK (spread_seconds >= 0 AND spread_seconds <= 172800)
);
CREATE INDEX scheduler_settings_paused_until ON schedctl.scheduler_settings USING btree (paused_until) WHERE (paused_until IS NOT NULL);

CREATE TABLE schedctl.served_slots (
    scheduler_id uuid NOT NULL,
    slot timestamp with time zone NOT NULL,
    job_id text NOT NULL,
    CONSTRAINT served_slots_pkey PRIMARY KEY (scheduler_id, slot)
);

CREATE TABLE schedctl.tick_heartbeats (
    host text NOT NULL,
    ticked_at timestamp with time zone NOT NULL,
    ok boolean NOT NULL,
    due integer NOT NULL,
    created integer NOT NULL,
    skipped integer NOT NULL,
    failed integer NOT NULL,
    missed integer NOT NULL,
    message text,
    CONSTRAINT tick_heartbeats_pkey PRIMARY KEY (host)
);

CREATE FUNCTION schedctl.audit_append_only()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog AS $$
BEGIN
    RAISE EXCEPTION 'schedctl.audit is append-only';
END
$$;

CREATE FUNCTION schedctl.grid_index(slot timestamp with time zone, hours integer, anchor timestamp without time zone, zone text, spread interval)
RETURNS bigint
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT floor(extract(epoch FROM ((slot - spread) AT TIME ZONE zone) - anchor)
                 / (hours * 3600))::bigint
$$;

CREATE FUNCTION schedctl.grid_next_index(after timestamp with time zone, hours integer, anchor timestamp without time zone, zone text, spread interval)
RETURNS bigint
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

CREATE FUNCTION schedctl.grid_slot(i bigint, hours integer, anchor timestamp without time zone, zone text, spread interval)
RETURNS timestamp with time zone
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT schedctl.wall_instant(anchor + (i * hours) * interval '1 hour', zone) + spread
$$;

CREATE FUNCTION schedctl.grid_start(start timestamp with time zone, hours integer, at_time time without time zone, zone text, spread interval, OUT first_slot timestamp with time zone, OUT anchor timestamp without time zone)
RETURNS record
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

CREATE FUNCTION schedctl.plan_slot(slot timestamp with time zone, clock timestamp with time zone, created_at timestamp with time zone, hours integer, anchor timestamp without time zone, zone text, spread interval, window_seconds integer, OUT serve timestamp with time zone, OUT missed integer, OUT next_run_at timestamp with time zone)
RETURNS record
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

CREATE FUNCTION schedctl.resume_paused(clock timestamp with time zone, actor text)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE FUNCTION schedctl.spread_offset(scheduler_id uuid, spread_seconds integer)
RETURNS interval
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT make_interval(secs => floor(
        ('x' || left(md5(scheduler_id::text), 8))::bit(32)::bigint::numeric / 4294967296
        * spread_seconds
    ))
$$;

CREATE FUNCTION schedctl.wall_instant(wall timestamp without time zone, zone text)
RETURNS timestamp with time zone
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
