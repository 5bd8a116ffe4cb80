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

-- name: audit_search
-- Audit entries of an organisation (or of all), or of one scheduler in it, newest first,
-- filtered: from `since` and before `until` (each a time, or an age by the database clock),
-- by action, by actor, and by source: apply (a file), tick (slots skipped or missed, and
-- pauses that ran out) or cli (every other change, made by a command).
SELECT a.id, a.at, a.actor, a.action, a.scheduler_id, a.organisation_id, a.domain,
       a.changes, a.reason, now() AS db_now, o.name AS organisation_name, src.source
FROM schedctl.audit a
LEFT JOIN public.organisations o ON o.id = a.organisation_id
CROSS JOIN LATERAL (
    SELECT COALESCE(a.source, CASE
        WHEN a.action IN ('skip', 'missed') THEN 'tick'
        WHEN a.action = 'resume' AND a.reason LIKE 'paused until %%' THEN 'tick'
        ELSE 'cli' END) AS source
) AS src
WHERE (%(organisation_id)s::uuid IS NULL OR a.organisation_id = %(organisation_id)s::uuid)
  AND (%(scheduler_id)s::uuid IS NULL OR a.scheduler_id = %(scheduler_id)s::uuid)
  AND a.at >= COALESCE(%(since_at)s::timestamptz, now() - %(since_ago)s::interval,
                       '-infinity'::timestamptz)
  AND a.at < COALESCE(%(until_at)s::timestamptz, now() - %(until_ago)s::interval,
                      'infinity'::timestamptz)
  AND (%(actions)s::text[] IS NULL OR a.action = ANY (%(actions)s::text[]))
  AND (%(actor)s::text IS NULL OR a.actor = %(actor)s::text)
  AND (%(source)s::text IS NULL OR src.source = %(source)s::text)
ORDER BY a.at DESC, a.id DESC
LIMIT %(limit)s;
