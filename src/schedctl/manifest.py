"""The file `schedctl apply` reads and `schedctl export` writes: schedulers as YAML, one entry
per domain. Every scheduler field the file carries is one row of fields.FIELDS (file key,
check, default, stored value, file form).

The file is read with PyYAML: its C parser (libyaml) reads a file of 10,000 entries in a
fraction of a second, and `compose` keeps the line of every node, which names the line of
each problem. The node tree is walked here, not loaded as Python objects, so that a
duplicate key is an error instead of a silent overwrite and only plain scalars, lists and
mappings are accepted (no tags, no anchors turning into huge structures).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from schedctl import domains, validation
from schedctl.errors import InvalidInput
from schedctl.fields import FIELDS, FIELDS_BY_KEY, text

# The keys of the file's top level and of an entry besides its fields.
ORGANISATION = "organisation"
SCHEDULERS = "schedulers"
DOMAIN = "domain"
ENTRY_KEYS = (DOMAIN, ORGANISATION, *FIELDS_BY_KEY)


def _check_entry(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Rules that bind several fields of one entry: (the key a problem is about, message)."""
    problems = []
    if values["pause_reason"] is not None and values["is_enabled"]:
        problems.append(
            ("pause-reason", "pause-reason is only for a paused scheduler (enabled: false)")
        )
    if values["paused_until"] is not None and values["is_enabled"]:
        problems.append(
            ("paused-until", "paused-until is only for a paused scheduler (enabled: false)")
        )
    try:
        validation.check_spread(
            values["spread_seconds"], values["schedule_interval_hours"], "spread"
        )
    except InvalidInput as error:
        problems.append(("spread", error.message))
    return problems


# ---------------------------------------------------------------- reading a file


@dataclass(frozen=True)
class Entry:
    """One scheduler the file asks for: its domain normalised, its fields checked and
    complete (defaults filled in), by Scheduler attribute."""

    line: int  # 1-based line of the entry in the file
    index: int  # 0-based position in the list
    domain: str  # A-label
    spellings: tuple[str, ...]
    organisation: str | None  # as written in the entry (an id or a name), if it names one
    values: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)  # the line of each key given

    def where(self, source: str) -> str:
        return f"{source}:{self.line} (entry {self.index + 1}, {self.domain})"


@dataclass(frozen=True)
class Manifest:
    """A file read and checked, before any database is consulted."""

    source: str  # the file's name as given, or "<stdin>"
    organisation: str | None  # the top-level organisation, if the file names one
    entries: list[Entry] = field(default_factory=list)


# Scalar tags a file may use; anything else (a timestamp, binary, a Python object) is refused.
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:float",
}
_constructor = yaml.constructor.SafeConstructor()


class _Problems:
    """Every problem found in a file, each with its line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[tuple[int, str]] = []

    def add(self, node: yaml.Node | int, message: str) -> None:
        line = node if isinstance(node, int) else node.start_mark.line + 1
        self.found.append((line, f"{self.source}:{line}: {message}"))

    def raise_any(self) -> None:
        if self.found:
            count = len(self.found)
            summary = "1 problem" if count == 1 else f"{count} problems"
            ordered = [text for _, text in sorted(self.found, key=lambda found: found[0])]
            raise InvalidInput(f"{self.source}: {summary}, nothing applied: " + "; ".join(ordered))


def _as_written(node: yaml.Node) -> Any:
    """A scalar's text as written when YAML would make it a number or a time; else _plain."""
    if isinstance(node, yaml.ScalarNode) and node.tag in (
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:timestamp",
    ):
        return node.value
    return _plain(node)


def _plain(node: yaml.Node) -> Any:
    """A node's value: a scalar, or a list of scalars (for paths); InvalidInput otherwise."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _SCALAR_TAGS:
            raise InvalidInput(f"values tagged {node.tag} are not accepted")
        try:
            return _constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as error:
            raise InvalidInput(f"unreadable value: {error}") from None
    if isinstance(node, yaml.SequenceNode):
        items = []
        for item in node.value:
            if not isinstance(item, yaml.ScalarNode):
                raise InvalidInput("a list here holds only plain values")
            items.append(_plain(item))
        return items
    raise InvalidInput("a mapping is not accepted here")


def _pairs(node: yaml.MappingNode, problems: _Problems) -> list[tuple[str, yaml.Node]]:
    """A mapping's keys and value nodes; a key that is not text, or given twice, is a problem."""
    pairs: list[tuple[str, yaml.Node]] = []
    seen: set[str] = set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            problems.add(key_node, "a key must be text")
            continue
        key = key_node.value
        if key in seen:
            problems.add(key_node, f"{key!r} is given twice")
            continue
        seen.add(key)
        pairs.append((key, value_node))
    return pairs


