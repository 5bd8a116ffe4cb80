"""Spans of time as people read them ("42s", "1m 30s", "5h 12m", "2d 4h"): one wording for
the tables and lines of output and for the problems `status` reports."""

from __future__ import annotations

from datetime import timedelta


def duration(seconds: float) -> str:
    """A span of time for people: "42s", "1m 30s", "5h 12m", "2d 4h"."""
    whole = int(seconds)
    if whole < 3600 and whole % 60:
        return f"{whole // 60}m {whole % 60}s" if whole >= 60 else f"{whole}s"
    return span(timedelta(seconds=whole)) if whole else "0s"


def span(delta: timedelta) -> str:
    """A span to the minute, in two units at most and no zero ones: "2d 4h", "5h", "5h 12m",
    "12m", "0m"."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if (minutes and not days) or not parts:
        parts.append(f"{minutes}m")
    return " ".join(parts)
