"""Output of `apply`: its plan as lines a person reads like a diff."""

from __future__ import annotations

import json
from typing import Any

from schedctl.apply import Item, Plan
from schedctl.fields import FIELDS


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if not value or " " in value else value
    return str(value)


def plan_lines(plan: Plan, *, dry_run: bool) -> list[str]:
    """The plan: `+` created, `~` changed or adopted, `-` deleted, then what was left alone
    and a summary."""
    several = len(plan.organisations) > 1
    names = {org.id: org.name for org in plan.organisations}

    def label(item: Item) -> str:
        return (
            f"{item.domain} ({names.get(item.organisation_id, item.organisation_id)})"
            if several
            else item.domain
        )

    orgs = ", ".join(f"{org.name} ({org.id})" for org in plan.organisations)
    lines = [f"{plan.source} → {orgs}"]
    defaults = {f.key: f.export(f.default) for f in FIELDS if not f.required}
    for item in plan.created:
        fields = ", ".join(
            f"{key} {_value(value)}"
            for key, value in item.changes.items()
            if key not in defaults or value != defaults[key]
        )
        lines.append(f"+ create {label(item)}: {fields}")
    for item in plan.adopted:
        lines.append(f"~ adopt {label(item)} (made outside apply; managed by apply from now on)")
        lines += [
            f"    {k}: {_value(old)} → {_value(new)}" for k, (old, new) in item.changes.items()
        ]
    for item in plan.changed:
        lines.append(f"~ change {label(item)}")
        lines += [
            f"    {k}: {_value(old)} → {_value(new)}" for k, (old, new) in item.changes.items()
        ]
    for item in plan.deleted:
        lines.append(f"- delete {label(item)} (no longer in the file)")
    for item in plan.kept:
        lines.append(
            f"  keep {label(item)}: managed by apply, not in the file (--prune deletes it)"
        )
    if plan.prune:
        for item in plan.unmanaged:
            lines.append(f"  leave {label(item)}: not in the file, not managed by apply")
    summary = (
        f"{len(plan.created)} created, {len(plan.changed)} changed, {len(plan.adopted)} adopted, "
        f"{len(plan.deleted)} deleted, {plan.unchanged} unchanged"
    )
    if plan.kept:
        summary += f", {len(plan.kept)} managed kept"
    if plan.unmanaged:
        summary += f", {len(plan.unmanaged)} unmanaged left alone"
    if plan.in_sync:
        outcome = "nothing to do: the database is as the file says"
    elif plan.written:
        outcome = "applied"
    else:
        outcome = "dry run: nothing written" if dry_run else "not applied"
    lines.append(f"{summary}; {outcome}")
    return lines
