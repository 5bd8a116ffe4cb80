-- The audit trail: append and read.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: audit_insert_many
-- Append audit entries in order (`ord`), one per element of `rows`, with their source.
INSERT INTO schedctl.audit (
    actor, action, scheduler_id, organisation_id, domain, changes, reason, source
)
SELECT %(actor)s, v.action, v.scheduler_id, v.organisation_id, v.domain, v.changes, v.reason,
       %(source)s
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v (
    ord integer, action text, scheduler_id uuid, organisation_id uuid, domain text,
    changes jsonb, reason text
)
ORDER BY v.ord;

-- name: audit_insert
-- Append one entry to the audit trail.
INSERT INTO schedctl.audit (actor, action, scheduler_id, organisation_id, domain, changes, reason)
VALUES (%(actor)s, %(action)s, %(scheduler_id)s, %(organisation_id)s, %(domain)s,
        %(changes)s, %(reason)s);

-- name: audit_list
-- Audit entries of an organisation (or of all), or of one scheduler in it, newest first,
-- with the organisation's name where it still exists.
SELECT a.id, a.at, a.actor, a.action, a.scheduler_id, a.organisation_id, a.domain,
       a.changes, a.reason, now() AS db_now, o.name AS organisation_name
FROM schedctl.audit a
LEFT JOIN public.organisations o ON o.id = a.organisation_id
WHERE (%(organisation_id)s::uuid IS NULL OR a.organisation_id = %(organisation_id)s::uuid)
  AND (%(scheduler_id)s::uuid IS NULL OR a.scheduler_id = %(scheduler_id)s::uuid)
ORDER BY a.at DESC, a.id DESC
LIMIT %(limit)s;

-- name: audit_find_scheduler
-- The id of a scheduler, deleted or not, that an organisation's audit trail names by id or domain.
SELECT scheduler_id FROM schedctl.audit
WHERE (%(organisation_id)s::uuid IS NULL OR organisation_id = %(organisation_id)s::uuid)
  AND scheduler_id IS NOT NULL
  AND (scheduler_id = %(id)s::uuid OR lower(rtrim(domain, '.')) = ANY (%(spellings)s::text[]))
ORDER BY at DESC, id DESC
LIMIT 1;

-- name: audit_find_prefix
-- The schedulers, deleted or not, of an organisation's audit trail (or of all of it) whose
-- id begins with the given hex digits.
SELECT DISTINCT ON (scheduler_id) scheduler_id AS id, domain
FROM schedctl.audit
WHERE (%(organisation_id)s::uuid IS NULL OR organisation_id = %(organisation_id)s::uuid)
  AND replace(scheduler_id::text, '-', '') LIKE %(prefix)s || '%%'
ORDER BY scheduler_id, at DESC
LIMIT %(limit)s;
