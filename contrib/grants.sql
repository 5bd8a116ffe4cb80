-- A least-privilege role for `schedctl tick`: it may do exactly what one tick pass does,
-- and nothing more. It cannot delete schedulers or jobs, change a scheduler's settings,
-- rewrite the audit trail, create organisations or domains, or change the schema.
--
-- Run it after `schedctl migrate` (and again after any later migration), as the owner of
-- the tables (the account that ran the migration, or a superuser), in the application's
-- database, with the same search_path that `migrate` used:
--
--     psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f contrib/grants.sql
--
-- schedctl_tick is a group role that cannot log in. Give the account cron or the systemd
-- timer uses membership of it, for example:
--
--     CREATE ROLE schedctl_cron LOGIN PASSWORD '...' IN ROLE schedctl_tick;
--     -- or, for an existing login role:  GRANT schedctl_tick TO schedctl_cron;
--
-- and put that account in SCHEDCTL_DATABASE_URL in the tick host's environment file.
-- Running this file again is safe: it revokes the role's privileges on these tables and
-- grants them afresh.
--
-- PostgreSQL 13 and 14 let every role create tables in the public schema; version 15
-- stopped that. This file does not change it, because that would affect every role of
-- the database; to close it there, run `REVOKE CREATE ON SCHEMA public FROM PUBLIC;`.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'schedctl_tick') THEN
        CREATE ROLE schedctl_tick NOLOGIN;
    END IF;
END
$$;

-- Reach the database and the schema schedctl's tables are in.
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO schedctl_tick', current_database());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO schedctl_tick', current_schema());
END
$$;

-- Start from nothing on every table tick touches (column grants are revoked with them).
REVOKE ALL ON schedulers, jobs, domains, organisations, scheduler_audit, tick_heartbeats
    FROM schedctl_tick;

-- Schedulers: read the due ones and lock them (FOR UPDATE needs an UPDATE privilege),
-- then move next_run_at on. No other column may change; no row may be added or deleted.
GRANT SELECT ON schedulers TO schedctl_tick;
GRANT UPDATE (next_run_at, updated_at) ON schedulers TO schedctl_tick;

-- Domains: the name of each due scheduler's domain, for the report. Nothing else.
GRANT SELECT (id, name) ON domains TO schedctl_tick;

-- Jobs: find active jobs of a domain (overlap policy), insert the new job, and cancel the
-- job it replaces. Only the columns tick reads or writes; no DELETE.
GRANT SELECT (id, domain_id, organisation_id, status, scheduler_id, scheduler_slot)
    ON jobs TO schedctl_tick;
GRANT INSERT (
    id, domain_id, organisation_id, status, progress, created_at, concurrency, find_links,
    max_pages, include_paths, exclude_paths, required_workers, source_type, source_detail,
    source_info, scheduler_id, scheduler_slot
) ON jobs TO schedctl_tick;
GRANT UPDATE (status, completed_at) ON jobs TO schedctl_tick;

-- Audit trail: append the slots skipped by the `skip` overlap policy. The id is an
-- identity column, so no sequence privilege is needed; the table refuses UPDATE and
-- DELETE from anyone anyway.
GRANT INSERT (actor, action, scheduler_id, organisation_id, domain, changes, reason)
    ON scheduler_audit TO schedctl_tick;

-- Heartbeat: one row per host, inserted or overwritten by each pass (INSERT ... ON
-- CONFLICT DO UPDATE also needs SELECT).
GRANT SELECT, INSERT, UPDATE ON tick_heartbeats TO schedctl_tick;
