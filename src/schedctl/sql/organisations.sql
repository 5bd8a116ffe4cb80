-- Organisations: create, find, rename, delete.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: org_insert
-- Create an organisation.
INSERT INTO public.organisations (name) VALUES (%(name)s)
RETURNING id, name, created_at, 0 AS schedulers;

-- name: org_list
-- Every organisation with its number of schedulers, by name.
SELECT o.id, o.name, o.created_at,
       (SELECT count(*) FROM public.schedulers s WHERE s.organisation_id = o.id) AS schedulers
FROM public.organisations o
ORDER BY o.name, o.id;

-- name: org_find
-- Organisations whose id is the given reference or whose name is, ignoring letter case: the
-- id first, then names written exactly so (3 tell "one exact name among several" apart).
SELECT id, name, created_at FROM public.organisations
WHERE id = %(id)s::uuid OR lower(name) = lower(%(name)s)
ORDER BY (id = %(id)s::uuid) DESC NULLS LAST, (name = %(name)s) DESC, id
LIMIT 3;

-- name: org_any_two
-- Up to two organisations, to tell "none", "exactly one" and "several" apart.
SELECT id, name, created_at FROM public.organisations ORDER BY id LIMIT 2;

-- name: org_name_lock
-- Serialise schedctl's transactions that give an organisation this name (any letter case),
-- until the caller's transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('schedctl.organisation_name:' || lower(%(name)s), 0));

-- name: org_name_taken
-- An organisation other than `keep` whose name is this one, ignoring letter case.
SELECT id, name FROM public.organisations
WHERE lower(name) = lower(%(name)s) AND (%(keep)s::uuid IS NULL OR id <> %(keep)s::uuid)
ORDER BY id
LIMIT 1;

-- name: org_names
-- Every organisation's name, for a "did you mean".
SELECT name FROM public.organisations ORDER BY name;

-- name: org_lock
-- Lock an organisation's row for a rename or a delete.
SELECT id, name, created_at FROM public.organisations WHERE id = %(id)s FOR UPDATE;

-- name: org_rename
-- Give an organisation a new name.
UPDATE public.organisations o SET name = %(name)s, updated_at = now()
WHERE o.id = %(id)s
RETURNING o.id, o.name, o.created_at,
          (SELECT count(*) FROM public.schedulers s WHERE s.organisation_id = o.id) AS schedulers;

-- name: org_usage
-- How many schedulers and jobs an organisation has.
SELECT (SELECT count(*) FROM public.schedulers WHERE organisation_id = %(id)s) AS schedulers,
       (SELECT count(*) FROM public.jobs WHERE organisation_id = %(id)s) AS jobs;

-- name: org_audit_schedulers_deleted
-- An audit entry for every scheduler of an organisation about to be deleted with it.
INSERT INTO schedctl.audit (actor, action, scheduler_id, organisation_id, domain, changes, reason)
SELECT %(actor)s, 'delete', s.id, s.organisation_id, d.name, '{}'::jsonb,
       'its organisation was deleted'
FROM public.schedulers s
JOIN public.domains d ON d.id = s.domain_id
WHERE s.organisation_id = %(id)s;

-- name: org_delete
-- Delete an organisation (the host's foreign keys decide what goes with it).
DELETE FROM public.organisations WHERE id = %(id)s;
