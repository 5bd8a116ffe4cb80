"""The contract on a realistic host (SPEC §7): a Supabase-like database with row-level security,
API roles and default privileges, triggers on job status changes, domains stored as typed, a
`schedulers` table and a `jobs.scheduler_id` without a delete rule that the host made itself,
and years of job history. schedctl is set up on it as the README and contrib/grants.sql say and
every command is run through the roles an operator would make: the owner migrates, an operator
manages schedulers, the tick role ticks, the monitor role watches.

The history here is a few thousand jobs, to keep the tests fast; bench/bench_host.py runs tick
against the same host with 2,000,000."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import (
    HEAD_MIGRATION,
    JOB_KEYS,
    LIST_KEYS,
    SCHEDULER_KEYS,
    Result,
    as_uri,
    assert_error,
    messages,
    parse_time,
    run_cli,
    run_cli_subprocess,
)
from tests.realistic_host import History, add_history, load_realistic_host

Conn = psycopg.Connection[tuple[Any, ...]]
Run = Callable[..., Result]

GRANTS = Path(__file__).resolve().parents[1] / "contrib" / "grants.sql"
HOST_TABLES = ("schedulers", "jobs", "domains", "organisations")
API_ROLES = ("anon", "authenticated", "service_role")
ACTIVE = ("pending", "initializing", "running", "paused")
FINISHED = ("completed", "failed", "cancelled")

# Modest history: 40 schedulers in 4 organisations, 75 finished jobs each (every 10th started
# by hand from the dashboard, with no scheduler), 24 schedulers due, half of them with the
# previous crawl still active.
SCHEDULERS, JOBS_PER_SCHEDULER, DUE, ORGANISATIONS = 40, 75, 24, 4

TICK_JOB_KEYS = {"scheduler_id", "job_id", "organisation_id", "domain", "slot", "next_run_at"}


# ---------------------------------------------------------------- the host


@dataclass
class Host:
    url: str  # the owner's: the role that made the host's tables
    admin: Conn
    history: History


@pytest.fixture
def host(empty_database_url: str) -> Iterator[Host]:
    """The realistic host with its history, before schedctl has ever run on it."""
    load_realistic_host(empty_database_url)
    history = add_history(
        empty_database_url,
        schedulers=SCHEDULERS,
        jobs_per_scheduler=JOBS_PER_SCHEDULER,
        due=DUE,
        organisations=ORGANISATIONS,
        active_fraction=0.5,
    )
    with psycopg.connect(empty_database_url, autocommit=True) as admin:
        yield Host(empty_database_url, admin, history)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Run:
    """schedctl in this process, connected with the URL given first: run(url, "list")."""

    def invoke(url: str, *args: str) -> Result:
        monkeypatch.setenv("SCHEDCTL_DATABASE_URL", url)
        return run_cli(list(args))

    return invoke


@pytest.fixture
def migrated(host: Host, run: Run) -> Host:
    """The host after `schedctl migrate`, run by the tables' owner."""
    result = run(host.url, "migrate")
    assert result.code == 0, result.stderr
    return host


# ---------------------------------------------------------------- roles, as grants.sql makes them


@dataclass
class Roles:
    """grants.sql's two group roles and a login role for each kind of user, named for this
    test (roles are server-wide, other suites make their own)."""

    tick_group: str
    monitor_group: str
    tick: str
    monitor: str
    operator: str
    urls: dict[str, str]


def role_url(database_url: str, login: str) -> str:
    params = conninfo_to_dict(database_url) | {"user": login, "password": login}
    return as_uri(" ".join(f"{key}={value}" for key, value in params.items()))


def grants_script(roles: Roles, *, with_policies: bool = False) -> str:
    """contrib/grants.sql for this test's group roles; with its block of policies switched on
    (the leading `-- ` of those lines stripped) when asked."""
    text = GRANTS.read_text()
    if with_policies:
        lines = text.splitlines()
        header = next(
            i for i, line in enumerate(lines) if re.match(r"^-- -+ row-level security", line)
        )
        switched = 0
        for i in range(header + 1, len(lines)):
            if re.match(r"^-- (DROP POLICY|CREATE POLICY|\s+USING)", lines[i]):
                lines[i] = lines[i][len("-- ") :]
                switched += 1
        assert switched == 3 * len(HOST_TABLES), switched
        text = "\n".join(lines) + "\n"
    text = text.replace("schedctl_tick", roles.tick_group)
    return text.replace("schedctl_monitor", roles.monitor_group)


# What an operator's login role is granted here (contrib/grants.sql has no operator role): the
# rows of the host's tables that schedctl's commands read and write, and schedctl's own tables,
# with no DDL, no TRUNCATE, no DELETE of jobs, domains or organisations, and nothing on the
# host's other tables. BYPASSRLS on the login role itself, as grants.sql says.
OPERATOR_GRANTS = """
GRANT USAGE ON SCHEMA public, schedctl TO {role};
GRANT SELECT, INSERT ON public.organisations TO {role};
GRANT SELECT, INSERT ON public.domains TO {role};
GRANT USAGE ON SEQUENCE public.domains_id_seq TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON public.schedulers TO {role};
GRANT SELECT, INSERT, UPDATE ON public.jobs TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON schedctl.scheduler_settings TO {role};
GRANT SELECT, DELETE ON schedctl.served_slots TO {role};
GRANT SELECT, INSERT ON schedctl.audit TO {role};
GRANT SELECT ON schedctl.tick_heartbeats, schedctl._yoyo_migration TO {role};
GRANT SELECT ON schedctl.hooks TO {role};
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA schedctl TO {role};
ALTER ROLE {role} BYPASSRLS;
"""


def create_login(admin: Conn, name: str, group: str | None = None) -> None:
    """CREATE ROLE name LOGIN PASSWORD '...' [IN ROLE group], as the README shows."""
    statement = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
        sql.Identifier(name), sql.Literal(name)
    )
    if group is not None:
        statement = sql.SQL("{} IN ROLE {}").format(statement, sql.Identifier(group))
    admin.execute(statement)


