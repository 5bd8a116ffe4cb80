"""A Supabase-like database: the API roles `anon` and `authenticated`, and default privileges
that grant them every new table, sequence and function. After `migrate`, neither they nor
PUBLIC hold any privilege on schedctl's schema or anything in it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import psycopg
import pytest
from psycopg import errors as pgerrors
from psycopg import sql

from tests.helpers import Result, run_cli

Conn = psycopg.Connection[tuple[Any, ...]]
Cli = Callable[..., Result]

API_ROLES = ("anon", "authenticated")

# What Supabase sets up before any application table exists: the API roles may use schema
# public, and whatever the migrating role creates is granted to them, in public and (the
# global form) in every schema.
SUPABASE_DEFAULTS = """
GRANT USAGE ON SCHEMA public TO anon, authenticated;
ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES GRANT ALL ON FUNCTIONS TO anon, authenticated;
ALTER DEFAULT PRIVILEGES GRANT ALL ON SCHEMAS TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated;
"""

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

# Tables the API roles must not reach, each with statements that read, add and remove rows.
PROBES = {
    "schedctl.audit": (
        "SELECT * FROM schedctl.audit",
        "INSERT INTO schedctl.audit (actor, action, scheduler_id, organisation_id, domain) "
        "VALUES ('anon', 'create', gen_random_uuid(), gen_random_uuid(), 'x.com')",
        "DELETE FROM schedctl.audit",
    ),
    "schedctl.tick_heartbeats": (
        "SELECT * FROM schedctl.tick_heartbeats",
        "INSERT INTO schedctl.tick_heartbeats (host, ticked_at, ok, due, created, skipped, "
        "failed, missed) VALUES ('api', now(), TRUE, 0, 0, 0, 0, 0)",
        "DELETE FROM schedctl.tick_heartbeats",
    ),
    "schedctl._yoyo_migration": (
        "SELECT * FROM schedctl._yoyo_migration",
        "INSERT INTO schedctl._yoyo_migration (migration_hash, migration_id, applied_at_utc) "
        "VALUES ('x', 'x', now())",
        "DELETE FROM schedctl._yoyo_migration",
    ),
}


def ensure_role(conn: Conn, name: str) -> None:
    """Create a role shared by every suite on the server unless it exists; another suite may
    be creating it at the same moment."""
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone():
        return
    with suppress(pgerrors.DuplicateObject, pgerrors.UniqueViolation):
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))


@pytest.fixture
def supabase_url(empty_database_url: str) -> str:
    """An empty database with the API roles and Supabase's default privileges."""
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        for role in API_ROLES:
            ensure_role(conn, role)
        conn.execute(SUPABASE_DEFAULTS)
    return empty_database_url


