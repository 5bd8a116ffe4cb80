"""The tests' databases: clones of the migrated template, each used again by a later test of
the same process when the one before changed nothing but rows.

Copying the template (8 MB, written through the WAL) and dropping the copy (a checkpoint of
the whole server) cost the server more than most tests do themselves. Most tests only add
rows: once such a test ends, its database is emptied back to the template's rows and kept
for the next test. A database is dropped instead when anything else may have changed:
another session still on it, a prepared transaction, a setting of the database, any catalog
row added, changed or removed (functions, triggers, policies, grants, indexes, an ANALYZE),
or tables grown past the size at which the planner stops treating them as never filled.
What stays is what a fresh clone has, but for dead rows in a few pages, which no query
result shows and no plan sees (under ten pages a never-vacuumed table is planned as ten).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from tests.helpers import with_database

# The catalogs a database's own objects live in (not pg_depend and the like, which change
# with them): a row added or changed since the clone has a newer xmin, one removed lowers
# the count. pg_statistic is among them: an ANALYZE (autovacuum's too) changes plans.
_CATALOGS = (
    "pg_aggregate", "pg_am", "pg_amop", "pg_amproc", "pg_attrdef", "pg_attribute", "pg_cast",
    "pg_class", "pg_collation", "pg_constraint", "pg_conversion", "pg_default_acl",
    "pg_depend", "pg_description", "pg_enum", "pg_event_trigger", "pg_extension",
    "pg_foreign_data_wrapper", "pg_foreign_server", "pg_foreign_table", "pg_index",
    "pg_inherits", "pg_init_privs", "pg_language", "pg_largeobject_metadata", "pg_namespace",
    "pg_opclass", "pg_operator", "pg_opfamily", "pg_partitioned_table", "pg_policy",
    "pg_proc", "pg_publication", "pg_publication_rel", "pg_range", "pg_rewrite",
    "pg_seclabel", "pg_sequence", "pg_statistic", "pg_statistic_ext", "pg_transform",
    "pg_trigger", "pg_ts_config", "pg_ts_dict", "pg_ts_parser", "pg_ts_template", "pg_type",
    "pg_user_mapping",
)  # fmt: skip

# Below ten pages a table that was never vacuumed is planned as ten pages, empty or not.
_MAX_PAGES = 9

# The shape of the database: per catalog its row count and how many rows are older than
# `mark` (an xid); the planner's figures kept in pg_class (changed in place, no new xmin);
# and what else ties the database to a session or a setting.
_SHAPE = sql.SQL(
    """
SELECT {counts} AS counts,
       (SELECT array_agg(ARRAY[c.relpages::float8, c.reltuples::float8,
                               c.relallvisible::float8] ORDER BY c.oid)
        FROM pg_class c) AS planner,
       (SELECT coalesce(max(pg_relation_size(c.oid) / current_setting('block_size')::int), 0)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'i', 't', 'm') AND c.oid >= 16384  -- not the system's
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')) AS largest,
       EXISTS (SELECT 1 FROM pg_stat_activity a
               WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
                 AND a.backend_type = 'client backend')
       OR EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.database = current_database())
       OR EXISTS (SELECT 1 FROM pg_db_role_setting r JOIN pg_database d ON d.oid = r.setdatabase
                  WHERE d.datname = current_database())
       OR EXISTS (SELECT 1 FROM pg_database d
                  WHERE d.datname = current_database() AND age(d.xmin) <= age(%(mark)s::xid))
          AS held
"""
)

# The user tables and sequences of a database, with the template's content.
_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname), c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'S') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1
"""


def _shape_query() -> sql.Composed:
    # Per catalog, in one scan: its rows, and those older than the mark (all of them, unless a
    # row was added or changed since).
    counts = sql.SQL("ARRAY[{}]").format(
        sql.SQL(", ").join(
            sql.SQL(
                "(SELECT ARRAY[count(*), count(*) FILTER (WHERE age(xmin) > age(%(mark)s::xid))]"
                " FROM {})"
            ).format(sql.Identifier(catalog))
            for catalog in _CATALOGS
        )
    )
    return _SHAPE.format(counts=counts)


@dataclass
class _Template:
    counts: list[int]
    planner: list[list[float]]
    tables: list[str]
    # The rows the migrations left (COPY's binary form) and each sequence's position.
    rows: dict[str, bytes]
    sequences: dict[str, tuple[int, bool]]


