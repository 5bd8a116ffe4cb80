"""Checks and normalisation of user input: pure functions, no database, no I/O."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

from schedctl.errors import InvalidInput
from schedctl.models import NO_WINDOW, START_NOW, Start

if TYPE_CHECKING:
    pass

# Ranges (inclusive) of the numeric options; every number is checked before anything is written.
INT32_MAX = 2_147_483_647
CONCURRENCY = (1, 100)
MAX_PAGES = (0, INT32_MAX)
REQUIRED_WORKERS = (1, 100)
HISTORY_LIMIT = (1, 1000)
OFFSET = (0, INT32_MAX)
NEXT_RUNS = (1, 1000)
TICK_LIMIT = (1, INT32_MAX)

MAX_PATH_LENGTH = 2048
MAX_REASON_LENGTH = 500
MAX_ORG_NAME_LENGTH = 200
MAX_DURATION = timedelta(days=3650)

# Names that can never be a public crawl target (RFC 2606, RFC 6761, RFC 6762, ICANN .internal).

_INTERVALS = {
    "6h": 6,
    "12h": 12,
    "24h": 24,
    "48h": 48,
    "6": 6,
    "12": 12,
    "24": 24,
    "48": 48,
    "1d": 24,
    "2d": 48,
}

# Unicode categories refused in every kind of input: control, format, surrogate (undecodable
# argv bytes), line and paragraph separators. Paths and domains also refuse every space.
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# IDNA 2008 allows the zero-width joiners in context (CONTEXTJ); the idna package judges them.
_DURATION = re.compile(
    r"^(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?$",
    re.IGNORECASE,
)
_BARE_NUMBER = re.compile(r"^[0-9]+$")
_TIME_OF_DAY = re.compile(r"^(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2}))?$")
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*$")


def show(value: str, limit: int = 80) -> str:
    """Quote a user value for a one-line message: control characters escaped, long values cut."""
    if len(value) > limit:
        value = value[:limit] + "…"
    return repr(value)


def is_control(char: str) -> bool:
    return unicodedata.category(char) in _CONTROL_CATEGORIES


def is_space(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Zs"


def _reject_control(what: str, value: str) -> None:
    for char in value:
        if is_control(char):
            raise InvalidInput(
                f"{what} {show(value)} contains a control character (U+{ord(char):04X})"
            )


# --- scheduler template ------------------------------------------------------------------------


def parse_interval(raw: str, option: str = "--every") -> int:
    """Return the hours of an `--every` value: 6h, 12h, 24h, 48h (also 6, 12, 24, 48, 1d, 2d);
    messages name `option` (a file's key)."""
    hours = _INTERVALS.get(raw.strip().lower())
    if hours is None:
        choices = "6h, 12h, 24h, 48h (or 6, 12, 24, 48, 1d, 2d)"
        raise InvalidInput(f"{option} must be one of {choices}, got {show(raw)}")
    return hours


def check_range(option: str, value: int, low: int, high: int) -> int:
    """Return `value` if low <= value <= high, else raise InvalidInput naming `option`."""
    if not low <= value <= high:
        raise InvalidInput(f"{option} must be between {low} and {high} (got {value})")
    return value


def normalize_paths(option: str, values: list[str]) -> list[str]:
    """Return include/exclude paths trimmed and without duplicates (first occurrence kept)."""
    paths: list[str] = []
    for raw in values:
        path = raw.strip()
        if not path.startswith("/"):
            raise InvalidInput(f"{option} {show(raw)} must start with '/'")
        if len(path) > MAX_PATH_LENGTH:
            raise InvalidInput(
                f"{option} {show(raw)} is too long ({len(path)} characters; "
                f"at most {MAX_PATH_LENGTH})"
            )
        for char in path:
            if is_space(char) or is_control(char):
                raise InvalidInput(
                    f"{option} {show(raw)} contains whitespace or a control character "
                    f"(U+{ord(char):04X})"
                )
        if path not in paths:
            paths.append(path)
    return paths


# --- times ---------------------------------------------------------------------------------


def parse_when(raw: str) -> Start:
    """Return `--start-at` as an aware UTC datetime, or START_NOW (the database's now())."""
    text = raw.strip()
    if text.lower() == "now":
        return START_NOW
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--start-at must be 'now' or an ISO 8601 time such as 2025-01-31T06:00:00Z, "
            f"got {show(raw)}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        when = when.astimezone(timezone.utc)
    except OverflowError:
        raise InvalidInput(f"--start-at {show(raw)} is out of range") from None
    if not 1970 <= when.year <= 9999:
        raise InvalidInput(f"--start-at {show(raw)} must fall between the years 1970 and 9999")
    return when


def parse_duration(raw: str, option: str = "--max-lag") -> timedelta:
    """Return a duration like `30s`, `5m`, `2h`, `1d` or `1h30m` (`0` alone needs no unit);
    messages name `option`. A number without a unit is refused: whether `5` meant seconds,
    minutes or hours (as `--every 6` does) is the reader's guess."""
    text = raw.strip()
    if not text:
        raise InvalidInput(f"{option} must not be empty")
    if text.startswith("-"):
        raise InvalidInput(f"{option} must not be negative, got {show(raw)}")
    if _BARE_NUMBER.match(text):
        if int(text):
            number = int(text)
            raise InvalidInput(
                f"{option} needs a unit, got {show(raw)}: did you mean {number}m / {number}h? "
                f"(or {number}s, {number}d)"
            )
        seconds = 0
    else:
        match = _DURATION.match(text)
        if match is None or not any(match.groups()):
            raise InvalidInput(
                f"{option} must be a duration like 30s, 5m, 2h, 1d or 1h30m, got {show(raw)}"
            )
        parts = {unit: int(count) if count else 0 for unit, count in match.groupdict().items()}
        seconds = parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    # Compare as an int first: a huge count would overflow timedelta.
    if seconds > MAX_DURATION.total_seconds():
        raise InvalidInput(f"{option} {show(raw)} is too large (at most 3650 days)")
    return timedelta(seconds=seconds)


def parse_time_of_day(raw: str, option: str = "--at", *, seconds: bool = False) -> time:
    """Return a wall-clock time of day written HH:MM (24-hour clock, 00:00 to 23:59); with
    `seconds`, also HH:MM:SS (the form `show` gives a time of day kept to the second)."""
    match = _TIME_OF_DAY.match(raw.strip())
    if (
        match is None
        or int(match["h"]) > 23
        or int(match["m"]) > 59
        or (match["s"] is not None and (not seconds or int(match["s"]) > 59))
    ):
        raise InvalidInput(
            f"{option} must be a time of day HH:MM between 00:00 and 23:59, got {show(raw)}"
        )
    return time(int(match["h"]), int(match["m"]), int(match["s"] or 0))


def parse_zone(raw: str, option: str = "--time-zone") -> str:
    """Return an IANA time zone name as written (`Europe/London`, `UTC`). Only its form is
    checked here; whether the database's zone database knows it is checked on connecting
    (zone_unknown), as that is the database tick reads."""
    name = raw.strip()
    if (
        not _ZONE_NAME.match(name)
        or len(name) > 64
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise InvalidInput(
            f"{option} must be an IANA time zone name such as Europe/London or UTC, got {show(raw)}"
        )
    return name


def zone_unknown(name: str, option: str = "--time-zone") -> InvalidInput:
    """The error for a zone name the database's zone database does not know."""
    return InvalidInput(
        f"{option} {show(name)} is not a time zone of the database's zone database "
        + (
            f"(did you mean {nearest}?)"
            if (nearest := nearest_zone(name))
            else "(an IANA name such as Europe/London, America/New_York or UTC)"
        )
    )


def nearest_zone(name: str) -> str | None:
    """The IANA zone name nearest to a misspelt one (from the zone data Python reads, which
    names the same zones as the server's), or None."""
    import difflib
    import zoneinfo

    try:
        zones = zoneinfo.available_timezones()
    except Exception:  # no zone data here: no suggestion
        return None
    by_lower = {zone.lower(): zone for zone in zones}
    close = difflib.get_close_matches(name.strip().lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[close[0]] if close else None


def parse_spread(raw: str, interval_hours: int | None = None, option: str = "--spread") -> int:
    """Return a spread window in seconds (0: none), at most the interval when it is known
    (check_spread checks it against the interval otherwise)."""
    seconds = int(parse_duration(raw, option).total_seconds())
    if interval_hours is not None:
        check_spread(seconds, interval_hours, option)
    return seconds


def span_text(seconds: int) -> str:
    """A whole number of seconds as an option's duration is written, without zero units:
    "25h", "1h30m", "1m30s"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{count}{unit}" for count, unit in parts if count) or "0s"


def check_spread(seconds: int, interval_hours: int, option: str = "--spread") -> int:
    """Refuse a spread window longer than the interval."""
    if seconds > interval_hours * 3600:
        raise InvalidInput(
            f"{option} must be at most the interval ({interval_hours}h), got {span_text(seconds)}"
        )
    return seconds


def parse_catchup_window(raw: str, option: str = "--catchup-window") -> int:
    """Return a catch-up window in seconds, at least a minute (tick runs once a minute), or
    NO_WINDOW for `none`."""
    if raw.strip().lower() in ("none", "off"):
        return NO_WINDOW
    seconds = int(parse_duration(raw, option).total_seconds())
    if seconds < 60:
        raise InvalidInput(
            f"{option} must be at least 1 minute (tick runs once a minute), got {show(raw)}"
        )
    return seconds


def parse_time_or_duration(raw: str, option: str) -> datetime | timedelta:
    """An ISO 8601 time (UTC unless it has an offset) or a duration (`2h`, `1d`)."""
    text = raw.strip()
    if text and (text[0].isdigit() and ("-" in text or "T" in text.upper())):
        try:
            when = parse_when(text)
        except InvalidInput:
            raise InvalidInput(
                f"{option} must be an ISO 8601 time such as 2025-01-31T06:00:00Z or a "
                f"duration such as 2h or 1d, got {show(raw)}"
            ) from None
        assert isinstance(when, datetime)
        return when
    return parse_duration(text, option)


def parse_until(raw: str, option: str = "--until") -> datetime | timedelta:
    """Return when a pause ends: an ISO 8601 time (UTC unless it has an offset) or a duration
    from now (`2h`, `1d`). Whether it is in the future is checked by the database's clock."""
    if raw.strip().lower() == "now":
        raise InvalidInput(f"{option} must be in the future, got {show(raw)}")
    until = parse_time_or_duration(raw, option)
    if not until:  # a zero duration
        raise InvalidInput(f"{option} must be in the future, got {show(raw)}")
    return until


# --- free text -----------------------------------------------------------------------------


def parse_reason(raw: str | None) -> str | None:
    """Return a trimmed pause reason, None when absent or empty."""
    if raw is None:
        return None
    reason = raw.strip()
    if not reason:
        return None
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(
            f"--reason is too long ({len(reason)} characters; at most {MAX_REASON_LENGTH})"
        )
    _reject_control("--reason", reason)
    return reason


def parse_org_name(raw: str) -> str:
    """Return a trimmed organisation name of 1-200 characters without control characters."""
    name = raw.strip()
    if not name:
        raise InvalidInput("organisation name must not be empty")
    if len(name) > MAX_ORG_NAME_LENGTH:
        raise InvalidInput(
            f"organisation name {show(name)} is too long ({len(name)} characters; "
            f"at most {MAX_ORG_NAME_LENGTH})"
        )
    _reject_control("organisation name", name)
    return name
