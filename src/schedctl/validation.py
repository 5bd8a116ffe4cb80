"""Checks and normalisation of user input: pure functions, no database, no I/O."""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
import uuid
from datetime import datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

from schedctl.errors import InvalidInput
from schedctl.models import NO_WINDOW, START_NOW, Overlap, Ref, SchedulerChanges, Start

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

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
RESERVED_NAMES = frozenset({"localhost", "local", "internal", "test", "example", "invalid"})

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
_IDNA_JOINERS = frozenset({"\u200c", "\u200d"})

_SCHEME = re.compile(r"^https?://", re.IGNORECASE)
_OTHER_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_DURATION = re.compile(
    r"^(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?$",
    re.IGNORECASE,
)
_BARE_NUMBER = re.compile(r"^[0-9]+$")
_TIME_OF_DAY = re.compile(r"^(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2}))?$")
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*$")


def _show(value: str, limit: int = 80) -> str:
    """Quote a user value for a one-line message: control characters escaped, long values cut."""
    if len(value) > limit:
        value = value[:limit] + "…"
    return repr(value)


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in _CONTROL_CATEGORIES


def _is_space(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Zs"


def _reject_control(what: str, value: str) -> None:
    for char in value:
        if _is_control(char):
            raise InvalidInput(
                f"{what} {_show(value)} contains a control character (U+{ord(char):04X})"
            )


# --- domains -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _public_suffix_list() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    # The bundled list holds both the ICANN and the private section (only_icann=False);
    # accept_unknown=False refuses top-level labels the list does not know.
    return PublicSuffixList(accept_unknown=False, only_icann=False)


def _looks_like_ip(host: str) -> bool:
    if host.startswith("["):
        return True  # only an IPv6 literal is written in brackets (`[::1]`, `[::1]:8080`)
    candidate = host
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        pass
    else:
        return True
    # A URL parser reads a name whose last label is numeric as IPv4 (`127.1`, `0x7f.0.0.1`).
    last_label = candidate.rstrip(".").rsplit(".", 1)[-1].lower()
    return bool(last_label) and _NUMERIC_LABEL.match(last_label) is not None


def normalize_domain(raw: str) -> str:
    """Return the normalised A-label form of a domain, or raise InvalidInput."""
    import idna

    name = raw.strip()
    for char in name:
        if _is_space(char) or (_is_control(char) and char not in _IDNA_JOINERS):
            raise InvalidInput(
                f"domain {_show(raw)} contains whitespace or a control character "
                f"(U+{ord(char):04X})"
            )
    name = _SCHEME.sub("", name, count=1)
    if _OTHER_SCHEME.match(name):
        raise InvalidInput(f"domain {_show(raw)}: only http:// and https:// may prefix a domain")
    if name[:4].lower() == "www.":
        name = name[4:]
    if name.endswith("/"):
        name = name[:-1]
    if name.endswith("."):
        name = name[:-1]
    name = name.lower()

    if not name:
        raise InvalidInput(f"domain {_show(raw)} is empty")
    if "@" in name:
        raise InvalidInput(f"domain {_show(raw)} must not contain user info ('…@')")
    if any(char in name for char in "/?#"):
        raise InvalidInput(f"domain {_show(raw)} must not contain a path, query or fragment")
    if _looks_like_ip(name):
        raise InvalidInput(f"domain {_show(raw)} is an IP address; a host name is required")
    if ":" in name:
        raise InvalidInput(f"domain {_show(raw)} must not contain a port")

    try:
        a_label = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise InvalidInput(f"domain {_show(raw)} is not a valid host name: {error}") from None

    # UTS 46 maps look-alikes (full-width digits and dots), so check the encoded name again.
    if _looks_like_ip(a_label):
        raise InvalidInput(f"domain {_show(raw)} is an IP address; a host name is required")
    if len(a_label) > 253:
        raise InvalidInput(
            f"domain {_show(raw)} is too long ({len(a_label)} characters encoded; at most 253)"
        )
    labels = a_label.split(".")
    for label in labels:
        if not _LDH_LABEL.match(label):
            raise InvalidInput(
                f"domain {_show(raw)} is not a valid host name: label {label!r} must be 1-63 "
                "letters, digits or hyphens, not starting or ending with a hyphen"
            )
    if labels[-1] in RESERVED_NAMES:
        raise InvalidInput(f"domain {_show(raw)} uses the reserved name {labels[-1]!r}")

    psl = _public_suffix_list()
    if psl.publicsuffix(a_label) is None:
        raise InvalidInput(
            f"domain {_show(raw)} does not end in a suffix on the Public Suffix List"
        )
    if psl.privatesuffix(a_label) is None:
        raise InvalidInput(
            f"domain {_show(raw)} is itself a public suffix; give a name registered under it"
        )
    return a_label


def domain_spellings(a_label: str) -> tuple[str, ...]:
    """The spellings of a normalised domain that the host may have stored, as the database's
    lower() reads them: the A-label and the Unicode form (the queries also ignore letter case
    and a trailing dot). A database whose LC_CTYPE is C folds only ASCII letters, so a name
    typed with capital non-ASCII letters (MÜLLER.de) reads there as mÜller.de: that form too."""
    unicode_form = display_domain(a_label).lower()
    c_locale_form = "".join(ch.upper() if ord(ch) > 127 else ch for ch in unicode_form)
    return tuple(dict.fromkeys((a_label, unicode_form, c_locale_form)))


# A unique leading part of a scheduler id: at least 8 hex digits (hyphens where the id has them).
MIN_ID_PREFIX = 8
_ID_PREFIX = re.compile(r"^[0-9a-f-]+$", re.IGNORECASE)


def parse_ref(raw: str) -> Ref:
    """A REF argument: a scheduler id, the first 8 or more hex digits of one, or a domain
    (any form `create` accepts)."""
    text = raw.strip()
    try:
        return Ref(text=text, id=uuid.UUID(text))
    except ValueError:
        pass
    digits = text.replace("-", "").lower()
    if _ID_PREFIX.match(text) and MIN_ID_PREFIX <= len(digits) < 32:
        return Ref(text=text, prefix=digits)
    try:
        return Ref(text=text, spellings=domain_spellings(normalize_domain(text)))
    except InvalidInput:
        return Ref(text=text)  # neither: it matches nothing


def short_id_hint(text: str) -> str:
    """For a REF that found nothing and looks like the start of an id, but is shorter than
    an id prefix may be: the words that say so (else "")."""
    digits = text.replace("-", "")
    if _ID_PREFIX.match(text) and 0 < len(digits) < MIN_ID_PREFIX:
        return f" (an id prefix needs at least {MIN_ID_PREFIX} characters)"
    return ""


def display_domain(a_label: str) -> str:
    """Return the Unicode form (U-label) of a stored domain, or the input if it does not decode."""
    import idna

    try:
        return idna.decode(a_label)
    except (idna.IDNAError, UnicodeError):
        return a_label


# --- scheduler template ------------------------------------------------------------------------


def parse_interval(raw: str, option: str = "--every") -> int:
    """Return the hours of an `--every` value: 6h, 12h, 24h, 48h (also 6, 12, 24, 48, 1d, 2d);
    messages name `option` (a file's key)."""
    hours = _INTERVALS.get(raw.strip().lower())
    if hours is None:
        choices = "6h, 12h, 24h, 48h (or 6, 12, 24, 48, 1d, 2d)"
        raise InvalidInput(f"{option} must be one of {choices}, got {_show(raw)}")
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
            raise InvalidInput(f"{option} {_show(raw)} must start with '/'")
        if len(path) > MAX_PATH_LENGTH:
            raise InvalidInput(
                f"{option} {_show(raw)} is too long ({len(path)} characters; "
                f"at most {MAX_PATH_LENGTH})"
            )
        for char in path:
            if _is_space(char) or _is_control(char):
                raise InvalidInput(
                    f"{option} {_show(raw)} contains whitespace or a control character "
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
            f"got {_show(raw)}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        when = when.astimezone(timezone.utc)
    except OverflowError:
        raise InvalidInput(f"--start-at {_show(raw)} is out of range") from None
    if not 1970 <= when.year <= 9999:
        raise InvalidInput(f"--start-at {_show(raw)} must fall between the years 1970 and 9999")
    return when


def parse_duration(raw: str, option: str = "--max-lag") -> timedelta:
    """Return a duration like `30s`, `5m`, `2h`, `1d` or `1h30m` (`0` alone needs no unit);
    messages name `option`. A number without a unit is refused: whether `5` meant seconds,
    minutes or hours (as `--every 6` does) is the reader's guess."""
    text = raw.strip()
    if not text:
        raise InvalidInput(f"{option} must not be empty")
    if text.startswith("-"):
        raise InvalidInput(f"{option} must not be negative, got {_show(raw)}")
    if _BARE_NUMBER.match(text):
        if int(text):
            number = int(text)
            raise InvalidInput(
                f"{option} needs a unit, got {_show(raw)}: did you mean {number}m / {number}h? "
                f"(or {number}s, {number}d)"
            )
        seconds = 0
    else:
        match = _DURATION.match(text)
        if match is None or not any(match.groups()):
            raise InvalidInput(
                f"{option} must be a duration like 30s, 5m, 2h, 1d or 1h30m, got {_show(raw)}"
            )
        parts = {unit: int(count) if count else 0 for unit, count in match.groupdict().items()}
        seconds = parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    # Compare as an int first: a huge count would overflow timedelta.
    if seconds > MAX_DURATION.total_seconds():
        raise InvalidInput(f"{option} {_show(raw)} is too large (at most 3650 days)")
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
            f"{option} must be a time of day HH:MM between 00:00 and 23:59, got {_show(raw)}"
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
            f"{option} must be an IANA time zone name such as Europe/London or UTC, "
            f"got {_show(raw)}"
        )
    return name


def zone_unknown(name: str, option: str = "--time-zone") -> InvalidInput:
    """The error for a zone name the database's zone database does not know."""
    return InvalidInput(
        f"{option} {_show(name)} is not a time zone of the database's zone database "
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
            f"{option} must be at least 1 minute (tick runs once a minute), got {_show(raw)}"
        )
    return seconds


def parse_until(raw: str, option: str = "--until") -> datetime | timedelta:
    """Return when a pause ends: an ISO 8601 time (UTC unless it has an offset) or a duration
    from now (`2h`, `1d`). Whether it is in the future is checked by the database's clock."""
    text = raw.strip()
    if text.lower() == "now":
        raise InvalidInput(f"{option} must be in the future, got {_show(raw)}")
    if text and (text[0].isdigit() and ("-" in text or "T" in text.upper())):
        try:
            when = parse_when(text)
        except InvalidInput:
            raise InvalidInput(
                f"{option} must be an ISO 8601 time such as 2025-01-31T06:00:00Z or a "
                f"duration such as 2h or 1d, got {_show(raw)}"
            ) from None
        assert isinstance(when, datetime)
        return when
    duration = parse_duration(text, option)
    if not duration:
        raise InvalidInput(f"{option} must be in the future, got {_show(raw)}")
    return duration


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
            f"organisation name {_show(name)} is too long ({len(name)} characters; "
            f"at most {MAX_ORG_NAME_LENGTH})"
        )
    _reject_control("organisation name", name)
    return name


