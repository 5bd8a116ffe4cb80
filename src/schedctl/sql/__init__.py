"""The named SQL statements of the .sql files beside this module, one file per subject, loaded
once into a dict.

A file holds statements under `-- name: NAME` headers and pieces that several statements share
(a select list, a list of values) under `-- fragment: NAME` headers, each with one line saying
what it does. A statement or fragment names a fragment as `{NAME}`; psycopg's `sql` module
writes it in, the one way statements are composed. A placeholder that is no fragment (the
quoted name of a hook's function, `{function}`) is kept for the caller to compose the same way.
Where a statement has placeholders, a literal brace in it is written twice (`{{`), as
`sql.SQL.format` reads it.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

from psycopg import sql

_HEADER = re.compile(r"^-- (name|fragment): (\w+)\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def _load() -> tuple[dict[str, str], dict[str, str]]:
    """(statements, fragments) by name, as written in the files."""
    statements: dict[str, str] = {}
    fragments: dict[str, str] = {}
    for path in sorted(files(__name__).iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".sql"):
            continue
        parts = _HEADER.split(path.read_text(encoding="utf-8"))
        # parts = [preamble, kind1, name1, body1, kind2, name2, body2, ...]
        for kind, name, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
            if name in statements or name in fragments:
                raise ValueError(f"{path.name}: {name} is named twice")
            (fragments if kind == "fragment" else statements)[name] = body.strip()
    return statements, fragments


def _compose(text: str, fragments: dict[str, str]) -> str:
    """`text` with the fragments it names written in (recursively); other placeholders kept."""
    names = set(_PLACEHOLDER.findall(text))
    if not names:
        return text
    parts = {
        name: sql.SQL(_compose(_without_comments(fragments[name]), fragments))
        if name in fragments
        else sql.SQL("{" + name + "}")
        for name in names
    }
    return sql.SQL(text).format(**parts).as_string(None)


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def fragments() -> dict[str, str]:
    """Every fragment by name, as written."""
    return _load()[1]


def queries() -> dict[str, str]:
    """Every statement by name (comments kept; psycopg ignores them), fragments written in."""
    return {name: query(name) for name in _load()[0]}


@cache
def query(name: str) -> str:
    """The statement called `name`, fragments written in."""
    statements, shared = _load()
    return _compose(statements[name], shared)
