-- What every connection checks and sets.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: preflight
-- Whether schedctl's schema is there, and the host tables whose rows row-level security
-- may hide from the current role (FORCE included): those where it is active and no
-- permissive policy for this role shows every row for every command, or a restrictive
-- one applies.
SELECT to_regclass('schedctl.served_slots') IS NOT NULL AS migrated,
       current_user AS role,
       ARRAY(
           SELECT t.name FROM unnest(ARRAY[
               'public.schedulers', 'public.jobs', 'public.domains', 'public.organisations'
           ]) AS t (name)
           WHERE to_regclass(t.name) IS NOT NULL AND row_security_active(t.name)
             AND (
                 NOT EXISTS (
                     SELECT 1 FROM pg_policy p
                     WHERE p.polrelid = to_regclass(t.name) AND p.polpermissive
                       AND p.polcmd = '*'
                       AND pg_get_expr(p.polqual, p.polrelid) = 'true'
                       AND coalesce(pg_get_expr(p.polwithcheck, p.polrelid), 'true') = 'true'
                       AND (0::oid = ANY (p.polroles) OR EXISTS (
                           SELECT 1 FROM unnest(p.polroles) AS r (oid)
                           WHERE pg_has_role(current_user, r.oid, 'USAGE')
                       ))
                 )
                 OR EXISTS (
                     SELECT 1 FROM pg_policy p
                     WHERE p.polrelid = to_regclass(t.name) AND NOT p.polpermissive
                       AND (0::oid = ANY (p.polroles) OR EXISTS (
                           SELECT 1 FROM unnest(p.polroles) AS r (oid)
                           WHERE pg_has_role(current_user, r.oid, 'USAGE')
                       ))
                 )
             )
       ) AS filtered_tables;

-- name: transaction_settings
-- What every unit of work runs under, for this transaction only: how long a statement waits
-- for a lock held by another session before giving up.
SELECT set_config('lock_timeout', %(lock_timeout)s, true);

-- name: transaction_wrote
-- Whether the current transaction has written anything (it has a transaction id), so that
-- an interrupt from its commit on is held until the command has said what it did.
SELECT txid_current_if_assigned() IS NOT NULL AS wrote;

-- name: backend_pid
-- The server process serving this session (a pooler's client sees another id at connect).
SELECT pg_backend_pid() AS pid;

-- name: privileges_missing
-- The table privileges the current role lacks on a table of the host's or schedctl's schema,
-- named as a "permission denied for table" message names it (without its schema).
SELECT format('%%I.%%I', n.nspname, c.relname) AS name, current_user AS role,
       ARRAY(
           SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p
           WHERE NOT CASE WHEN p = 'DELETE' THEN has_table_privilege(c.oid, p)
                          ELSE has_any_column_privilege(c.oid, p) END
       ) AS missing
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(name)s AND n.nspname IN ('schedctl', 'public')
ORDER BY n.nspname = 'schedctl' DESC
LIMIT 1;
