"""The named SQL statements of queries.sql, loaded once into a dict."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
# A statement names a part shared by several (a select list) as {{name}}.
_PART = re.compile(r"\{\{(\w+)\}\}")


@cache
def queries() -> dict[str, str]:
    """Every statement of queries.sql by name (comments kept; psycopg ignores them), with
    the shared parts it names written in."""
    text = files("schedctl").joinpath("queries.sql").read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    named = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    return {
        name: _PART.sub(lambda used: _without_comments(named[used.group(1)]), body)
        for name, body in named.items()
    }


def _without_comments(part: str) -> str:
    return "\n".join(line for line in part.splitlines() if not line.startswith("--"))


def query(name: str) -> str:
    """The statement called `name`."""
    return queries()[name]