# --- a scheduler's settings ------------------------------------------------------------------


def scheduler_changes(
    *,
    every: str | None = None,
    concurrency: int | None = None,
    find_links: bool | None = None,
    max_pages: int | None = None,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    clear_include: bool = False,
    clear_exclude: bool = False,
    required_workers: int | None = None,
    overlap: Overlap | None = None,
    start_at: str | None = None,
    enabled: bool | None = None,
    include_add: list[str] | None = None,
    include_remove: list[str] | None = None,
    exclude_add: list[str] | None = None,
    exclude_remove: list[str] | None = None,
    at: str | None = None,
    time_zone: str | None = None,
    spread: str | None = None,
    catchup_window: str | None = None,
    until: str | None = None,
) -> SchedulerChanges:
    """The options of `create` and `update`, each checked against its rule (a spread longer
    than a new interval too; against the scheduler's own interval once it is read)."""
    if until is not None and enabled is not False:
        raise InvalidInput(
            "--until says when a pause ends: give it with --disabled (create), --disable "
            "(update), or use `schedctl pause REF --until WHEN`"
        )
    interval_hours = parse_interval(every) if every is not None else None
    if include and clear_include:
        raise InvalidInput("--include and --clear-include cannot be used together")
    if exclude and clear_exclude:
        raise InvalidInput("--exclude and --clear-exclude cannot be used together")
    edits = path_edits(
        include_add=include_add,
        include_remove=include_remove,
        exclude_add=exclude_add,
        exclude_remove=exclude_remove,
        replaced_include=bool(include) or clear_include,
        replaced_exclude=bool(exclude) or clear_exclude,
    )
    return SchedulerChanges(
        interval_hours=interval_hours,
        concurrency=_in_range("--concurrency", concurrency, CONCURRENCY),
        find_links=find_links,
        max_pages=_in_range("--max-pages", max_pages, MAX_PAGES),
        include_paths=(
            normalize_paths("--include", include or []) if include or clear_include else None
        ),
        exclude_paths=(
            normalize_paths("--exclude", exclude or []) if exclude or clear_exclude else None
        ),
        required_workers=_in_range("--required-workers", required_workers, REQUIRED_WORKERS),
        overlap=overlap,
        start=parse_when(start_at) if start_at is not None else None,
        enabled=enabled,
        **edits,
        at=parse_time_of_day(at) if at is not None else None,
        time_zone=parse_zone(time_zone) if time_zone is not None else None,
        spread_seconds=parse_spread(spread, interval_hours) if spread is not None else None,
        catchup_window_seconds=(
            parse_catchup_window(catchup_window) if catchup_window is not None else None
        ),
        until=parse_until(until) if until is not None else None,
    )


