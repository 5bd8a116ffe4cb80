"""Every named SQL statement is used by schedctl's code, and every statement name the code
passes exists; a fragment (a shared piece of statements, not a statement) is used by some
statement. Read from the source, without a database.

A name counts as used where it is written as a literal argument of a function that takes a
statement name: db's helpers (fetch_one, fetch_all, execute, records, ...), sql.query, and
any function of src/ that hands one of its own parameters on to such a function (found here,
so that a new helper needs no change to this test). A name chosen at run time from a table
is listed in INDIRECT with the table it comes from; any other statement name that is not a
literal fails the test, so none goes unchecked.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from schedctl import migrate
from schedctl.sql import queries

SRC = Path(__file__).parent.parent / "src" / "schedctl"

# The functions that take a statement name, by (module, function): the position of the name
# among the positional arguments, and its keyword.
_SEEDS: dict[tuple[str, str], tuple[int, str]] = {
    **{
        ("db", helper): (1, "name")
        for helper in (
            "fetch_one",
            "fetch_all",
            "fetch_optional",
            "fetch_tuples",
            "execute",
            "execute_for_rows",
            "records",
            "record",
            "optional_record",
        )
    },
    ("sql", "query"): (0, "name"),
}

# Statement names the code chooses at run time from a table, by the place that passes them
# (module and enclosing function): where the names come from.
INDIRECT: dict[tuple[str, str], Callable[[], set[str]]] = {
    # what schedctl 0.1 left in the host's tables, and the statement that removes each
    ("migrate", "release"): lambda: {statement for statement, _ in migrate._LEGACY.values()},
}

_HEADER = re.compile(r"^-- (name|fragment): (\w+)\s*$", re.MULTILINE)


@dataclass
class _Uses:
    literal: dict[str, list[str]] = field(default_factory=dict)  # name -> where
    indirect: set[tuple[str, str]] = field(default_factory=set)
    unresolved: list[str] = field(default_factory=list)


# The loader itself hands every name on (sql.queries), not a use of one.
_LOADER = SRC / "sql" / "__init__.py"


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        if path == _LOADER:
            continue
        module = path.stem if path.stem != "__init__" else path.parent.name
        yield module, path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _imports(module: str, tree: ast.Module) -> dict[str, tuple[str, str | None]]:
    """Local name -> (schedctl module, function or None for the module itself)."""
    names: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "schedctl":
                continue
            for alias in node.names:
                local = alias.asname or alias.name
                if len(parts) == 1:  # from schedctl import db
                    names[local] = (alias.name, None)
                else:  # from schedctl.db import fetch_one
                    names[local] = (parts[-1], alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "schedctl" and len(parts) > 1 and alias.asname:
                    names[alias.asname] = (parts[-1], None)
    return names


def _callee(
    call: ast.Call, module: str, imports: dict[str, tuple[str, str | None]]
) -> tuple[str, str] | None:
    """The (module, function) a call names, for calls of schedctl's own functions."""
    func = call.func
    if isinstance(func, ast.Name):
        imported = imports.get(func.id)
        if imported is not None and imported[1] is not None:
            return imported[0], imported[1]
        return module, func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        imported = imports.get(func.value.id)
        if imported is not None and imported[1] is None:
            return imported[0], func.attr
    return None


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position and not any(
        isinstance(arg, ast.Starred) for arg in call.args[: position + 1]
    ):
        return call.args[position]
    return next((kw.value for kw in call.keywords if kw.arg == keyword), None)


