"""The one description of a scheduler's fields: for each, its key in a file (the option of
`create` without its dashes), its column and Scheduler attribute (also its name in the audit
trail and in JSON), how a value is checked, its default (what `create` and a file entry
that leaves it out get), where it is stored, and its form in a file. The commands, `apply`
and `export`, and the audit trail all read it from here: a new field is one more row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schedctl import validation
from schedctl.errors import InvalidInput
from schedctl.models import NO_WINDOW, Overlap, paths_from_db, paths_to_db, rfc3339


def kind(value: Any) -> str:
    """A value read from a file, described for a message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return f"the text {value[:60]!r}"
    return f"{type(value).__name__} {str(value)[:60]}"


def text(key: str, value: Any) -> str:
    """A value read from a file that must be text."""
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be text, got {kind(value)}")
    return value


def _integer(key: str, value: Any) -> int:
    # bool is an int in Python; `concurrency: yes` is not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{key} must be a whole number, got {kind(value)}")
    return value


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} must be true or false, got {kind(value)}")
    return value


def _text_list(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(f"{key} must be a list of paths, got {kind(value)}")
    return value


def _every(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # `every: 6` as create takes `--every 6`
    return validation.parse_interval(text(key, value), key)


def _overlap(key: str, value: Any) -> str:
    policy = text(key, value).strip().lower()
    try:
        return Overlap(policy).value
    except ValueError:
        raise InvalidInput(f"{key} must be one of replace, skip or allow, got {value!r}") from None


def _ranged(bounds: tuple[int, int]) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        return validation.check_range(key, _integer(key, value), *bounds)

    return check


def _paths(key: str, value: Any) -> list[str]:
    return validation.normalize_paths(key, _text_list(key, value))


def _reason(key: str, value: Any) -> str | None:
    return None if value is None else validation.parse_reason(text(key, value))


def _hours(hours: int) -> str:
    return f"{hours}h"


def _same(value: Any) -> Any:
    return value


def _at(key: str, value: Any) -> str | None:
    # HH:MM as `--at` takes it; HH:MM:SS too, the form of a time of day kept to the second
    # (`create --time-zone` without `--at`), so that export reads back.
    if value is None:
        return None
    at = validation.parse_time_of_day(text(key, value), key, seconds=True)
    return at.strftime("%H:%M:%S" if at.second else "%H:%M")


def _zone(key: str, value: Any) -> str:
    return validation.parse_zone(text(key, value), key)


def _spread(key: str, value: Any) -> int:
    return validation.parse_spread(text(key, value), option=key)


def _catchup_window(key: str, value: Any) -> int | None:
    if value is None:
        return None
    seconds = validation.parse_catchup_window(text(key, value), key)
    return None if seconds == NO_WINDOW else seconds


def _paused_until(key: str, value: Any) -> datetime | None:
    # A file says when, never how long from now: a duration would be a new time at each apply.
    if value is None:
        return None
    when = validation.parse_until(text(key, value), key)
    if isinstance(when, timedelta):
        raise InvalidInput(
            f"{key} must be a time such as 2030-01-31T06:00:00Z (a file gives the time a pause "
            f"ends, not a duration from now), got {value!r}"
        )
    return when


def _duration(seconds: int | None) -> str | None:
    """Seconds as the shortest duration `--spread` and `--catchup-window` read back exactly."""
    if seconds is None:
        return None
    parts = []
    rest = seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


# Where a field's column lives: the host's schedulers row (the seed's columns), or
# schedctl.scheduler_settings beside it (everything schedctl adds).
HOST = "schedulers"
SETTINGS = "settings"


@dataclass(frozen=True)
class Field:
    """One scheduler field as the file carries it. Adding a field: a row of FIELDS, and its
    column in the queries apply_current, export_schedulers and apply_settings_write (or, for
    a seed column, apply_schedulers_insert and apply_schedulers_update)."""

    key: str  # the key in the file: the option of `create` without its dashes
    attr: str  # the column, Scheduler attribute and audit name
    parse: Callable[[str, Any], Any]  # (key, YAML value) -> value; InvalidInput if bad
    default: Any  # the value of a key left out (create's default)
    export: Callable[[Any], Any] = _same  # value -> its form in the file
    stored_in: str = HOST  # HOST or SETTINGS
    to_db: Callable[[Any], Any] = _same  # value -> the column's value as the queries take it
    from_db: Callable[[Any], Any] = _same  # the column's value as read -> value
    required: bool = False
    # Read the value as written, not as YAML would type it: `at: 12:30` is a base-60 number
    # to YAML 1.1, and `paused-until: 2030-01-31T06:00:00Z` a timestamp.
    as_written: bool = False


FIELDS: tuple[Field, ...] = (
    Field("every", "schedule_interval_hours", _every, None, _hours, required=True),
    Field("overlap", "overlap_policy", _overlap, Overlap.REPLACE.value, stored_in=SETTINGS),
    Field("concurrency", "concurrency", _ranged(validation.CONCURRENCY), 20),
    Field("find-links", "find_links", _boolean, True),
    Field("max-pages", "max_pages", _ranged(validation.MAX_PAGES), 0),
    Field("include", "include_paths", _paths, [], to_db=paths_to_db, from_db=paths_from_db),
    Field("exclude", "exclude_paths", _paths, [], to_db=paths_to_db, from_db=paths_from_db),
    Field("required-workers", "required_workers", _ranged(validation.REQUIRED_WORKERS), 1),
    Field("enabled", "is_enabled", _boolean, True),
    Field("pause-reason", "pause_reason", _reason, None, stored_in=SETTINGS),
    Field(
        "paused-until", "paused_until", _paused_until, None, _time, SETTINGS, _time, as_written=True
    ),
    Field("at", "at", _at, None, stored_in=SETTINGS, as_written=True),
    Field("time-zone", "time_zone", _zone, "UTC", stored_in=SETTINGS, as_written=True),
    Field("spread", "spread_seconds", _spread, 0, _duration, SETTINGS, as_written=True),
    Field(
        "catchup-window",
        "catchup_window_seconds",
        _catchup_window,
        None,
        _duration,
        SETTINGS,
        as_written=True,
    ),
)
FIELDS_BY_KEY = {f.key: f for f in FIELDS}


def from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a scheduler as a query row holds them (columns named by `attr`)."""
    return {f.attr: f.from_db(row[f.attr]) for f in FIELDS}


def to_columns(values: Mapping[str, Any], stored_in: str) -> dict[str, Any]:
    """The columns of one table (HOST or SETTINGS) for a scheduler's fields."""
    return {f.attr: f.to_db(values[f.attr]) for f in FIELDS if f.stored_in == stored_in}


# The fields an operator changes, in the order the audit trail shows them: every field, and
# the next run, which the schedule moves.
CHANGEABLE = (
    "schedule_interval_hours",
    "next_run_at",
    "is_enabled",
    "pause_reason",
    "overlap_policy",
    "concurrency",
    "find_links",
    "max_pages",
    "include_paths",
    "exclude_paths",
    "required_workers",
    "at",
    "time_zone",
    "spread_seconds",
    "catchup_window_seconds",
    "paused_until",
)
assert set(CHANGEABLE) == {f.attr for f in FIELDS} | {"next_run_at"}

# The defaults of `create` (and of a file entry that leaves a field out), by attribute.
DEFAULTS = {f.attr: f.default for f in FIELDS}