def _unknown(key: str, known: Iterable[str]) -> str:
    """An unknown key, with the nearest known one (as for variables and organisations), or
    every known key when none is near."""
    import difflib

    names = list(known)
    close = difflib.get_close_matches(key.lower(), names, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key[:60]!r} (did you mean {close[0]!r}?)"
    return f"unknown key {key[:60]!r} (known keys: {', '.join(names)})"


def _organisation(node: yaml.Node, problems: _Problems) -> str | None:
    try:
        value = _plain(node)
        name = text(ORGANISATION, value).strip()
    except InvalidInput as error:
        problems.add(node, error.message)
        return None
    if not name:
        problems.add(node, "organisation must not be empty")
        return None
    return name


def _entry(node: yaml.Node, index: int, problems: _Problems) -> Entry | None:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, f"entry {index + 1} must be a mapping with a domain and its fields")
        return None
    before = len(problems.found)
    domain: str | None = None
    organisation: str | None = None
    values: dict[str, Any] = {}
    given: set[str] = set()
    lines: dict[str, int] = {}
    label = f"entry {index + 1}"
    for key, value_node in _pairs(node, problems):
        if key == DOMAIN:
            try:
                domain = domains.normalize_domain(text(DOMAIN, _plain(value_node)))
                label = f"{label} ({domain})"
            except InvalidInput as error:
                problems.add(value_node, f"{label}: {error.message}")
        elif key == ORGANISATION:
            organisation = _organisation(value_node, problems)
        elif key in FIELDS_BY_KEY:
            field_ = FIELDS_BY_KEY[key]
            given.add(key)
            lines[key] = value_node.start_mark.line + 1
            read = _as_written if field_.as_written else _plain
            try:
                values[field_.attr] = field_.parse(key, read(value_node))
            except InvalidInput as error:
                message = error.message
                if not message.startswith((key, f"--{key}")):
                    message = f"{key}: {message}"
                problems.add(value_node, f"{label}: {message}")
        else:
            problems.add(value_node, f"{label}: {_unknown(key, ENTRY_KEYS)}")
    if domain is None and len(problems.found) == before:
        problems.add(node, f"{label}: domain is required")
    for field_ in FIELDS:
        if field_.key not in given:
            if field_.required:
                problems.add(node, f"{label}: {field_.key} is required")
            else:
                values[field_.attr] = field_.default
    if len(problems.found) > before or domain is None:
        return None
    rules = _check_entry(values)
    for key, message in rules:
        problems.add(lines.get(key, line), f"{label}: {message}")
    if rules:
        return None
    return Entry(
        line=line,
        index=index,
        domain=domain,
        spellings=domains.domain_spellings(domain),
        organisation=organisation,
        values=values,
        lines=lines,
    )


def parse(text: str, source: str) -> Manifest:
    """Read and check a whole file; InvalidInput naming every problem (file and line)."""
    problems = _Problems(source)
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        root = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        problems.add(line, f"not valid YAML: {error.problem or error.context or 'unreadable'}")
        problems.raise_any()
        raise AssertionError("unreachable") from None
    except yaml.reader.ReaderError as error:  # a character YAML does not allow
        line = text[: error.position].count("\n") + 1
        problems.add(line, f"not valid YAML: character {error.character!r} is not allowed")
        problems.raise_any()
        raise AssertionError("unreachable") from None
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise InvalidInput(f"{source}: not valid YAML: {first_line}") from None
    if not isinstance(root, yaml.MappingNode):
        raise InvalidInput(
            f"{source}: the file must be a mapping with '{SCHEDULERS}:' (a list of schedulers) "
            f"and optionally '{ORGANISATION}:'"
        )
    organisation: str | None = None
    entries_node: yaml.Node | None = None
    for key, value_node in _pairs(root, problems):
        if key == ORGANISATION:
            organisation = _organisation(value_node, problems)
        elif key == SCHEDULERS:
            entries_node = value_node
        else:
            problems.add(value_node, _unknown(key, (ORGANISATION, SCHEDULERS)))
    entries: list[Entry] = []
    if entries_node is None:
        problems.add(root, f"'{SCHEDULERS}:' is missing (write '{SCHEDULERS}: []' for none)")
    elif isinstance(entries_node, yaml.SequenceNode):
        for index, item in enumerate(entries_node.value):
            entry = _entry(item, index, problems)
            if entry is not None:
                entries.append(entry)
    elif not (isinstance(entries_node, yaml.ScalarNode) and entries_node.tag.endswith(":null")):
        problems.add(entries_node, f"'{SCHEDULERS}:' must be a list")
    _duplicates(entries, organisation, problems)
    problems.raise_any()
    return Manifest(source=source, organisation=organisation, entries=entries)


