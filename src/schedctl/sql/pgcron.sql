-- pg_cron (Supabase Cron): `pg-cron install/show/remove`, and the job's latest run for `status`.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: pg_cron_where
-- This database, this role, and pg_cron's version if its extension is created here (it can
-- only be created in pg_cron's own database, cron.database_name).
SELECT current_database() AS database,
       current_user AS current_role,
       (SELECT extversion FROM pg_extension WHERE extname = 'pg_cron') AS version,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser;

-- name: pg_cron_database
-- The database the server runs pg_cron in; NULL when the library is not loaded. Readable by
-- superusers and members of pg_read_all_settings only.
SELECT current_setting('cron.database_name', true) AS cron_database;

-- name: pg_cron_role
-- The role a job would run as: whether it exists, may log in (pg_cron connects as it), is a
-- superuser, and may reach what `CALL schedctl.tick()` needs in this database (the procedure
-- found as a call with no arguments would find it: its parameters all have defaults).
WITH pass AS (
    SELECT p.oid
    FROM pg_proc p
    WHERE p.pronamespace = to_regnamespace('schedctl') AND p.proname = 'tick'
      AND p.prokind = 'p' AND p.pronargs = p.pronargdefaults
    LIMIT 1
)
SELECT r.rolname AS name,
       r.rolcanlogin AS can_login,
       r.rolsuper AS superuser,
       has_database_privilege(r.oid, current_database(), 'CONNECT') AS can_connect,
       has_schema_privilege(r.oid, 'schedctl', 'USAGE') AS schema_usage,
       EXISTS (SELECT 1 FROM pass) AS procedure_exists,
       (SELECT has_function_privilege(r.oid, pass.oid, 'EXECUTE') FROM pass) AS can_execute
FROM pg_roles r
WHERE r.rolname = %(role)s;

-- name: pg_cron_role_exists
-- Whether a role of this name exists.
SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role)s) AS found;

-- name: pg_cron_jobs
-- schedctl's pg_cron jobs of one database, as far as this role may see them (pg_cron shows a
-- role its own jobs; a superuser sees every one).
SELECT jobid, jobname, schedule, command, database, username, active
FROM cron.job
WHERE jobname = %(job_name)s AND database = %(database)s
ORDER BY jobid;

-- name: pg_cron_schedule
-- Schedule (or, under the same name and role, reschedule) a job of this role in this database.
SELECT cron.schedule(%(job_name)s, %(schedule)s, %(command)s) AS jobid;

-- name: pg_cron_schedule_in_database
-- Schedule (or reschedule) a job run as `role` in `database` (superuser, or a granted EXECUTE).
SELECT cron.schedule_in_database(%(job_name)s, %(schedule)s, %(command)s, %(database)s,
                                 %(role)s) AS jobid;

-- name: pg_cron_unschedule
-- Remove one pg_cron job.
SELECT cron.unschedule(%(jobid)s::bigint) AS removed;

-- name: pg_cron_runs
-- The latest runs of the given jobs, newest first, from pg_cron's record.
SELECT runid, jobid, job_pid, database, username, status, return_message, start_time, end_time
FROM cron.job_run_details
WHERE jobid = ANY(%(jobids)s::bigint[])
ORDER BY start_time DESC NULLS FIRST, runid DESC
LIMIT %(limit)s;

-- name: pg_cron_readable
-- Whether this session can read pg_cron's jobs and runs here (the extension is created in this
-- database and the role may use its schema); checked in order, so nothing is asked of a schema
-- that does not exist.
SELECT CASE
           WHEN NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN false
           WHEN NOT has_schema_privilege('cron', 'USAGE') THEN false
           ELSE has_table_privilege('cron.job', 'SELECT')
                AND has_table_privilege('cron.job_run_details', 'SELECT')
       END AS readable;

-- name: pg_cron_last_run
-- The latest finished run of this database's schedctl job, for `status`.
SELECT j.jobname, j.schedule, j.username, j.active,
       r.status, r.return_message, r.start_time, r.end_time
FROM cron.job j
LEFT JOIN LATERAL (
    SELECT status, return_message, start_time, end_time
    FROM cron.job_run_details d
    WHERE d.jobid = j.jobid AND d.status IN ('succeeded', 'failed')
    ORDER BY d.start_time DESC NULLS LAST, d.runid DESC
    LIMIT 1
) r ON true
WHERE j.jobname = %(job_name)s AND j.database = current_database()
ORDER BY r.start_time DESC NULLS LAST
LIMIT 1;
