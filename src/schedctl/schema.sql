-- The objects schedctl's migrations make on a new database: everything in the schedctl
-- schema, and the host's tables in public that the migrations create where the host has
-- none. Generated from the server's catalogs; do not edit by hand. After adding a
-- migration, regenerate it (README, "Development"):
--     python -m tests.schema_snapshot --write
-- tests/test_schema_snapshot.py checks that the migrations make exactly this.

CREATE SCHEMA schedctl;

CREATE TYPE schedctl.tick_outcome AS (scheduler_id uuid, job_id text, organisation_id uuid, domain text, slot timestamp with time zone, next_run_at timestamp with time zone, missed integer, skip boolean, error text);

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
    CONSTRAINT schedctl_jobs_scheduler_id_fkey FOREIGN KEY (scheduler_id) REFERENCES public.schedulers(id)
);
CREATE INDEX schedctl_jobs_active_idx ON public.jobs USING btree (domain_id, organisation_id) WHERE (status = ANY (ARRAY['pending'::text, 'initializing'::text, 'running'::text, 'paused'::text]));
CREATE INDEX schedctl_jobs_scheduler_id_idx ON public.jobs USING btree (scheduler_id) WHERE (scheduler_id IS NOT NULL);

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
    create_jobs_schema text,
    create_jobs_function text,
    CONSTRAINT hooks_check CHECK ((create_job_schema IS NULL) = (create_job_function IS NULL)),
    CONSTRAINT hooks_check1 CHECK ((cancel_job_schema IS NULL) = (cancel_job_function IS NULL)),
    CONSTRAINT hooks_create_jobs_check CHECK ((create_jobs_schema IS NULL) = (create_jobs_function IS NULL)),
    CONSTRAINT hooks_one_create_hook CHECK (create_job_function IS NULL OR create_jobs_function IS NULL),
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
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog;
-- body: sha256 6e771554974135f3, 3 lines

CREATE FUNCTION schedctl.grid_index(slot timestamp with time zone, hours integer, anchor timestamp without time zone, zone text, spread interval)
RETURNS bigint
LANGUAGE sql STABLE STRICT PARALLEL SAFE;
-- body: sha256 d5b2234b9e06ebee, 2 lines

CREATE FUNCTION schedctl.grid_next_index(after timestamp with time zone, hours integer, anchor timestamp without time zone, zone text, spread interval)
RETURNS bigint
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE;
-- body: sha256 72e1f86636fc2959, 9 lines

CREATE FUNCTION schedctl.grid_slot(i bigint, hours integer, anchor timestamp without time zone, zone text, spread interval)
RETURNS timestamp with time zone
LANGUAGE sql STABLE STRICT PARALLEL SAFE;
-- body: sha256 a1bf34b5852bb3b8, 1 lines

CREATE FUNCTION schedctl.grid_start(start timestamp with time zone, hours integer, at_time time without time zone, zone text, spread interval, OUT first_slot timestamp with time zone, OUT anchor timestamp without time zone)
RETURNS record
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE;
-- body: sha256 cff4fe56eef8b152, 9 lines

CREATE FUNCTION schedctl.make_jobs(ids uuid[], clock timestamp with time zone, actor text, dry_run boolean DEFAULT false, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone)
RETURNS SETOF schedctl.tick_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE;
-- body: sha256 f61c71d01abc2ef2, 245 lines

CREATE FUNCTION schedctl.notify_jobs(job_ids text[])
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE;
-- body: sha256 90b66800e59db3ea, 22 lines

CREATE FUNCTION schedctl.plan_slot(slot timestamp with time zone, clock timestamp with time zone, created_at timestamp with time zone, hours integer, anchor timestamp without time zone, zone text, spread interval, window_seconds integer, OUT serve timestamp with time zone, OUT missed integer, OUT next_run_at timestamp with time zone)
RETURNS record
LANGUAGE plpgsql STABLE PARALLEL SAFE;
-- body: sha256 3ebe57f129443852, 50 lines

CREATE FUNCTION schedctl.resume_paused(clock timestamp with time zone, actor text)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
-- body: sha256 652d36a248da4f2e, 42 lines

CREATE FUNCTION schedctl.rfc3339(moment timestamp with time zone)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE;
-- body: sha256 8febdeb98b023d94, 2 lines

CREATE FUNCTION schedctl.row_error(sqlstate text, context text)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL UNSAFE;
-- body: sha256 d03d30995dac7870, 27 lines

CREATE FUNCTION schedctl.run_job(scheduler_id uuid, actor text)
RETURNS SETOF schedctl.tick_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE;
-- body: sha256 ad187b0e14b171c8, 10 lines

CREATE FUNCTION schedctl.spread_offset(scheduler_id uuid, spread_seconds integer)
RETURNS interval
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE;
-- body: sha256 749e31d68e7205bd, 4 lines

CREATE PROCEDURE schedctl.tick(IN host text DEFAULT 'pg_cron'::text, IN batch_size integer DEFAULT 1000, IN max_batch_size integer DEFAULT 2000)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE;
-- body: sha256 910948a2a7cb9892, 46 lines

CREATE FUNCTION schedctl.tick_batch(batch integer, exclude uuid[] DEFAULT '{}'::uuid[], clock timestamp with time zone DEFAULT NULL::timestamp with time zone, actor text DEFAULT 'tick'::text, dry_run boolean DEFAULT false, lock_timeout text DEFAULT NULL::text)
RETURNS SETOF schedctl.tick_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE;
-- body: sha256 809881e72b862977, 57 lines

CREATE FUNCTION schedctl.wall_instant(wall timestamp without time zone, zone text)
RETURNS timestamp with time zone
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE;
-- body: sha256 14bb814fb0298ee4, 36 lines