def bypass_rls(admin: Conn, login: str) -> None:
    admin.execute(sql.SQL("ALTER ROLE {} BYPASSRLS").format(sql.Identifier(login)))


def drop_roles(admin: Conn, *names: str) -> None:
    for name in names:
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone():
            role = sql.Identifier(name)
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


@pytest.fixture
def roles(migrated: Host) -> Iterator[Roles]:
    """grants.sql applied by the owner after `migrate`; a tick login in schedctl_tick and a
    monitor login in schedctl_monitor (neither with BYPASSRLS yet), and an operator login with
    OPERATOR_GRANTS."""
    suffix = uuid.uuid4().hex[:10]
    names = {
        "tick_group": f"schedctl_tick_{suffix}",
        "monitor_group": f"schedctl_monitor_{suffix}",
        "tick": f"schedctl_cron_{suffix}",
        "monitor": f"schedctl_watch_{suffix}",
        "operator": f"schedctl_ops_{suffix}",
    }
    made = Roles(**names, urls={key: role_url(migrated.url, name) for key, name in names.items()})
    admin = migrated.admin
    try:
        admin.execute(grants_script(made))
        create_login(admin, made.tick, made.tick_group)
        create_login(admin, made.monitor, made.monitor_group)
        create_login(admin, made.operator)
        admin.execute(sql.SQL(OPERATOR_GRANTS).format(role=sql.Identifier(made.operator)))
        yield made
    finally:
        drop_roles(admin, made.tick, made.monitor, made.operator)
        drop_roles(admin, made.tick_group, made.monitor_group)


# ---------------------------------------------------------------- snapshots


