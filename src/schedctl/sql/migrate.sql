-- Migrations: the lock, yoyo's bookkeeping, and the one-time clean-ups of the host's tables.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: schema_version
-- The last migration applied, as yoyo recorded it.
SELECT migration_id FROM schedctl._yoyo_migration ORDER BY applied_at_utc DESC, migration_id DESC LIMIT 1;

-- name: migrate_unlock
-- Release the migration lock (a dropped connection releases it too).
SELECT pg_advisory_unlock(%(key)s);

-- name: yoyo_table_present
-- Whether yoyo has recorded any migration in this database yet.
SELECT to_regclass('schedctl._yoyo_migration') IS NOT NULL AS present;

-- name: yoyo_applied_hashes
-- The hashes of the migrations yoyo has applied.
SELECT migration_hash FROM schedctl._yoyo_migration;

-- name: schema_create
-- schedctl's own schema, where yoyo keeps its bookkeeping too.
CREATE SCHEMA IF NOT EXISTS schedctl;

-- name: yoyo_adopt_legacy
-- schedctl 0.1 kept yoyo's bookkeeping in public: copy its records of schedctl's migrations
-- into schedctl's schema, remove them there, and drop yoyo's tables in public when nothing
-- else is left in them (a host that uses yoyo itself keeps its own records).
DO $$
DECLARE
    ours CONSTANT text[] := ARRAY['0001_host_tables', '0002_schedulers', '0003_schedctl_guarantees'];
    name text;
    found boolean;
BEGIN
    IF to_regclass('public._yoyo_migration') IS NULL
       OR to_regclass('schedctl._yoyo_migration') IS NOT NULL THEN
        RETURN;
    END IF;
    -- Dynamic: the table is not there to plan against on every database.
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM public._yoyo_migration WHERE migration_id = ANY ($1))'
        INTO found USING ours;
    IF NOT found THEN
        RETURN;
    END IF;
    FOREACH name IN ARRAY ARRAY['_yoyo_migration', '_yoyo_log', '_yoyo_version', 'yoyo_lock'] LOOP
        IF to_regclass('public.' || name) IS NOT NULL THEN
            EXECUTE format('CREATE TABLE schedctl.%I (LIKE public.%I INCLUDING ALL)', name, name);
        END IF;
    END LOOP;
    INSERT INTO schedctl._yoyo_migration
    SELECT * FROM public._yoyo_migration WHERE migration_id = ANY (ours);
    DELETE FROM public._yoyo_migration WHERE migration_id = ANY (ours);
    IF to_regclass('public._yoyo_log') IS NOT NULL THEN
        INSERT INTO schedctl._yoyo_log SELECT * FROM public._yoyo_log WHERE migration_id = ANY (ours);
        DELETE FROM public._yoyo_log WHERE migration_id = ANY (ours);
    END IF;
    IF to_regclass('public._yoyo_version') IS NOT NULL THEN
        INSERT INTO schedctl._yoyo_version SELECT * FROM public._yoyo_version;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public._yoyo_migration) THEN
        DROP TABLE IF EXISTS public._yoyo_migration, public._yoyo_log, public._yoyo_version,
            public.yoyo_lock;
    END IF;
END
$$;

-- name: revoke_public_access
-- Nothing of schedctl's schema for PUBLIC, nor for the API roles of a Supabase database
-- (anon, authenticated, service_role), whatever default privileges granted them; the
-- roles that run schedctl get their privileges from contrib/grants.sql.
DO $$
DECLARE
    grantee text;
BEGIN
    FOREACH grantee IN ARRAY ARRAY['PUBLIC', 'anon', 'authenticated', 'service_role'] LOOP
        CONTINUE WHEN grantee <> 'PUBLIC'
            AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grantee);
        IF grantee <> 'PUBLIC' THEN
            grantee := quote_ident(grantee);
        END IF;
        EXECUTE 'REVOKE ALL ON SCHEMA schedctl FROM ' || grantee;
        EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA schedctl FROM ' || grantee;
        EXECUTE 'REVOKE ALL ON ALL SEQUENCES IN SCHEMA schedctl FROM ' || grantee;
        EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA schedctl FROM ' || grantee;
    END LOOP;
END
$$;

-- name: legacy_host_objects
-- What schedctl 0.1 added to the host's tables and is still to be removed.
SELECT name FROM schedctl.legacy_host_objects ORDER BY name;

-- name: legacy_host_object_removed
-- One of 0.1's additions is gone.
DELETE FROM schedctl.legacy_host_objects WHERE name = %(name)s;

-- name: release_jobs_scheduler_slot
-- Drop 0.1's slot column (and its unique index with it) from the host's jobs.
ALTER TABLE public.jobs DROP COLUMN IF EXISTS scheduler_slot;

-- name: release_jobs_active_index
-- Drop 0.1's index of active jobs from the host's jobs (the opt-in index replaces it).
DROP INDEX IF EXISTS public.idx_jobs_active_domain_org;