def _next_xid(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    """The xid the next transaction on the server will be given (32 bits, as xmin holds)."""
    row = conn.execute(
        "SELECT (pg_snapshot_xmax(pg_current_snapshot())::text::bigint % 4294967296)::text"
    ).fetchone()
    assert row is not None
    return str(row[0])


class Clones:
    """Databases for one test each: take() one, give_back() it when the test ends."""

    def __init__(
        self,
        server_url: str,
        template: str,
        create: Callable[[str], str],
        drop: Callable[[str], None],
    ) -> None:
        self.server_url = server_url
        self._template_name = template
        self._create = create  # a new clone of the template: its name
        self._drop = drop
        # Databases ready for a test, each with the xid its test's changes will be newer than.
        self._free: list[tuple[str, str]] = []
        self._marks: dict[str, str] = {}
        self._template: _Template | None = None

    def take(self) -> str:
        if self._template is None:
            self._template = self._read_template()
        if self._free:
            name, mark = self._free.pop()
        else:
            name = self._create(self._template_name)
            with psycopg.connect(self.server_url, autocommit=True) as admin:
                mark = _next_xid(admin)
        self._marks[name] = mark
        return name

    def give_back(self, name: str) -> None:
        mark = self._marks.pop(name)
        try:
            next_mark = self._empty_if_unchanged(name, mark)
        except psycopg.Error:
            next_mark = None  # dropped by the test, renamed, refusing connections ...
        if next_mark is None:
            self._drop(name)
        else:
            self._free.append((name, next_mark))

    def close(self) -> None:
        for name, _ in self._free:
            self._drop(name)
        self._free.clear()

    def _read_template(self) -> _Template:
        """The template's shape and rows (read once: a clone cannot be made while a
        session is on the template)."""
        url = with_database(self.server_url, self._template_name)
        with psycopg.connect(url, autocommit=True) as conn:
            shape = conn.execute(_shape_query(), {"mark": _next_xid(conn)}).fetchone()
            assert shape is not None
            tables: list[str] = []
            rows: dict[str, bytes] = {}
            sequences: dict[str, tuple[int, bool]] = {}
            for name, kind in conn.execute(_TABLES).fetchall():
                if kind == "S":
                    position = conn.execute(
                        sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(name))
                    ).fetchone()
                    assert position is not None
                    sequences[name] = (int(position[0]), bool(position[1]))
                    continue
                tables.append(name)  # a partitioned one's DELETE empties its partitions
                filled = conn.execute(
                    sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.SQL(name))
                ).fetchone()
                if filled != (True,):
                    continue
                assert kind == "r", f"{name}: rows in a partitioned table of the template"
                copy_out = sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(sql.SQL(name))
                with conn.cursor().copy(copy_out) as copy:
                    rows[name] = b"".join(bytes(chunk) for chunk in copy)
        return _Template([count for count, _ in shape[0]], shape[1], tables, rows, sequences)

    def _empty_if_unchanged(self, name: str, mark: str) -> str | None:
        """If the database has the template's shape still, its rows are made the template's
        again (one transaction) and the next test's mark is returned; else None."""
        template = self._template
        assert template is not None
        with psycopg.connect(with_database(self.server_url, name), autocommit=True) as conn:
            shape = conn.execute(_shape_query(), {"mark": mark}).fetchone()
            assert shape is not None
            counts, planner, largest, held = shape
            if (
                held
                or counts != [[count, count] for count in template.counts]
                or planner != template.planner
                or largest > _MAX_PAGES
            ):
                return None
            with conn.transaction():
                # One round trip: not TRUNCATE (it writes pg_class); the host's and schedctl's
                # triggers and foreign keys are not fired, as a restore's are not; the
                # sequences put back where the template has them.
                conn.execute(
                    sql.SQL("; ").join(
                        [
                            sql.SQL("SET LOCAL session_replication_role = replica"),
                            *(
                                sql.SQL("DELETE FROM {}").format(sql.SQL(t))
                                for t in template.tables
                            ),
                            *(
                                sql.SQL("SELECT setval({}, {}, {})").format(
                                    sql.Literal(sequence), value, called
                                )
                                for sequence, (value, called) in template.sequences.items()
                            ),
                        ]
                    )
                )
                for table, data in template.rows.items():
                    copy_in = sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(sql.SQL(table))
                    with conn.cursor().copy(copy_in) as copy:
                        copy.write(data)
            return _next_xid(conn)