# The definition of everything outside schedctl's schema (the host's schemas public and auth),
# from the catalog, in forms that depend neither on the server's version nor on statistics.
_CATALOG = {
    "schemas": """
        SELECT nspname, pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace
        WHERE nspname IN ('public', 'auth') ORDER BY 1
    """,
    "relations": """
        SELECT c.oid::regclass::text, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text,
               c.relrowsecurity, c.relforcerowsecurity, c.reloptions::text, c.relreplident
        FROM pg_class c WHERE c.relnamespace IN ('public'::regnamespace, 'auth'::regnamespace)
        ORDER BY 1
    """,
    "columns": """
        SELECT a.attrelid::regclass::text, a.attnum, a.attname,
               format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attisdropped,
               a.attacl::text
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0
        ORDER BY 1, 2
    """,
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid),
               condeferrable, condeferred, convalidated
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
           OR confrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
        ORDER BY 1, 2
    """,
    "indexes": """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisvalid,
               i.indisunique, i.indisprimary
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        WHERE c.relnamespace = 'public'::regnamespace
        ORDER BY 1
    """,
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'public'::regnamespace
        ORDER BY 1, 2
    """,
    "policies": """
        SELECT p.polrelid::regclass::text, p.polname, p.polcmd, p.polpermissive,
               p.polroles::regrole[]::text, pg_get_expr(p.polqual, p.polrelid),
               pg_get_expr(p.polwithcheck, p.polrelid)
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.relnamespace = 'public'::regnamespace
        ORDER BY 1, 2
    """,
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.proacl::text,
               md5(p.prosrc), p.prosecdef, p.proconfig::text
        FROM pg_proc p WHERE p.pronamespace IN ('public'::regnamespace, 'auth'::regnamespace)
        ORDER BY 1
    """,
    "default_privileges": """
        SELECT pg_get_userbyid(defaclrole), defaclnamespace::regnamespace::text, defaclobjtype,
               defaclacl::text
        FROM pg_default_acl ORDER BY 1, 2, 3
    """,
    "api_roles": """
        SELECT rolname, rolsuper, rolinherit, rolcanlogin, rolbypassrls,
               ARRAY(SELECT roleid::regrole::text FROM pg_auth_members
                     WHERE member = r.oid ORDER BY 1)::text
        FROM pg_roles r WHERE rolname IN ('anon', 'authenticated', 'service_role')
        ORDER BY 1
    """,
}


def catalog_snapshot(conn: Conn) -> dict[str, list[tuple[Any, ...]]]:
    """The definition of the host's schemas, tables, columns, keys, indexes, triggers,
    policies, functions, privileges and API roles."""
    return {name: conn.execute(query).fetchall() for name, query in _CATALOG.items()}


def contents(conn: Conn, *schemas: str) -> dict[str, tuple[Any, ...]]:
    """Row count and a digest of the rows of every table in the given schemas."""
    tables = conn.execute(
        "SELECT oid::regclass::text FROM pg_class WHERE relkind = 'r' "
        "AND relnamespace::regnamespace::text = ANY (%s) ORDER BY 1",
        [list(schemas)],
    ).fetchall()
    out: dict[str, tuple[Any, ...]] = {}
    for (table,) in tables:
        row = conn.execute(
            sql.SQL(
                "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} t"
            ).format(sql.SQL(table))
        ).fetchone()
        assert row is not None
        out[table] = tuple(row)
    return out


def everything(conn: Conn) -> dict[str, tuple[Any, ...]]:
    """The rows of every table of the host's and of schedctl's."""
    return contents(conn, "public", "auth", "schedctl")


# ---------------------------------------------------------------- reading the host


def scalar(conn: Conn, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


def org_without(conn: Conn, *domains: str, busy: bool = False) -> tuple[str, str]:
    """The id and name of an organisation of the host's that has no scheduler for any of
    the host's rows named `domains` (and, if `busy`, one whose previous crawl is still
    active)."""
    row = conn.execute(
        """
        SELECT o.id::text, o.name FROM public.organisations o
        WHERE NOT EXISTS (
            SELECT 1 FROM public.schedulers s JOIN public.domains d ON d.id = s.domain_id
            WHERE s.organisation_id = o.id AND d.name = ANY (%s)
        )
        AND (NOT %s OR EXISTS (
            SELECT 1 FROM public.schedulers s
            JOIN public.jobs j
              ON j.domain_id = s.domain_id AND j.organisation_id = s.organisation_id
            WHERE s.organisation_id = o.id AND j.status = ANY (%s)
        ))
        ORDER BY o.name LIMIT 1
        """,
        [list(domains), busy, list(ACTIVE)],
    ).fetchone()
    assert row is not None, domains
    return str(row[0]), str(row[1])


@dataclass
class Due:
    """A due scheduler before the tick, and the active jobs of its domain and organisation."""

    id: str
    domain_id: int
    organisation_id: str
    slot: datetime
    hours: int
    missed: int
    template: tuple[Any, ...]
    active: dict[str, tuple[str, datetime | None]]  # job id -> (status, started_at)


def due_schedulers(conn: Conn) -> dict[str, Due]:
    rows = conn.execute(
        """
        SELECT s.id::text, s.domain_id, s.organisation_id::text, s.next_run_at,
               s.schedule_interval_hours,
               floor(extract(epoch FROM now() - s.next_run_at)
                     / (s.schedule_interval_hours * 3600))::int,
               s.concurrency, s.find_links, s.max_pages, s.include_paths, s.exclude_paths,
               s.required_workers
        FROM public.schedulers s WHERE s.is_enabled AND s.next_run_at <= now()
        """
    ).fetchall()
    found: dict[str, Due] = {}
    for sid, domain_id, org, slot, hours, missed, *template in rows:
        active = conn.execute(
            "SELECT id, status, started_at FROM public.jobs "
            "WHERE domain_id = %s AND organisation_id = %s AND status = ANY (%s)",
            [domain_id, org, list(ACTIVE)],
        ).fetchall()
        found[sid] = Due(
            sid,
            domain_id,
            org,
            slot,
            hours,
            missed,
            tuple(template),
            {job: (status, started) for job, status, started in active},
        )
    return found


def insert_host_scheduler(conn: Conn, org_id: str, typed_domain: str) -> tuple[str, str]:
    """What the host's own code does after schedctl is there: a domain stored as typed, a
    scheduler with the seed's columns only (due a minute ago), and the host's running job of
    that domain. Returns the scheduler's and the running job's ids."""
    scheduler_id = scalar(
        conn,
        """
        WITH domain AS (INSERT INTO public.domains (name) VALUES (%s) RETURNING id)
        INSERT INTO public.schedulers (domain_id, organisation_id, schedule_interval_hours,
                                       next_run_at)
        SELECT id, %s, 12, now() - interval '1 minute' FROM domain
        RETURNING id::text
        """,
        [typed_domain, org_id],
    )
    job_id = scalar(
        conn,
        """
        INSERT INTO public.jobs (id, domain_id, organisation_id, status, progress, created_at,
                                 concurrency, find_links, max_pages, include_paths,
                                 exclude_paths, source_type, user_id)
        SELECT gen_random_uuid()::text, domain_id, organisation_id, 'running', 12.5,
               now() - interval '10 minutes', 20, TRUE, 0, 'null', 'null', 'dashboard',
               gen_random_uuid()
        FROM public.schedulers WHERE id = %s
        RETURNING id
        """,
        [scheduler_id],
    )
    return str(scheduler_id), str(job_id)


# ---------------------------------------------------------------- 1. migrate, as the owner


def test_migrate_as_the_owner_leaves_the_hosts_tables_as_they_were(host: Host, run: Run) -> None:
    definitions = catalog_snapshot(host.admin)
    rows = contents(host.admin, "public", "auth")

    result = run(host.url, "migrate", "--json")
    assert result.code == 0, result.stderr
    assert result.stderr == ""  # a few thousand jobs: no advice about the opt-in index
    report = json.loads(result.stdout)
    assert report["migrations"][-1] == HEAD_MIGRATION
    assert report["removed_from_host_tables"] == []
    assert report["active_jobs_index_created"] is False
    assert scalar(host.admin, "SELECT to_regclass('schedctl.served_slots') IS NOT NULL") is True

    assert catalog_snapshot(host.admin) == definitions
    assert contents(host.admin, "public", "auth") == rows
    # In particular: the host's own schedulers table and its scheduler_id key with no delete rule.
    assert (
        scalar(
            host.admin,
            "SELECT confdeltype FROM pg_constraint WHERE conrelid = 'public.jobs'::regclass "
            "AND confrelid = 'public.schedulers'::regclass",
        )
        == "a"
    )

    again = run(host.url, "migrate")
    assert (again.code, again.stdout) == (0, "schema is up to date\n")
    assert messages(again.stderr) == ""
    assert catalog_snapshot(host.admin) == definitions
    assert contents(host.admin, "public", "auth") == rows


def test_the_snapshot_sees_a_change_of_each_kind(host: Host) -> None:
    """The comparison above is only as good as its snapshot: each kind of change shows."""
    changes = [
        "ALTER TABLE public.jobs ALTER COLUMN required_workers SET DEFAULT 1",
        "ALTER TABLE public.jobs ADD COLUMN scheduler_slot timestamptz",
        "CREATE INDEX ON public.jobs (domain_id, organisation_id)",
        "ALTER TABLE public.jobs DROP CONSTRAINT jobs_scheduler_id_fkey, ADD FOREIGN KEY "
        "(scheduler_id) REFERENCES public.schedulers (id) ON DELETE SET NULL",
        "CREATE SCHEMA elsewhere; CREATE TABLE elsewhere.t (s uuid REFERENCES public.schedulers)",
        "ALTER TABLE public.jobs DISABLE TRIGGER jobs_notify_finished",
        "ALTER TABLE public.schedulers FORCE ROW LEVEL SECURITY",
        "DROP POLICY jobs_organisation_members ON public.jobs",
        "REVOKE ALL ON public.schedulers FROM anon",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM anon",
        "CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'",
    ]
    for change in changes:
        with host.admin.transaction(force_rollback=True):
            before = catalog_snapshot(host.admin)
            host.admin.execute(change)
            assert catalog_snapshot(host.admin) != before, change
    with host.admin.transaction(force_rollback=True):
        before_rows = contents(host.admin, "public", "auth")
        host.admin.execute(
            "UPDATE public.jobs SET progress = 0 "
            "WHERE id = (SELECT min(id) FROM public.jobs WHERE progress > 0)"
        )
        assert contents(host.admin, "public", "auth") != before_rows


def test_the_api_roles_get_nothing_of_schedctls_schema(migrated: Host) -> None:
    """Supabase's default privileges grant whatever is created in public to the API roles;
    schedctl's schema is granted to none of them, nor to PUBLIC."""
    conn = migrated.admin
    objects = conn.execute(
        """
        SELECT c.oid::regclass::text, c.relkind FROM pg_class c
        WHERE c.relnamespace = 'schedctl'::regnamespace AND c.relkind IN ('r', 'S', 'v', 'm')
        ORDER BY 1
        """
    ).fetchall()
    functions = [
        str(row[0])
        for row in conn.execute(
            "SELECT oid::regprocedure::text FROM pg_proc "
            "WHERE pronamespace = 'schedctl'::regnamespace"
        ).fetchall()
    ]
    assert {name for name, _ in objects} >= {
        "schedctl.audit",
        "schedctl.scheduler_settings",
        "schedctl.served_slots",
        "schedctl.tick_heartbeats",
        "schedctl._yoyo_migration",
    }
    assert functions  # the audit trail's append-only trigger function
    for role in (*API_ROLES, "public"):
        for privilege in ("USAGE", "CREATE"):
            held = scalar(
                conn, "SELECT has_schema_privilege(%s, 'schedctl', %s)", [role, privilege]
            )
            assert held is False, (role, privilege)
        for name, kind in objects:
            privileges = (
                ("USAGE", "SELECT", "UPDATE")
                if kind == "S"
                else ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
            )
            check = "has_sequence_privilege" if kind == "S" else "has_table_privilege"
            for privilege in privileges:
                held = scalar(conn, f"SELECT {check}(%s, %s, %s)", [role, name, privilege])
                assert held is False, (role, name, privilege)
        for function in functions:
            held = scalar(
                conn, "SELECT has_function_privilege(%s, %s, 'EXECUTE')", [role, function]
            )
            assert held is False, (role, function)
    # What the API does on behalf of a visitor, and of a signed-in user: refused.
    for role in ("anon", "authenticated"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            conn.execute("SELECT count(*) FROM schedctl.audit")
    # While the host's own tables in public stay exposed to them as before (RLS guards them).
    assert scalar(conn, "SELECT has_table_privilege('anon', 'public.schedulers', 'SELECT')")


# ---------------------------------------------------------------- 2. an operator


def test_an_operator_runs_every_command_on_the_hosts_data(
    migrated: Host, roles: Roles, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = migrated.admin
    monkeypatch.setenv("SCHEDCTL_ACTOR", "alice")
    url = roles.urls["operator"]

    def ok(*args: str) -> Any:
        result = run(url, *args)
        assert result.code == 0, (args, result.stdout, result.stderr)
        return json.loads(result.stdout)

    domain_ids: dict[str, int] = dict(
        conn.execute("SELECT name, id FROM public.domains").fetchall()
    )
    domain_count, job_count = len(domain_ids), scalar(conn, "SELECT count(*) FROM public.jobs")

    # org list: the host's organisations, with their schedulers counted.
    orgs = ok("org", "list", "--json")
    assert sorted((o["name"], o["schedulers"]) for o in orgs) == sorted(
        conn.execute(
            "SELECT o.name, count(s.id)::int FROM public.organisations o "
            "LEFT JOIN public.schedulers s ON s.organisation_id = o.id GROUP BY o.id"
        ).fetchall()
    )
    org_id, org_name = org_without(conn, "Mixed-Case.com", "mixed-case.com", "bücher.de", busy=True)
    assert org_id in {o["id"] for o in orgs}
    hosts_own = {
        str(row[0])
        for row in conn.execute(
            "SELECT id FROM public.schedulers WHERE organisation_id = %s", [org_id]
        ).fetchall()
    }

    # create, for a name the host stored in its own spelling (two rows, Mixed-Case.com and
    # mixed-case.com): one of the host's rows is reused, none is added.
    mixed = ok("create", "Mixed-Case.com", "--every", "12h", "--org", org_name, "--json")
    assert set(mixed) == SCHEDULER_KEYS
    mixed_domain_id = scalar(
        conn, "SELECT domain_id FROM public.schedulers WHERE id = %s", [mixed["id"]]
    )
    assert mixed_domain_id in {domain_ids["Mixed-Case.com"], domain_ids["mixed-case.com"]}
    assert mixed["domain"] in {"Mixed-Case.com", "mixed-case.com"}
    assert domain_ids[mixed["domain"]] == mixed_domain_id
    assert (mixed["organisation_id"], mixed["schedule_interval_hours"]) == (org_id, 12)
    assert (mixed["is_enabled"], mixed["pause_reason"], mixed["overlap_policy"]) == (
        True,
        None,
        "replace",
    )
    assert (mixed["concurrency"], mixed["find_links"], mixed["max_pages"]) == (20, True, 0)
    assert (mixed["include_paths"], mixed["exclude_paths"], mixed["required_workers"]) == (
        [],
        [],
        1,
    )
    created_at = parse_time(mixed["created_at"])
    assert parse_time(mixed["next_run_at"]) - created_at == timedelta(hours=12)

    # create bücher.de: the host's row stored in Unicode is reused.
    german = ok(
        "create", "bücher.de", "--every", "24h", "--concurrency", "5", "--max-pages", "1000",
        "--include", "/blog", "--exclude", "/admin", "--required-workers", "2",
        "--no-find-links", "--org", org_id, "--json",
    )  # fmt: skip
    assert german["domain"] == "bücher.de"
    assert (
        scalar(conn, "SELECT domain_id FROM public.schedulers WHERE id = %s", [german["id"]])
        == domain_ids["bücher.de"]
    )
    assert (german["concurrency"], german["max_pages"], german["find_links"]) == (5, 1000, False)
    assert (german["include_paths"], german["exclude_paths"], german["required_workers"]) == (
        ["/blog"],
        ["/admin"],
        2,
    )
    assert conn.execute(
        "SELECT include_paths, exclude_paths FROM public.schedulers WHERE id = %s", [german["id"]]
    ).fetchone() == ('["/blog"]', '["/admin"]')
    # The host's Café-Crème.fr already has a scheduler in this organisation: the same row,
    # typed another way, is a conflict.
    café = run(url, "create", "CAFÉ-CRÈME.fr", "--every", "6h", "--org", org_id, "--json")
    assert "already exists" in assert_error(café, 4)
    assert scalar(conn, "SELECT count(*) FROM public.domains") == domain_count

    # list: the host's schedulers of the organisation and the two new ones, soonest first.
    listed = ok("list", "--org", org_id, "--json")
    assert {s["id"] for s in listed} == hosts_own | {mixed["id"], german["id"]}
    assert all(set(s) == LIST_KEYS for s in listed)
    times = [parse_time(s["next_run_at"]) for s in listed]
    assert times == sorted(times)
    for doc in listed:  # the host's rows have nothing of schedctl's beside them: defaults
        if doc["id"] in hosts_own:
            assert (doc["overlap_policy"], doc["pause_reason"]) == ("replace", None)
    due_listed = ok("list", "--due", "--org", org_id, "--json")
    assert {s["id"] for s in due_listed} == {
        str(row[0])
        for row in conn.execute(
            "SELECT id FROM public.schedulers WHERE organisation_id = %s AND is_enabled "
            "AND next_run_at <= now()",
            [org_id],
        ).fetchall()
    }

    # show, by any spelling of the domain.
    shown = ok("show", "BÜCHER.DE", "--next", "3", "--org", org_id, "--json")
    assert set(shown) == SCHEDULER_KEYS | {"next_runs", "next_runs_local", "last_job"}
    assert shown["id"] == german["id"]
    assert shown["last_job"] is None
    runs = [parse_time(t) for t in shown["next_runs"]]
    assert runs[0] == parse_time(german["next_run_at"])
    assert [b - a for a, b in pairwise(runs)] == [timedelta(hours=24)] * 2
    assert ok("show", "mixed-case.com", "--org", org_id, "--json")["id"] == mixed["id"]

    # update: a new interval keeps the grid's anchor.
    updated = ok(
        "update", german["id"], "--every", "12h", "--overlap", "allow", "--clear-exclude",
        "--org", org_id, "--json",
    )  # fmt: skip
    assert updated["schedule_interval_hours"] == 12
    assert parse_time(updated["next_run_at"]) == parse_time(german["next_run_at"]) - timedelta(
        hours=12
    )
    assert (updated["overlap_policy"], updated["exclude_paths"]) == ("allow", [])

    # pause and resume.
    paused = ok("pause", "Mixed-Case.com", "--reason", "site migration", "--org", org_id, "--json")
    assert (paused["is_enabled"], paused["pause_reason"]) == (False, "site migration")
    resumed = ok("resume", mixed["id"], "--org", org_id, "--json")
    assert (resumed["is_enabled"], resumed["pause_reason"]) == (True, None)
    assert resumed["next_run_at"] == mixed["next_run_at"]

    # run: a job now, in the host's jobs, which its triggers and generated columns accept.
    job = ok("run", "bücher.de", "--org", org_id, "--json")
    assert set(job) == JOB_KEYS
    assert (job["scheduler_id"], job["domain"], job["status"], job["progress"]) == (
        german["id"],
        "bücher.de",
        "pending",
        0,
    )
    assert (job["started_at"], job["completed_at"]) == (None, None)
    assert conn.execute(
        """
        SELECT domain_id, organisation_id::text, concurrency, find_links, max_pages,
               include_paths, exclude_paths, required_workers, source_type, source_detail,
               source_info, user_id, started_at, completed_at, duration_seconds, stats
        FROM public.jobs WHERE id = %s
        """,
        [job["id"]],
    ).fetchone() == (
        domain_ids["bücher.de"], org_id, 5, False, 1000, '["/blog"]', None, 2, "scheduler",
        german["id"], "manual run", None, None, None, None, None,
    )  # fmt: skip

    # run under `replace`, for a scheduler of the host's whose previous crawl is still active:
    # the host's job is cancelled (its triggers set nothing more, and send no notification).
    busy, busy_job, busy_next = conn.execute(
        """
        SELECT s.id::text, j.id, s.next_run_at FROM public.schedulers s
        JOIN public.jobs j ON j.domain_id = s.domain_id AND j.organisation_id = s.organisation_id
        WHERE s.organisation_id = %s AND j.status = ANY (%s) AND s.id = ANY (%s::uuid[])
        ORDER BY s.id LIMIT 1
        """,
        [org_id, list(ACTIVE), sorted(hosts_own)],
    ).fetchone() or (None, None, None)
    assert busy in hosts_own, "the host's history gives this organisation an active job"
    replacing = ok("run", busy, "--org", org_id, "--json")
    assert (replacing["scheduler_id"], replacing["status"]) == (busy, "pending")
    assert conn.execute(
        "SELECT status, completed_at = %s FROM public.jobs WHERE id = %s",
        [parse_time(replacing["created_at"]), busy_job],
    ).fetchone() == ("cancelled", True)
    assert (
        scalar(conn, "SELECT count(*) FROM public.notifications WHERE job_id = %s", [busy_job]) == 0
    )
    assert (
        scalar(conn, "SELECT next_run_at FROM public.schedulers WHERE id = %s", [busy]) == busy_next
    )

    # history: the new scheduler's job; a host scheduler's years of jobs, page by page.
    assert [j["id"] for j in ok("history", "bücher.de", "--org", org_id, "--json")] == [job["id"]]
    veteran = scalar(
        conn,
        "SELECT id::text FROM public.schedulers WHERE id = ANY (%s::uuid[]) "
        "AND next_run_at > now() ORDER BY id LIMIT 1",
        [sorted(hosts_own)],
    )
    its_jobs = [
        str(row[0])
        for row in conn.execute(
            "SELECT id FROM public.jobs WHERE scheduler_id = %s AND organisation_id = %s "
            "ORDER BY created_at DESC, id DESC",
            [veteran, org_id],
        ).fetchall()
    ]
    assert len(its_jobs) > 50
    page = ok("history", veteran, "--limit", "10", "--offset", "5", "--org", org_id, "--json")
    assert [j["id"] for j in page] == its_jobs[5:15]
    assert all(set(j) == JOB_KEYS and j["scheduler_id"] == veteran for j in page)
    assert all(j["status"] in FINISHED for j in page)
    tail = ok("history", veteran, "--limit", "1000", "--offset", "50", "--org", org_id, "--json")
    assert [j["id"] for j in tail] == its_jobs[50:]

    # log: every change, newest first, by the actor.
    entries = ok("log", "--org", org_id, "--json")
    assert [(e["action"], e["scheduler_id"]) for e in entries] == [
        ("run", busy),
        ("run", german["id"]),
        ("resume", mixed["id"]),
        ("pause", mixed["id"]),
        ("update", german["id"]),
        ("create", german["id"]),
        ("create", mixed["id"]),
    ]
    assert {e["actor"] for e in entries} == {"alice"}
    assert entries[3]["reason"] == "site migration"

    # delete: the scheduler goes, its jobs stay, detached, although the host's foreign key has
    # no delete rule; the same for a scheduler of the host's with years of history.
    for ref, scheduler_id, kept in (
        ("bücher.de", german["id"], [job["id"]]),
        (veteran, veteran, its_jobs),
    ):
        deleted = ok("delete", ref, "--yes", "--org", org_id, "--json")
        assert deleted == {"id": scheduler_id, "deleted": True}
        assert (
            scalar(conn, "SELECT count(*) FROM public.schedulers WHERE id = %s", [scheduler_id])
            == 0
        )
        detached = conn.execute(
            "SELECT id FROM public.jobs WHERE source_detail = %s AND scheduler_id IS NULL",
            [scheduler_id],
        ).fetchall()
        assert sorted(str(row[0]) for row in detached) == sorted(kept)
    assert scalar(conn, "SELECT count(*) FROM public.jobs") == job_count + 2
    assert scalar(conn, "SELECT count(*) FROM public.domains") == domain_count
    deleted_log = ok("log", "bücher.de", "--org", org_id, "--json")
    assert deleted_log[0]["action"] == "delete"

    # status: the organisation's counts, by the database's clock.
    status = ok("status", "--max-lag", "30d", "--org", org_name, "--json")
    enabled, paused_count, due = conn.execute(
        "SELECT count(*) FILTER (WHERE is_enabled), count(*) FILTER (WHERE NOT is_enabled), "
        "count(*) FILTER (WHERE is_enabled AND next_run_at <= now()) "
        "FROM public.schedulers WHERE organisation_id = %s",
        [org_id],
    ).fetchone() or (None, None, None)
    assert (status["ok"], status["enabled"], status["paused"], status["due"]) == (
        True,
        enabled,
        paused_count,
        due,
    )
    assert (status["schema_version"], status["last_tick"]) == (HEAD_MIGRATION, None)
    assert due > 0 and status["worst_lag_seconds"] > 60


# ---------------------------------------------------------------- 3. the tick role


def assert_ticked_everything(conn: Conn, due: dict[str, Due], result: Result) -> list[str]:
    """One tick served every scheduler in `due` exactly once, as the contract says, and the
    host's triggers and generated columns did their part; returns the new jobs' ids."""
    assert result.code == 0, (result.stdout, result.stderr)
    summary = json.loads(result.stdout)
    assert (summary["due"], summary["created"], summary["skipped"], summary["failed"]) == (
        len(due),
        len(due),
        0,
        0,
    )
    assert summary["errors"] == []
    assert summary["missed"] == sum(d.missed for d in due.values())
    assert all(set(made) == TICK_JOB_KEYS for made in summary["jobs"])
    assert sorted(made["scheduler_id"] for made in summary["jobs"]) == sorted(due)
    names: dict[int, str] = dict(conn.execute("SELECT id, name FROM public.domains").fetchall())

    for made in summary["jobs"]:
        before = due[made["scheduler_id"]]
        slot, next_run = parse_time(made["slot"]), parse_time(made["next_run_at"])
        assert slot == before.slot
        assert next_run == before.slot + timedelta(hours=before.hours * (before.missed + 1))
        assert made["organisation_id"] == before.organisation_id
        assert made["domain"] == names[before.domain_id]
        # The scheduler moved on the grid, to the first time after now.
        moved, ahead, touched = conn.execute(
            "SELECT next_run_at, next_run_at > now(), updated_at FROM public.schedulers "
            "WHERE id = %s",
            [before.id],
        ).fetchone() or (None, None, None)
        assert (moved, ahead) == (next_run, True)
        # The job, as tick makes it, and as the host's triggers and generated columns left it:
        # pending, so not started, not finished, no duration, no stats.
        row = conn.execute(
            """
            SELECT status, progress, total_tasks, completed_tasks, failed_tasks,
                   skipped_tasks, running_tasks, pending_tasks, waiting_tasks,
                   domain_id, organisation_id::text, user_id, source_type, source_detail,
                   source_info, scheduler_id::text, started_at, completed_at,
                   duration_seconds, avg_time_per_task_seconds, stats,
                   concurrency, find_links, max_pages, include_paths, exclude_paths,
                   required_workers, created_at
            FROM public.jobs WHERE id = %s
            """,
            [made["job_id"]],
        ).fetchone()
        assert row is not None, made
        assert row[:21] == (
            "pending", 0, 0, 0, 0, 0, 0, 0, 0, before.domain_id, before.organisation_id, None,
            "scheduler", before.id, None, before.id, None, None, None, None, None,
        )  # fmt: skip
        assert row[21:27] == before.template
        assert touched == row[27]  # the scheduler's updated_at: the pass's now()
        # The host's active job of that domain and organisation was cancelled (replace), its
        # completion time set to the new job's creation, its duration computed where it had
        # started; the only active job now is the new one.
        for job_id, (status, started_at) in before.active.items():
            cancelled = conn.execute(
                "SELECT status, started_at, completed_at, duration_seconds "
                "FROM public.jobs WHERE id = %s",
                [job_id],
            ).fetchone()
            assert cancelled is not None
            assert cancelled[:3] == ("cancelled", started_at, row[27]), (job_id, status)
            assert (cancelled[3] is None) == (started_at is None), cancelled
        active = conn.execute(
            "SELECT id FROM public.jobs WHERE domain_id = %s AND organisation_id = %s "
            "AND status = ANY (%s)",
            [before.domain_id, before.organisation_id, list(ACTIVE)],
        ).fetchall()
        assert active == [(made["job_id"],)]
    # A cancelled job sends the customer nothing: no notification for any of them.
    replaced = [job_id for d in due.values() for job_id in d.active]
    assert replaced
    assert (
        scalar(
            conn, "SELECT count(*) FROM public.notifications WHERE job_id = ANY (%s)", [replaced]
        )
        == 0
    )
    assert scalar(conn, "SELECT count(*) FROM schedctl.served_slots") == len(due)
    return [str(made["job_id"]) for made in summary["jobs"]]


def test_the_tick_role_is_refused_without_bypassrls_then_serves_every_due_scheduler_once(
    migrated: Host, roles: Roles, run: Run
) -> None:
    conn = migrated.admin
    org_id, _ = org_without(conn, "Neu-Laden.de")
    host_scheduler, host_running = insert_host_scheduler(conn, org_id, "Neu-Laden.de")

    # Without BYPASSRLS: refused before anything is read or written.
    before = everything(conn)
    refused = run(roles.urls["tick"], "tick", "--json")
    message = assert_error(refused, 5)
    assert "row-level security" in message, message
    assert roles.tick in message, message
    for table in HOST_TABLES:
        assert re.search(rf"\bpublic\.{table}\b", message), (table, message)
    assert "BYPASSRLS" in message and "contrib/grants.sql" in message, message
    assert everything(conn) == before

    # BYPASSRLS on the login role, as grants.sql says: a real process, as cron runs it.
    bypass_rls(conn, roles.tick)
    due = due_schedulers(conn)
    assert len(due) == DUE + 1 and host_scheduler in due
    assert host_running in due[host_scheduler].active
    assert sum(len(d.active) for d in due.values()) == migrated.history.active_jobs + 1
    notifications = scalar(conn, "SELECT count(*) FROM public.notifications")
    jobs = scalar(conn, "SELECT count(*) FROM public.jobs")
    not_due = conn.execute(
        "SELECT id, next_run_at, updated_at FROM public.schedulers WHERE next_run_at > now() "
        "ORDER BY id"
    ).fetchall()

    ticked = run_cli_subprocess(
        ["tick", "--json"], {"SCHEDCTL_DATABASE_URL": roles.urls["tick"]}, timeout=60
    )
    made = assert_ticked_everything(conn, due, ticked)
    assert scalar(conn, "SELECT count(*) FROM public.jobs") == jobs + len(due)
    assert scalar(conn, "SELECT count(*) FROM public.notifications") == notifications
    assert (
        conn.execute(
            "SELECT id, next_run_at, updated_at FROM public.schedulers WHERE id <> ALL (%s) "
            "ORDER BY id",
            [list(due)],
        ).fetchall()
        == not_due
    )
    assert conn.execute("SELECT ok, due, created FROM schedctl.tick_heartbeats").fetchall() == [
        (True, len(due), len(due))
    ]

    # A second tick has nothing to do.
    after = contents(conn, "public")
    again = run(roles.urls["tick"], "tick", "--json")
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout) == {
        "due": 0, "created": 0, "skipped": 0, "failed": 0, "missed": 0, "jobs": [], "errors": [],
        "resumed": 0,
    }  # fmt: skip
    assert contents(conn, "public") == after

    # The host's workers take a scheduled job like any other: its tasks start it (the trigger
    # sets started_at), finishing them completes it, and the customer is told.
    job = made[0]
    conn.execute(
        "INSERT INTO public.tasks (job_id, path) VALUES (%s, '/'), (%s, '/about')", [job, job]
    )
    conn.execute("UPDATE public.tasks SET status = 'running' WHERE job_id = %s", [job])
    assert conn.execute(
        "SELECT status, started_at IS NOT NULL FROM public.jobs WHERE id = %s", [job]
    ).fetchone() == ("running", True)
    conn.execute("UPDATE public.tasks SET status = 'completed' WHERE job_id = %s", [job])
    assert conn.execute(
        "SELECT status, progress, completed_at IS NOT NULL, duration_seconds IS NOT NULL, "
        "stats IS NOT NULL FROM public.jobs WHERE id = %s",
        [job],
    ).fetchone() == ("completed", 100, True, True, True)
    assert conn.execute(
        "SELECT type FROM public.notifications WHERE job_id = %s", [job]
    ).fetchall() == [("job_completed",)]


def test_bypassrls_on_the_tick_group_alone_does_not_let_the_login_tick(
    migrated: Host, roles: Roles, run: Run
) -> None:
    """grants.sql says so: PostgreSQL does not pass BYPASSRLS on through membership."""
    conn = migrated.admin
    bypass_rls(conn, roles.tick_group)
    before = everything(conn)
    assert "row-level security" in assert_error(run(roles.urls["tick"], "tick"), 5)
    assert everything(conn) == before


# ---------------------------------------------------------------- 4. the monitor role


def write_commands(conn: Conn) -> dict[str, list[str]]:
    """A command of each kind that writes, naming a scheduler of the host's that exists."""
    org_id, scheduler_id = conn.execute(
        "SELECT organisation_id::text, id::text FROM public.schedulers ORDER BY id LIMIT 1"
    ).fetchone() or ("", "")
    return {
        "org create": ["org", "create", "Initech", "--json"],
        "create": ["create", "brand-new-site.com", "--every", "6h", "--org", org_id, "--json"],
        "update": ["update", scheduler_id, "--concurrency", "3", "--org", org_id, "--json"],
        "pause": ["pause", scheduler_id, "--reason", "no", "--org", org_id, "--json"],
        "resume": ["resume", scheduler_id, "--org", org_id, "--json"],
        "run": ["run", scheduler_id, "--org", org_id, "--json"],
        "delete": ["delete", scheduler_id, "--yes", "--org", org_id, "--json"],
        "tick": ["tick", "--json"],
    }


# The table each write command is refused on: INSERT on organisations and domains, UPDATE on
# schedulers (which locking a scheduler for a change, and tick's claim, need too).
MISSING_TABLE = {
    "org create": "table organisations",
    "create": "table domains",
    "update": "table schedulers",
    "pause": "table schedulers",
    "resume": "table schedulers",
    "run": "table schedulers",
    "delete": "table schedulers",
    # tick's first write: resuming the schedulers whose `pause --until` has come
    "tick": "function resume_paused",
}


def test_the_monitor_role_reads_status_and_list(migrated: Host, roles: Roles, run: Run) -> None:
    conn = migrated.admin
    bypass_rls(conn, roles.monitor)
    url = roles.urls["monitor"]
    enabled, due = conn.execute(
        "SELECT count(*) FILTER (WHERE is_enabled), "
        "count(*) FILTER (WHERE is_enabled AND next_run_at <= now()) FROM public.schedulers"
    ).fetchone() or (None, None)

    # Before any tick, schedulers wait: status says so (exit 1, its problem on stderr).
    lagging = run(url, "status", "--all-orgs", "--json")
    assert lagging.code == 1, lagging.stderr
    report = json.loads(lagging.stdout)
    assert (report["ok"], report["enabled"], report["paused"], report["due"]) == (
        False,
        enabled,
        0,
        due,
    )
    assert (report["schema_version"], report["last_tick"]) == (HEAD_MIGRATION, None)
    assert lagging.stderr.startswith("error: the scheduler of "), lagging.stderr
    assert "has waited" in lagging.stderr, lagging.stderr

    org_id, org_name = org_without(conn)
    listed = run(url, "list", "--org", org_name, "--json")
    assert listed.code == 0, listed.stderr
    assert [s["id"] for s in json.loads(listed.stdout)] == [
        str(row[0])
        for row in conn.execute(
            "SELECT s.id FROM public.schedulers s JOIN public.domains d ON d.id = s.domain_id "
            "WHERE s.organisation_id = %s ORDER BY s.next_run_at, d.name, s.id",
            [org_id],
        ).fetchall()
    ]
    every_due = run(url, "list", "--all-orgs", "--due", "--json")
    assert every_due.code == 0, every_due.stderr
    assert len(json.loads(every_due.stdout)) == due

    # Once the owner has ticked, all is well.
    ticked = run(migrated.url, "tick", "--quiet")
    assert (ticked.code, ticked.stdout, ticked.stderr) == (0, "", "")
    healthy = run(url, "status", "--org", org_id, "--json")
    assert (healthy.code, healthy.stderr) == (0, ""), healthy.stdout
    report = json.loads(healthy.stdout)
    assert (report["ok"], report["due"], report["last_tick"]["created"]) == (True, 0, due)
    plain = run(url, "status", "--all-orgs")
    assert plain.code == 0, plain.stderr


def test_the_monitor_role_cannot_write(migrated: Host, roles: Roles, run: Run) -> None:
    """Every write command is refused with exit 5 and one line holding the server's message
    (the table it refused) and a pointer to the grants file; nothing is written."""
    conn = migrated.admin
    bypass_rls(conn, roles.monitor)
    before = everything(conn)
    for name, args in write_commands(conn).items():
        message = assert_error(run(roles.urls["monitor"], *args), 5)
        assert f"permission denied for {MISSING_TABLE[name]}" in message, (name, message)
        assert "privilege" in message and "contrib/grants.sql" in message, (name, message)
    assert everything(conn) == before


# ---------------------------------------------------------------- 5. grants.sql's policies


def test_grants_sql_policies_instead_of_bypassrls_let_the_tick_role_tick_everything(
    migrated: Host, roles: Roles, run: Run
) -> None:
    conn = migrated.admin
    org_id, _ = org_without(conn, "Neu-Laden.de")
    host_scheduler, _ = insert_host_scheduler(conn, org_id, "Neu-Laden.de")
    conn.execute(grants_script(roles, with_policies=True))
    conn.execute(grants_script(roles, with_policies=True))  # safe to run again
    assert (
        scalar(conn, "SELECT rolbypassrls FROM pg_roles WHERE rolname = %s", [roles.tick]) is False
    )

    due = due_schedulers(conn)
    assert len(due) == DUE + 1 and host_scheduler in due
    ticked = run(roles.urls["tick"], "tick", "--json")
    assert_ticked_everything(conn, due, ticked)

    status = run(roles.urls["monitor"], "status", "--all-orgs", "--json")
    assert (status.code, status.stderr) == (0, ""), status.stdout
    report = json.loads(status.stdout)
    assert (report["enabled"], report["due"]) == (SCHEDULERS + 1, 0)
    assert report["last_tick"]["created"] == len(due)