def exclusive(**given: bool) -> None:
    """Refuse options that contradict each other: `given` maps each option's spelling (with
    `_` for `-`, no leading dashes) to whether it was given; at most one may be."""
    named = [f"--{name.replace('_', '-')}" for name, present in given.items() if present]
    if len(named) > 1:
        raise InvalidInput(f"{' and '.join(named)} cannot be used together")


def path_edits(
    *,
    include_add: list[str] | None = None,
    include_remove: list[str] | None = None,
    exclude_add: list[str] | None = None,
    exclude_remove: list[str] | None = None,
    replaced_include: bool = False,
    replaced_exclude: bool = False,
) -> dict[str, list[str] | None]:
    """`update`'s --add-include/--remove-include (and exclude) options, checked: they edit
    the list as it is, so they cannot be combined with replacing or clearing it."""
    if (include_add or include_remove) and replaced_include:
        raise InvalidInput(
            "--add-include/--remove-include cannot be used with --include or --clear-include"
        )
    if (exclude_add or exclude_remove) and replaced_exclude:
        raise InvalidInput(
            "--add-exclude/--remove-exclude cannot be used with --exclude or --clear-exclude"
        )
    edits = {
        "include_add": ("--add-include", include_add),
        "include_remove": ("--remove-include", include_remove),
        "exclude_add": ("--add-exclude", exclude_add),
        "exclude_remove": ("--remove-exclude", exclude_remove),
    }
    checked = {
        key: normalize_paths(option, values) if values else None
        for key, (option, values) in edits.items()
    }
    for kind in ("include", "exclude"):
        both = set(checked[f"{kind}_add"] or []) & set(checked[f"{kind}_remove"] or [])
        if both:
            raise InvalidInput(
                f"--add-{kind} and --remove-{kind} cannot be used together for the same "
                f"path {_show(sorted(both)[0])}"
            )
    return checked


def _in_range(option: str, value: int | None, bounds: tuple[int, int]) -> int | None:
    return None if value is None else check_range(option, value, *bounds)
