"""How `timeline` shows the runs to come for people: a bar chart (fitted to the terminal's
width), and tab-separated lines for scripts (its JSON document is output.json.timeline)."""

from __future__ import annotations

import os
from typing import IO, Any

from schedctl.durations import duration
from schedctl.models import rfc3339
from schedctl.timeline import HERD_FACTOR, Bucket, Timeline

# The busiest organisations named beside a bar.
_BUSIEST = 3
_LABEL = 11  # "Mon 14:05  "
_COUNT = 7
_MARK = 2  # " !" on a herd


def lines(found: Timeline) -> list[str]:
    """Plain output: a header, then one tab-separated line per bucket."""
    out = ["start\truns\therd\torganisations"]
    for bucket in found.buckets:
        out.append(
            f"{rfc3339(bucket.start)}\t{bucket.runs}\t{'yes' if bucket.herd else 'no'}\t"
            + ",".join(f"{org}={runs}" for org, runs in _busiest(bucket, len(bucket.organisations)))
        )
    return out


def _busiest(bucket: Bucket, limit: int) -> list[tuple[Any, int]]:
    ranked = sorted(bucket.organisations.items(), key=lambda item: (-item[1], str(item[0])))
    return ranked[:limit]


def _label(bucket: Bucket, found: Timeline) -> str:
    daily = found.bucket.total_seconds() % 86400 == 0
    return bucket.start.strftime("%a %d %b" if daily else "%a %H:%M")


def _organisations_text(bucket: Bucket, found: Timeline, room: int) -> str:
    ranked = _busiest(bucket, _BUSIEST)
    parts = [f"{found.organisation_names.get(org, str(org))} {runs}" for org, runs in ranked]
    more = len(bucket.organisations) - len(ranked)
    text = ", ".join(parts) + (f", +{more}" if more > 0 else "")
    return text if len(text) <= room else text[: max(room - 1, 0)] + "…"


def chart(found: Timeline, *, width: int | None = None, out: IO[str] | None = None) -> None:
    """A bar per bucket with its count and busiest organisations, herds marked, and a closing
    summary; every line fits `width` (the terminal's, at most as it is)."""
    from rich.console import Console
    from rich.text import Text

    console = Console(
        file=out,
        width=width,
        no_color=bool(os.environ.get("NO_COLOR")),
        highlight=False,
        soft_wrap=False,
    )
    total_width = console.width
    organisations_room = max(12, total_width * 3 // 10)
    bar_room = max(8, total_width - _LABEL - _COUNT - _MARK - 1 - organisations_room)
    highest = max((bucket.runs for bucket in found.buckets), default=0)
    console.print(
        Text(
            f"Runs to start in the next {duration(_seconds(found))}, per "
            f"{duration(found.bucket.total_seconds())} (UTC)",
            style="bold",
        )
    )
    for bucket in found.buckets:
        filled = round(bar_room * bucket.runs / highest) if highest else 0
        if bucket.runs and not filled:
            filled = 1
        line = Text(_label(bucket, found).ljust(_LABEL))
        line.append("█" * filled, style="red" if bucket.herd else "cyan")
        line.append(" " * (bar_room - filled))
        line.append(str(bucket.runs).rjust(_COUNT), style="bold" if bucket.herd else "")
        line.append(" !" if bucket.herd else "  ", style="bold red")
        line.append(" " + _organisations_text(bucket, found, organisations_room), style="dim")
        line.truncate(total_width)
        console.print(line, no_wrap=True, overflow="crop")
    for text in summary(found):
        console.print(Text(text))  # wrapped at the width


def _seconds(found: Timeline) -> float:
    return (found.until - found.now).total_seconds()


def summary(found: Timeline) -> list[str]:
    """The lines under the chart: the total and mean, and where the herds are."""
    out = [f"{found.total} runs; mean {found.mean:.1f} per bucket"]
    if found.herds:
        starts = ", ".join(_label(bucket, found) for bucket in found.herds)
        out.append(f"! herds (more than {HERD_FACTOR} times the mean): {starts}")
        out.append("  `schedctl update REF --spread 1h` spreads a scheduler's runs over a window")
        out.append("  and flattens them")
    return out
