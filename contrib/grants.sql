-- Least-privilege roles for schedctl, and the commands each may run (a test runs each of
-- them as a member of each role):
--   schedctl_tick     may do exactly what one `tick` pass does, and nothing more. It cannot
--                     delete schedulers or jobs, change a scheduler's settings, rewrite the
--                     audit trail, create organisations or domains, or change the schema.
--   schedctl_tick runs: tick, tick --dry-run
--   schedctl_monitor  reads, and writes nothing: what monitoring and a look around need.
--   schedctl_monitor runs: status, list, show, history, log, org list, hooks show, export
--   schedctl_operator may run every command but `migrate`: it changes schedulers,
--                     organisations, domains, jobs (a `run`, a replaced job) and hooks, but
--                     not the schema, and it cannot rewrite the audit trail.
--   schedctl_operator runs: status, list, show, history, log, org, hooks, export, tick, create, update, pause, resume, run, apply, delete
--
-- Run it after `schedctl migrate` (and again after any later migration), as the owner of
-- the tables (the account that ran the migration, or a superuser), in the application's
-- database:
--
--     psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f contrib/grants.sql
--
-- All three are group roles that cannot log in. Give the account cron or the systemd timer
-- uses membership of one, for example:
--
--     CREATE ROLE schedctl_cron LOGIN PASSWORD '...' IN ROLE schedctl_tick;
--     -- or, for an existing login role:  GRANT schedctl_tick TO schedctl_cron;
--
-- and put that account in SCHEDCTL_DATABASE_URL in the tick host's environment file.
-- Running this file again is safe: it revokes the roles' privileges on these tables and
-- grants them afresh.
--
-- Row-level security (Supabase and other hosts that protect their tables with policies):
-- schedctl refuses to run (exit 5, naming the table) when policies may hide rows of
-- schedulers, jobs, domains or organisations from its role, because it would then act on
-- some rows alone and report all was well. Either
--   * give the LOGIN role itself BYPASSRLS (PostgreSQL does not pass it on through role
--     membership, so granting it to schedctl_tick is not enough):
--         ALTER ROLE schedctl_cron BYPASSRLS;
--     (on Supabase, the service_role has it; a role you create may need the dashboard's
--     SQL editor, run as postgres), or
--   * let the policies show these roles every row: uncomment the block at the end.
--
-- schedctl's own tables live in the schema `schedctl`, where nothing is granted to
-- anyone else (not PUBLIC, not Supabase's anon and authenticated roles): `migrate`
-- revokes whatever default privileges granted there.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'schedctl_tick') THEN
        CREATE ROLE schedctl_tick NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'schedctl_monitor') THEN
        CREATE ROLE schedctl_monitor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'schedctl_operator') THEN
        CREATE ROLE schedctl_operator NOLOGIN;
    END IF;
END
$$;

-- Reach the database, the host's schema and schedctl's.
DO $$
BEGIN
    EXECUTE format(
        'GRANT CONNECT ON DATABASE %I TO schedctl_tick, schedctl_monitor, schedctl_operator',
        current_database());
END
$$;
GRANT USAGE ON SCHEMA public, schedctl TO schedctl_tick, schedctl_monitor, schedctl_operator;

-- Start from nothing on every table they touch (column grants are revoked with them).
REVOKE ALL ON public.schedulers, public.jobs, public.domains, public.organisations,
    schedctl.scheduler_settings, schedctl.served_slots, schedctl.audit,
    schedctl.tick_heartbeats, schedctl._yoyo_migration, schedctl.hooks
    FROM schedctl_tick, schedctl_monitor, schedctl_operator;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA schedctl FROM schedctl_tick, schedctl_monitor, schedctl_operator;

-- ---------------------------------------------------------------- schedctl_tick

-- Schedulers: read the due ones and lock them (FOR UPDATE needs an UPDATE privilege),
-- then move next_run_at on. No other column may change; no row may be added or deleted.
GRANT SELECT ON public.schedulers TO schedctl_tick;
GRANT UPDATE (next_run_at, updated_at) ON public.schedulers TO schedctl_tick;

-- Domains: the name of each due scheduler's domain, for the report. Nothing else.
GRANT SELECT (id, name) ON public.domains TO schedctl_tick;

-- Jobs: find active jobs of a domain (overlap policy), insert the new job, and cancel the
-- job it replaces. Only the columns tick reads or writes; no DELETE.
GRANT SELECT (id, domain_id, organisation_id, status, scheduler_id)
    ON public.jobs TO schedctl_tick;
GRANT INSERT (
    id, domain_id, organisation_id, status, progress, created_at, concurrency, find_links,
    max_pages, include_paths, exclude_paths, required_workers, source_type, source_detail,
    source_info, scheduler_id
) ON public.jobs TO schedctl_tick;
GRANT UPDATE (status, completed_at) ON public.jobs TO schedctl_tick;

-- schedctl's settings of each scheduler (overlap policy, time zone, spread, catch-up window),
-- read only.
GRANT SELECT ON schedctl.scheduler_settings TO schedctl_tick;

-- The slot arithmetic of wall-clock grids, spread and catch-up windows.
GRANT EXECUTE ON FUNCTION
    schedctl.spread_offset(uuid, integer),
    schedctl.wall_instant(timestamp, text),
    schedctl.grid_slot(bigint, integer, timestamp, text, interval),
    schedctl.grid_next_index(timestamptz, integer, timestamp, text, interval),
    schedctl.grid_index(timestamptz, integer, timestamp, text, interval),
    schedctl.plan_slot(timestamptz, timestamptz, timestamptz, integer, timestamp, text,
                       interval, integer)
    TO schedctl_tick;

