"""What the audit trail records of a change to a scheduler, built one way for the commands and
for `apply`: its fields as {field: [old, new]}, times in RFC 3339 UTC, in the order of
fields.CHANGEABLE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schedctl.fields import CHANGEABLE
from schedctl.models import plain

# Settings whose default says nothing on creation (an elapsed-time grid in UTC, no spread).
_UNREMARKABLE = {"time_zone": "UTC", "spread_seconds": 0}


def recorded(values: Mapping[str, Any]) -> dict[str, Any]:
    """A scheduler's changeable fields (by attribute) as the audit trail keeps them."""
    return {name: plain(values[name]) for name in CHANGEABLE}


def _meaningful(value: Any) -> bool:
    return value is not None and value != []


def created(values: Mapping[str, Any]) -> dict[str, Any]:
    """A new scheduler's settings as {field: [null, value]}, leaving out the empty ones."""
    return {
        name: [None, value]
        for name, value in recorded(values).items()
        if _meaningful(value) and _UNREMARKABLE.get(name, object()) != value
    }


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that differ as {field: [old, new]}."""
    before, after = recorded(old), recorded(new)
    return {name: [before[name], after[name]] for name in CHANGEABLE if before[name] != after[name]}


def deleted(values: Mapping[str, Any]) -> dict[str, Any]:
    """A deleted scheduler's last settings as {field: [value, null]}, leaving out the empty ones."""
    return {name: [value, None] for name, value in recorded(values).items() if _meaningful(value)}
