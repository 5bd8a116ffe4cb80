-- Hooks: the host's functions that make, cancel and announce jobs.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: hooks_get
-- The database's hooks (NULL: schedctl's default).
SELECT create_job_schema, create_job_function, cancel_job_schema, cancel_job_function,
       notify_channel, updated_at, updated_by
FROM schedctl.hooks;

-- name: hooks_lock
-- The database's hooks, locked for a change.
SELECT create_job_schema, create_job_function, cancel_job_schema, cancel_job_function,
       notify_channel, updated_at, updated_by
FROM schedctl.hooks
FOR UPDATE;

-- name: hooks_write
-- Store the database's hooks.
UPDATE schedctl.hooks SET
    create_job_schema = %(create_job_schema)s,
    create_job_function = %(create_job_function)s,
    cancel_job_schema = %(cancel_job_schema)s,
    cancel_job_function = %(cancel_job_function)s,
    notify_channel = %(notify_channel)s,
    updated_at = now(),
    updated_by = %(actor)s;

-- name: hook_function_candidates
-- The functions of a schema and name, each with whether it has the form a hook needs
-- (`kind` create_job: (uuid, timestamptz) RETURNS text; cancel_job: (text) RETURNS void)
-- and whether the current role may call it.
SELECT format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
           AS signature,
       coalesce(pg_get_function_result(p.oid), 'nothing (a procedure)') AS result,
       p.prokind = 'f' AND NOT p.proretset
           AND p.proargtypes = CASE %(kind)s
               WHEN 'create_job' THEN '2950 1184'::oidvector  -- uuid, timestamptz
               ELSE '25'::oidvector  -- text
           END
           AND p.prorettype = CASE %(kind)s
               WHEN 'create_job' THEN 'text'::regtype ELSE 'void'::regtype
           END AS fits,
       has_schema_privilege(n.oid, 'USAGE') AND has_function_privilege(p.oid, 'EXECUTE')
           AS executable,
       current_user AS role
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s AND p.proname = %(name)s
ORDER BY fits DESC, signature;