-- Resume the schedulers whose `pause --until` has come: a function that runs with its owner's
-- rights and does only that, so the role itself cannot enable or disable a scheduler.
GRANT EXECUTE ON FUNCTION schedctl.resume_paused(timestamptz, text) TO schedctl_tick;

-- The record of served slots: read (a slot already served is not served again) and add.
GRANT SELECT, INSERT ON schedctl.served_slots TO schedctl_tick;

-- Audit trail: append the slots skipped by the `skip` overlap policy. The id is an
-- identity column, so no sequence privilege is needed; the table refuses UPDATE and
-- DELETE from anyone anyway.
GRANT INSERT (actor, action, scheduler_id, organisation_id, domain, changes, reason)
    ON schedctl.audit TO schedctl_tick;

-- The database's hooks (which functions make and cancel jobs, which channel to notify):
-- read at the start of each pass. Changing them is for operators (`schedctl hooks set`).
-- The hook functions are the host's: grant this role EXECUTE on them (contrib/hooks/
-- first-task.sql does for its example), and what they write, unless they are SECURITY
-- DEFINER.
GRANT SELECT ON schedctl.hooks TO schedctl_tick;

-- Heartbeat: one row per host, inserted or overwritten by each pass (INSERT ... ON
-- CONFLICT DO UPDATE also needs SELECT).
GRANT SELECT, INSERT, UPDATE ON schedctl.tick_heartbeats TO schedctl_tick;

-- ---------------------------------------------------------------- schedctl_monitor

-- `status` and `list`: the organisation to report on, its schedulers with their domains
-- and settings, the last tick of each host, and the schema version.
GRANT SELECT (id, name, created_at) ON public.organisations TO schedctl_monitor;
GRANT SELECT ON public.schedulers TO schedctl_monitor;
GRANT SELECT (id, name) ON public.domains TO schedctl_monitor;
GRANT SELECT ON schedctl.scheduler_settings, schedctl.tick_heartbeats,
    schedctl._yoyo_migration TO schedctl_monitor;
-- `list`'s last run: the newest served slot and `run` of each scheduler, and that job's
-- status and time.
GRANT SELECT ON schedctl.served_slots TO schedctl_monitor;
-- `log`: the whole audit trail.
GRANT SELECT ON schedctl.audit TO schedctl_monitor;
-- `show`'s last job and `history`: the columns of a job as they print it.
GRANT SELECT (id, scheduler_id, domain_id, organisation_id, status, progress, created_at,
              started_at, completed_at, total_tasks, completed_tasks, failed_tasks,
              skipped_tasks, source_info)
    ON public.jobs TO schedctl_monitor;
-- `hooks show`.
GRANT SELECT ON schedctl.hooks TO schedctl_monitor;
-- `show`'s next runs of a scheduler in a time zone or with a spread: the slot arithmetic
-- (computations only; not resume_paused, which writes).
GRANT EXECUTE ON FUNCTION
    schedctl.spread_offset(uuid, integer),
    schedctl.wall_instant(timestamp, text),
    schedctl.grid_slot(bigint, integer, timestamp, text, interval),
    schedctl.grid_next_index(timestamptz, integer, timestamp, text, interval),
    schedctl.grid_index(timestamptz, integer, timestamp, text, interval)
    TO schedctl_monitor;

-- ---------------------------------------------------------------- schedctl_operator

-- The host's tables and schedctl's settings, served slots, heartbeats and hooks: read and
-- write (create, update, pause, resume, delete, run, apply, org, hooks set and clear, tick).
GRANT SELECT, INSERT, UPDATE, DELETE ON public.schedulers, public.jobs, public.domains,
    public.organisations, schedctl.scheduler_settings, schedctl.served_slots,
    schedctl.tick_heartbeats, schedctl.hooks TO schedctl_operator;
-- The sequence behind domains' serial id, for the domains `create` and `apply` add.
DO $$
DECLARE
    seq text := pg_get_serial_sequence('public.domains', 'id');
BEGIN
    IF seq IS NOT NULL THEN
        EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO schedctl_operator', seq);
    END IF;
END
$$;
-- The audit trail: read and append; the table refuses UPDATE and DELETE from anyone.
GRANT SELECT, INSERT ON schedctl.audit TO schedctl_operator;
-- The schema version (`status`).
GRANT SELECT ON schedctl._yoyo_migration TO schedctl_operator;
-- Every function of the schema: the slot arithmetic, and resume_paused.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA schedctl TO schedctl_operator;

-- ---------------------------------------------------------------- row-level security
-- Policies that show schedctl's roles every row of the host's tables, for a host that
-- protects them with row-level security and cannot give the login role BYPASSRLS.
-- Uncomment to use (DROP POLICY IF EXISTS first makes running the file again safe).
--
-- DROP POLICY IF EXISTS schedctl_all ON public.schedulers;
-- CREATE POLICY schedctl_all ON public.schedulers TO schedctl_tick, schedctl_monitor, schedctl_operator
--     USING (true) WITH CHECK (true);
-- DROP POLICY IF EXISTS schedctl_all ON public.jobs;
-- CREATE POLICY schedctl_all ON public.jobs TO schedctl_tick, schedctl_monitor, schedctl_operator
--     USING (true) WITH CHECK (true);
-- DROP POLICY IF EXISTS schedctl_all ON public.domains;
-- CREATE POLICY schedctl_all ON public.domains TO schedctl_tick, schedctl_monitor, schedctl_operator
--     USING (true) WITH CHECK (true);
-- DROP POLICY IF EXISTS schedctl_all ON public.organisations;
-- CREATE POLICY schedctl_all ON public.organisations TO schedctl_tick, schedctl_monitor, schedctl_operator
--     USING (true) WITH CHECK (true);
