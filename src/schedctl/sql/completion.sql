-- Shell completion of values read from the database.
-- Each statement under a "-- name: NAME" header (a piece shared by several under
-- "-- fragment: NAME"), with one line saying what it does. Values are %(name)s parameters.

-- name: completion_refs
-- Shell completion of REF: the domains of an organisation's schedulers (by id or name; none
-- given: the only organisation), then their ids, beginning with `prefix`.
WITH chosen AS (
    SELECT o.id FROM public.organisations o
    WHERE o.id::text = %(org)s::text OR lower(o.name) = lower(%(org)s::text)
       OR (%(org)s::text IS NULL AND (SELECT count(*) FROM public.organisations) = 1)
)
(SELECT d.name
 FROM public.schedulers s
 JOIN public.domains d ON d.id = s.domain_id
 WHERE s.organisation_id IN (SELECT id FROM chosen)
   AND starts_with(lower(d.name), lower(%(prefix)s::text))
 ORDER BY d.name
 LIMIT 200)
UNION ALL
(SELECT s.id::text
 FROM public.schedulers s
 WHERE s.organisation_id IN (SELECT id FROM chosen)
   AND %(prefix)s::text <> '' AND starts_with(s.id::text, lower(%(prefix)s::text))
 ORDER BY s.id
 LIMIT 200);

-- name: completion_organisations
-- Shell completion of --org: organisation names beginning with `prefix` (any letter case).
SELECT DISTINCT name FROM public.organisations
WHERE starts_with(lower(name), lower(%(prefix)s::text))
ORDER BY name
LIMIT 200;

-- name: completion_time_zones
-- Shell completion of --time-zone: the server's zone names beginning with `prefix`.
SELECT name FROM pg_timezone_names
WHERE starts_with(lower(name), lower(%(prefix)s::text))
ORDER BY name
LIMIT 500;
