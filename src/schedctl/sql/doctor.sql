-- doctor: what breaks deployments (server, schema, privileges, ticks, clocks).
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: doctor_server
-- The server's version and the role the session runs as.
SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::integer AS version_num,
       current_user AS role;

-- name: doctor_schema
-- Whether schedctl's schema is migrated at all.
SELECT to_regclass('schedctl.served_slots') IS NOT NULL AS migrated;

-- name: doctor_migrations
-- The ids of the migrations yoyo recorded as applied.
SELECT array_agg(migration_id ORDER BY migration_id) AS ids FROM schedctl._yoyo_migration;

-- name: doctor_privileges
-- Whether the current role holds each privilege a group of commands needs (`requirements`:
-- a JSON array of {command, kind: table|column|function, object, col, privilege}); an object
-- that does not exist is a privilege not held.
SELECT r.command, r.kind, r.object, r.col, r.privilege, current_user AS role,
       CASE
           WHEN r.kind = 'table' THEN
               to_regclass(r.object) IS NOT NULL
               AND has_table_privilege(to_regclass(r.object), r.privilege)
           WHEN r.kind = 'column' THEN
               EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = to_regclass(r.object) AND a.attname = r.col
                         AND NOT a.attisdropped)
               AND has_column_privilege(to_regclass(r.object), r.col, r.privilege)
           WHEN r.kind = 'function' THEN
               to_regprocedure(r.object) IS NOT NULL
               AND has_function_privilege(to_regprocedure(r.object), r.privilege)
           ELSE FALSE
       END AS granted
FROM jsonb_to_recordset(%(requirements)s::jsonb) AS r (
    command text, kind text, object text, col text, privilege text
);

-- name: doctor_heartbeats
-- Each host's last tick pass, its outcome and its age by the database clock.
SELECT host, ticked_at, ok, message,
       extract(epoch FROM now() - ticked_at)::float8 AS age_seconds
FROM schedctl.tick_heartbeats
ORDER BY ticked_at DESC;

-- name: doctor_foreign_scheduled_jobs
-- Jobs of the last day marked as scheduled (source_type 'scheduler') that schedctl did not
-- make: no served slot names them and no `run` did: the host's own scheduler loop made them.
SELECT count(*)::integer AS jobs
FROM public.jobs j
WHERE j.source_type = 'scheduler'
  AND j.created_at > now() - interval '1 day'
  AND NOT EXISTS (
      SELECT 1 FROM schedctl.served_slots ss
      WHERE ss.scheduler_id = j.scheduler_id AND ss.job_id = j.id
  )
  AND {made_by_run} IS NOT TRUE;

-- name: doctor_clock
-- The server's clock.
SELECT clock_timestamp() AS now;