-- name: release_schedulers_columns
-- Drop 0.1's columns from the host's schedulers (their values are in schedctl's schema).
ALTER TABLE public.schedulers
    DROP COLUMN IF EXISTS overlap_policy,
    DROP COLUMN IF EXISTS pause_reason;

-- name: active_jobs_index_state
-- Whether the host's jobs has an index that finds active jobs by domain and organisation
-- (the opt-in index or one of the host's), whether the opt-in one is left invalid by a
-- build that was killed, and how many rows jobs holds (the planner's estimate; 0 when
-- there is no jobs table yet).
SELECT
    coalesce((
        SELECT greatest(reltuples, 0)::bigint FROM pg_class
        WHERE oid = to_regclass('public.jobs')
    ), 0) AS jobs_estimate,
    EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = to_regclass('public.jobs') AND i.indisvalid
          -- a partial index must hold every active job
          AND (i.indpred IS NULL OR (
              SELECT bool_and(strpos(pg_get_expr(i.indpred, i.indrelid), quote_literal(s)) > 0)
              FROM unnest({active_statuses}) AS s
          ))
          AND (
              SELECT array_agg(a.attname::text ORDER BY k.n)
              FROM unnest(i.indkey) WITH ORDINALITY AS k (attnum, n)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE k.n <= 2
          ) IN ('{{domain_id,organisation_id}}', '{{organisation_id,domain_id}}')
    ) AS present,
    EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indexrelid = to_regclass('public.schedctl_jobs_active_idx') AND NOT i.indisvalid
    ) AS invalid;

-- name: active_jobs_index_drop_invalid
-- Remove the opt-in index a killed build left invalid, without blocking the host's writes.
DROP INDEX CONCURRENTLY IF EXISTS public.schedctl_jobs_active_idx;

-- name: active_jobs_index_create
-- The opt-in index: active jobs by domain and organisation, built without blocking the
-- host's writes (it cannot run inside a transaction).
CREATE INDEX CONCURRENTLY IF NOT EXISTS schedctl_jobs_active_idx
    ON public.jobs (domain_id, organisation_id)
    WHERE status = ANY ({active_statuses});

-- name: migrate_try_lock
-- Take the advisory lock that lets one `migrate` run at a time, if it is free (migrate asks
-- again until SCHEDCTL_LOCK_TIMEOUT has passed: no statement ever waits for it).
SELECT pg_try_advisory_lock(%(key)s) AS locked;

-- name: migrate_lock_holder
-- The session that holds the migrate lock, and since when it is connected (NULL where this
-- role may not see another role's sessions).
SELECT l.pid, a.backend_start AS since
FROM pg_locks l
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = (%(key)s::bigint >> 32)::oid
  AND l.objid = (%(key)s::bigint & 4294967295)::oid
LIMIT 1;

-- name: migrate_session_settings
-- migrate's session runs as long as it needs, whatever statement_timeout the role has; its
-- waits for locks are bounded by lock_timeout instead.
SELECT set_config('statement_timeout', '0', false);

-- name: session_lock_timeout
-- How long each statement of this session waits for a lock ('0': the role's default of none).
SELECT set_config('lock_timeout', %(lock_timeout)s, false);

-- name: jobs_scheduler_id_state
-- Whether migration 0002 added scheduler_id to the host's jobs (its foreign key then bears
-- schedctl's name), whether that foreign key is validated, and whether its index is valid
-- (NULL: there is none).
SELECT
    c.oid IS NOT NULL AS added,
    coalesce(c.convalidated, true) AS validated,
    (SELECT i.indisvalid FROM pg_index i
     WHERE i.indexrelid = to_regclass('public.schedctl_jobs_scheduler_id_idx')) AS index_valid
FROM (SELECT 1) AS one
LEFT JOIN pg_constraint c
    ON c.conrelid = to_regclass('public.jobs') AND c.conname = 'schedctl_jobs_scheduler_id_fkey';

-- name: jobs_scheduler_id_validate
-- Check every row of jobs against the foreign key 0002 added NOT VALID. It takes a SHARE
-- UPDATE EXCLUSIVE lock on jobs, which the host's reads and writes do not wait for.
ALTER TABLE public.jobs VALIDATE CONSTRAINT schedctl_jobs_scheduler_id_fkey;

-- name: jobs_scheduler_id_index_drop_invalid
-- Remove the index a killed build left invalid, without blocking the host's writes.
DROP INDEX CONCURRENTLY IF EXISTS public.schedctl_jobs_scheduler_id_idx;

-- name: jobs_scheduler_id_index_create
-- The index of jobs by scheduler, built without blocking the host's writes (it cannot run
-- inside a transaction).
CREATE INDEX CONCURRENTLY IF NOT EXISTS schedctl_jobs_scheduler_id_idx
    ON public.jobs (scheduler_id) WHERE scheduler_id IS NOT NULL;