@pytest.fixture
def admin(supabase_url: str) -> Iterator[Conn]:
    with psycopg.connect(supabase_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def schedctl(supabase_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("SCHEDCTL_DATABASE_URL", supabase_url)

    def invoke(*args: str) -> Result:
        return run_cli(list(args))

    return invoke


@pytest.fixture
def nobody(admin: Conn) -> Iterator[str]:
    """A role of this test's own holding nothing but what PUBLIC holds."""
    name = f"schedctl_nobody_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def privileges_held(conn: Conn, grantee: str) -> list[str]:
    """Every privilege `grantee` ('public' for PUBLIC) holds on schema schedctl or on a table,
    column, sequence or function in it, directly or through PUBLIC."""
    held: list[str] = []
    for privilege in ("USAGE", "CREATE"):
        if conn.execute(
            "SELECT has_schema_privilege(%s, 'schedctl', %s)", [grantee, privilege]
        ).fetchone() == (True,):
            held.append(f"{privilege} ON SCHEMA schedctl")
    relations = conn.execute(
        "SELECT oid, oid::regclass::text, relkind FROM pg_class "
        "WHERE relnamespace = 'schedctl'::regnamespace "
        "AND relkind IN ('r', 'p', 'v', 'm', 'f', 'S')"
    ).fetchall()
    for oid, name, kind in relations:
        if kind == "S":
            for privilege in ("USAGE", "SELECT", "UPDATE"):
                if conn.execute(
                    "SELECT has_sequence_privilege(%s, %s::oid, %s)", [grantee, oid, privilege]
                ).fetchone() == (True,):
                    held.append(f"{privilege} ON SEQUENCE {name}")
            continue
        for privilege in TABLE_PRIVILEGES:
            if conn.execute(
                "SELECT has_table_privilege(%s, %s::oid, %s)", [grantee, oid, privilege]
            ).fetchone() == (True,):
                held.append(f"{privilege} ON TABLE {name}")
        if conn.execute(
            "SELECT has_any_column_privilege(%s, %s::oid, 'SELECT, INSERT, UPDATE, REFERENCES')",
            [grantee, oid],
        ).fetchone() == (True,):
            held.append(f"a column privilege ON TABLE {name}")
    functions = conn.execute(
        "SELECT oid, oid::regprocedure::text FROM pg_proc "
        "WHERE pronamespace = 'schedctl'::regnamespace"
    ).fetchall()
    for oid, name in functions:
        if conn.execute(
            "SELECT has_function_privilege(%s, %s::oid, 'EXECUTE')", [grantee, oid]
        ).fetchone() == (True,):
            held.append(f"EXECUTE ON FUNCTION {name}")
    return held


def acl_entries(conn: Conn, grantees: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """The entries of the ACLs of schedctl's schema and of everything in it that name one of
    `grantees` (PUBLIC as 'public')."""
    return conn.execute(
        """
        WITH objects AS (
            SELECT 'schema schedctl' AS object, nspacl AS acl
            FROM pg_namespace WHERE nspname = 'schedctl'
            UNION ALL
            SELECT oid::regclass::text, relacl FROM pg_class
            WHERE relnamespace = 'schedctl'::regnamespace
            UNION ALL
            SELECT c.oid::regclass::text || '.' || a.attname, a.attacl
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'schedctl'::regnamespace AND a.attacl IS NOT NULL
            UNION ALL
            SELECT oid::regprocedure::text, proacl FROM pg_proc
            WHERE pronamespace = 'schedctl'::regnamespace
        )
        SELECT o.object, CASE WHEN e.grantee = 0 THEN 'public'
                              ELSE pg_get_userbyid(e.grantee) END AS grantee,
               e.privilege_type
        FROM objects o CROSS JOIN LATERAL aclexplode(o.acl) AS e
        WHERE (CASE WHEN e.grantee = 0 THEN 'public' ELSE pg_get_userbyid(e.grantee) END)
              = ANY (%s)
        ORDER BY 1, 2, 3
        """,
        [list(grantees)],
    ).fetchall()


def assert_schema_closed(conn: Conn, *roles: str) -> None:
    for grantee in (*API_ROLES, "public", *roles):
        assert privileges_held(conn, grantee) == [], grantee
    assert acl_entries(conn, (*API_ROLES, "public", *roles)) == []
    for role in (*API_ROLES, *roles):
        for statements in PROBES.values():
            for statement in statements:
                with conn.transaction(force_rollback=True):
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                    # The savepoint keeps the transaction usable, so the role is reset after.
                    with pytest.raises(pgerrors.InsufficientPrivilege), conn.transaction():
                        conn.execute(statement)
    assert conn.execute("SELECT current_user = session_user").fetchone() == (True,)


def test_the_setup_grants_new_objects_to_the_api_roles(admin: Conn, nobody: str) -> None:
    """Without migrate's revocation, the default privileges would open schedctl's tables."""
    with admin.transaction(force_rollback=True):
        admin.execute("CREATE SCHEMA schedctl")
        admin.execute("CREATE TABLE schedctl.audit (id BIGINT GENERATED ALWAYS AS IDENTITY)")
        admin.execute("CREATE FUNCTION schedctl.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        for role in API_ROLES:
            held = privileges_held(admin, role)
            assert "USAGE ON SCHEMA schedctl" in held
            assert "SELECT ON TABLE schedctl.audit" in held
            assert "USAGE ON SEQUENCE schedctl.audit_id_seq" in held
            assert "EXECUTE ON FUNCTION schedctl.f()" in held
        assert privileges_held(admin, nobody) == ["EXECUTE ON FUNCTION schedctl.f()"]
        assert {grantee for _, grantee, _ in acl_entries(admin, API_ROLES)} == set(API_ROLES)


def test_migrate_leaves_the_api_roles_and_public_nothing_in_schedctls_schema(
    schedctl: Cli, admin: Conn, nobody: str
) -> None:
    result = schedctl("migrate")
    assert result.code == 0, result.stderr
    objects = admin.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'schedctl'::regnamespace "
        "AND relkind IN ('r', 'S') ORDER BY relname"
    ).fetchall()
    assert {
        ("audit",),
        ("audit_id_seq",),
        ("scheduler_settings",),
        ("served_slots",),
        ("tick_heartbeats",),
        ("_yoyo_migration",),
    } <= set(objects)
    assert admin.execute(
        "SELECT count(*) FROM pg_proc WHERE pronamespace = 'schedctl'::regnamespace"
    ).fetchone() != (0,)
    assert_schema_closed(admin, nobody)


def test_migrate_again_keeps_it_closed(schedctl: Cli, admin: Conn, nobody: str) -> None:
    first = schedctl("migrate")
    assert first.code == 0, first.stderr
    again = schedctl("migrate")
    assert (again.code, again.stdout) == (0, "schema is up to date\n"), again.stderr
    assert_schema_closed(admin, nobody)


def test_yoyos_bookkeeping_is_in_schedctls_schema_not_in_public(schedctl: Cli, admin: Conn) -> None:
    result = schedctl("migrate")
    assert result.code == 0, result.stderr
    in_public = admin.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relname LIKE '%yoyo%'"
    ).fetchall()
    assert in_public == []
    assert admin.execute("SELECT count(*) FROM schedctl._yoyo_migration").fetchone() != (0,)