def _duplicates(entries: Sequence[Entry], organisation: str | None, problems: _Problems) -> None:
    """Two entries for one domain of one organisation (as written; apply checks again once
    names are resolved to ids)."""
    first: dict[tuple[str | None, str], Entry] = {}
    for entry in entries:
        key = (entry.organisation or organisation, entry.domain)
        if key in first:
            problems.add(
                entry.line, f"{entry.domain} is listed twice (also at line {first[key].line})"
            )
        else:
            first[key] = entry


def unknown_zones(manifest: Manifest, unknown: Iterable[str]) -> InvalidInput:
    """The error for entries whose time zone the server's zone database does not know, each
    named by file and line, as `parse` names a problem."""
    names = set(unknown)
    problems = _Problems(manifest.source)
    for entry in manifest.entries:
        zone = entry.values["time_zone"]
        if zone in names:
            problems.add(
                entry.lines.get("time-zone", entry.line),
                f"entry {entry.index + 1} ({entry.domain}): "
                + validation.zone_unknown(zone, "time-zone").message,
            )
    try:
        problems.raise_any()
    except InvalidInput as error:
        return error
    raise AssertionError("no entry has an unknown zone")


# ---------------------------------------------------------------- writing a file


@dataclass(frozen=True)
class ExportedScheduler:
    """What export writes of one scheduler."""

    organisation_id: str
    domain: str
    values: dict[str, Any]  # by Scheduler attribute


_PLAIN = re.compile(r"^[A-Za-z0-9/][A-Za-z0-9/._-]*$")
_resolver = yaml.resolver.Resolver()


def _is_plain(value: Any) -> bool:
    """Whether a text reads back as itself unquoted, in a block or a flow list (not a number,
    boolean or null, no character YAML gives a meaning)."""
    return (
        isinstance(value, str)
        and _PLAIN.match(value) is not None
        and _resolver.resolve(yaml.ScalarNode, value, (True, False)) == "tag:yaml.org,2002:str"  # type: ignore[no-untyped-call]
    )


def _scalar(value: Any) -> str:
    """One value in YAML flow form, quoted only where YAML needs it."""
    if isinstance(value, list) and all(_is_plain(item) for item in value):
        return "[" + ", ".join(value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if _is_plain(value):
        return str(value)
    dumped = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30)
    return dumped.removesuffix("\n...\n").removesuffix("\n")


def dump(
    schedulers: Sequence[ExportedScheduler],
    organisations: dict[str, str],
    *,
    per_entry_organisation: bool,
) -> str:
    """A file `apply` takes back unchanged: schedulers in the given order (the caller sorts
    them), each field left out where it has create's default (so a field added later does
    not change every entry)."""
    lines = ["# schedctl: schedules as code; apply with `schedctl apply -f FILE`."]
    for org_id, name in sorted(organisations.items(), key=lambda item: (item[1], item[0])):
        lines.append(f"# organisation {org_id}: {_comment(name)}")
    if not per_entry_organisation and organisations:
        (org_id,) = organisations
        lines.append(f"{ORGANISATION}: {org_id}")
    if not schedulers:
        lines.append(f"{SCHEDULERS}: []")
        return "\n".join(lines) + "\n"
    lines.append(f"{SCHEDULERS}:")
    for scheduler in schedulers:
        shown = domains.display_domain(scheduler.domain)
        note = f"  # {_comment(shown)}" if shown != scheduler.domain else ""
        lines.append(f"  - {DOMAIN}: {_scalar(scheduler.domain)}{note}")
        if per_entry_organisation:
            lines.append(f"    {ORGANISATION}: {scheduler.organisation_id}")
        for field_ in FIELDS:
            value = scheduler.values[field_.attr]
            if field_.required or value != field_.default:
                lines.append(f"    {field_.key}: {_scalar(field_.export(value))}")
    return "\n".join(lines) + "\n"


def _comment(text: str) -> str:
    """Text safe on one comment line."""
    return json.dumps(text, ensure_ascii=False)[1:-1]