def _literals(node: ast.expr) -> list[str] | None:
    """The names a literal argument (or a choice between literals) gives; None otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literals(node.body), _literals(node.orelse)
        if body is not None and orelse is not None:
            return body + orelse
    return None


def _own_calls(body: list[ast.stmt]) -> list[ast.Call]:
    """The calls made in `body`, not in the functions it defines."""
    calls: list[ast.Call] = []
    pending: list[ast.AST] = list(body)
    while pending:
        child = pending.pop()
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(child, ast.Call):
            calls.append(child)
        pending.extend(ast.iter_child_nodes(child))
    return calls


def _functions(tree: ast.Module) -> Iterator[tuple[str, list[str], list[ast.Call]]]:
    """Every function (and the module's own top level, as "<module>"): its name, its
    parameters, and the calls made in its own body."""
    yield "<module>", [], _own_calls(tree.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = [*node.args.posonlyargs, *node.args.args]
            yield node.name, [arg.arg for arg in arguments], _own_calls(node.body)


def _statement_uses() -> _Uses:
    modules = [(module, path, tree, _imports(module, tree)) for module, path, tree in _modules()]
    takers = dict(_SEEDS)
    # The functions that hand a parameter on as a statement name take one too (to a fixed
    # point: a helper of a helper).
    grown = True
    while grown:
        grown = False
        for module, _, tree, imports in modules:
            for function, parameters, calls in _functions(tree):
                if (module, function) in takers or (module, function) in INDIRECT:
                    continue
                for call in calls:
                    callee = _callee(call, module, imports)
                    if callee not in takers:
                        continue
                    argument = _argument(call, *takers[callee])
                    if isinstance(argument, ast.Name) and argument.id in parameters:
                        takers[module, function] = (
                            parameters.index(argument.id),
                            argument.id,
                        )
                        grown = True
                        break
    uses = _Uses()
    for module, path, tree, imports in modules:
        for function, parameters, calls in _functions(tree):
            for call in calls:
                callee = _callee(call, module, imports)
                if callee not in takers:
                    continue
                where = f"{path.relative_to(SRC.parent)}:{call.lineno}"
                argument = _argument(call, *takers[callee])
                names = _literals(argument) if argument is not None else None
                if names is not None:
                    for name in names:
                        uses.literal.setdefault(name, []).append(where)
                elif (module, function) in INDIRECT:
                    uses.indirect.add((module, function))
                elif (
                    isinstance(argument, ast.Name)
                    and argument.id in parameters
                    and (module, function) in takers
                ):
                    continue  # a helper handing its own parameter on: its callers count
                else:
                    uses.unresolved.append(f"{where}: {ast.unparse(call)}")
    return uses


def _sql_sources() -> str:
    """The text of every SQL file of the package that holds named statements."""
    package = files("schedctl")
    texts = []
    if package.joinpath("queries.sql").is_file():
        texts.append(package.joinpath("queries.sql").read_text(encoding="utf-8"))
    folder = package.joinpath("sql")
    if folder.is_dir():
        texts += [
            entry.read_text(encoding="utf-8")
            for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
            if entry.name.endswith(".sql")
        ]
    return "\n".join(texts)


def _blocks() -> dict[str, tuple[str, str]]:
    """Every block of the SQL files by name: whether it is a statement or a fragment, and
    its text as written."""
    parts = _HEADER.split(_sql_sources())
    # parts = [preamble, kind1, name1, body1, kind2, name2, body2, ...]
    return {
        name: (kind, body)
        for kind, name, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True)
    }


def _referenced(name: str, body: str) -> bool:
    """Whether a statement's text includes the fragment `name` ({{name}} or {name})."""
    return re.search(r"\{\{?" + re.escape(name) + r"\}?\}", body) is not None


def _fragments(blocks: dict[str, tuple[str, str]]) -> set[str]:
    """The fragments: declared as such, or (the older form) included by another statement
    as {{name}}."""
    return {
        name
        for name, (kind, _) in blocks.items()
        if kind == "fragment"
        or any(other != name and "{{" + name + "}}" in body for other, (_, body) in blocks.items())
    }


def test_every_statement_name_the_code_passes_exists() -> None:
    uses = _statement_uses()
    assert not uses.unresolved, (
        "statement names that are neither literal nor listed in INDIRECT:\n"
        + "\n".join(uses.unresolved)
    )
    named = set(queries())
    missing = {name: where for name, where in sorted(uses.literal.items()) if name not in named}
    assert not missing, f"the code uses statements that do not exist: {missing}"
    for place, names in INDIRECT.items():
        assert place in uses.indirect, f"INDIRECT lists {place}, which passes no name now"
        assert names() <= named, f"{place} uses statements that do not exist: {names() - named}"


def test_every_named_statement_is_used() -> None:
    uses = _statement_uses()
    used = set(uses.literal)
    for place in uses.indirect:
        used |= INDIRECT[place]()
    fragments = _fragments(_blocks())
    unused = sorted(set(queries()) - used - fragments)
    assert not unused, f"named statements no code uses: {unused}"


def test_every_fragment_is_used_by_a_statement() -> None:
    blocks = _blocks()
    assert set(queries()) - {
        name for name, (kind, _) in blocks.items() if kind == "fragment"
    } <= set(blocks), "the SQL files read here miss statements the loader knows"
    unused = sorted(
        name
        for name in _fragments(blocks)
        if not any(other != name and _referenced(name, body) for other, (_, body) in blocks.items())
    )
    assert not unused, f"fragments no statement includes: {unused}"
