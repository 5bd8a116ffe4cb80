"""Unit tests of schedctl.validation: every accepted form and every rejected input class."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

import schedctl
from schedctl.domains import display_domain, normalize_domain
from schedctl.errors import InvalidInput
from schedctl.models import START_NOW, paths_from_db, paths_to_db
from schedctl.validation import (
    CONCURRENCY,
    HISTORY_LIMIT,
    MAX_PAGES,
    NEXT_RUNS,
    OFFSET,
    REQUIRED_WORKERS,
    TICK_LIMIT,
    check_range,
    normalize_paths,
    parse_duration,
    parse_interval,
    parse_org_name,
    parse_reason,
    parse_when,
)

UTC = timezone.utc


def _fullwidth(text: str) -> str:
    """The full-width look-alike of ASCII text (UTS 46 maps it back)."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def test_importing_validation_does_not_load_idna_or_the_public_suffix_list() -> None:
    code = (
        "import sys, schedctl.validation; "
        "print(sorted(m for m in ('idna', 'publicsuffixlist') if m in sys.modules))"
    )
    # Run where this test's schedctl comes from, installed or not.
    source_root = os.path.dirname(os.path.dirname(os.path.abspath(schedctl.__file__)))
    env = {**os.environ, "PYTHONPATH": source_root}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.strip() == "[]"


# --- normalize_domain: accepted ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "example.com"),
        ("HTTPS://WWW.Example.COM/", "example.com"),
        ("http://example.com", "example.com"),
        ("hTtP://www.example.com", "example.com"),
        ("  example.com  ", "example.com"),
        ("example.com.", "example.com"),
        ("example.com./", "example.com"),
        ("www.example.com", "example.com"),
        ("shop.www.example.com", "shop.www.example.com"),
        ("sub.domain.example.co.uk", "sub.domain.example.co.uk"),
        ("example.co.uk", "example.co.uk"),
        ("foo.github.io", "foo.github.io"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.DE", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        (_fullwidth("example.com"), "example.com"),
        ("a-b.com", "a-b.com"),
        ("123.com", "123.com"),
        ("bar.foo.ck", "bar.foo.ck"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
        # 61 + 1 + 61 + 1 + 61 + 1 + 63 + 1 + 3 = 253 characters exactly
        ("b" * 61 + "." + "b" * 61 + "." + "b" * 61 + "." + "b" * 63 + ".com", None),
    ],
)
def test_normalize_domain_accepts(raw: str, expected: str | None) -> None:
    result = normalize_domain(raw)
    if expected is None:
        assert len(result) == 253
        assert result == raw
    else:
        assert result == expected


# --- normalize_domain: rejected ------------------------------------------------------------


def _rejects(raw: str, *fragments: str) -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_domain(raw)
    message = info.value.message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("raw", ["", "   ", "https://", "HTTP://www.", "/", "."])
def test_normalize_domain_rejects_empty(raw: str) -> None:
    _rejects(raw, "empty")


@pytest.mark.parametrize("raw", ["a.com:8080", "a.com:80", "https://a.com:443/", "a.com:"])
def test_normalize_domain_rejects_port(raw: str) -> None:
    _rejects(raw, "port", repr(raw))


@pytest.mark.parametrize(
    "raw", ["a.com/x", "a.com//", "a.com?x", "a.com#x", "https://a.com/path/", "//a.com"]
)
def test_normalize_domain_rejects_path_query_fragment(raw: str) -> None:
    _rejects(raw, "path, query or fragment", repr(raw))


@pytest.mark.parametrize("raw", ["user@a.com", "a@b.com", "https://user:pw@a.com"])
def test_normalize_domain_rejects_user_info(raw: str) -> None:
    _rejects(raw, "user info")


@pytest.mark.parametrize(
    "raw",
    [
        "1.2.3.4",
        "http://1.2.3.4/",
        "::1",
        "[::1]",
        "[::1]:8080",
        "2001:db8::1",
        "127.1",
        "0x7f.0.0.1",
        _fullwidth("1.2.3.4"),
    ],
)
def test_normalize_domain_rejects_ip_address(raw: str) -> None:
    _rejects(raw, "IP address")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("localhost", "localhost"),
        ("local", "local"),
        ("internal", "internal"),
        ("test", "test"),
        ("example", "example"),
        ("invalid", "invalid"),
        ("shop.example", "example"),
        ("printer.local", "local"),
        ("api.internal", "internal"),
        ("www.localhost", "localhost"),
        ("a.b.test", "test"),
        ("foo.INVALID", "invalid"),
    ],
)
def test_normalize_domain_rejects_reserved_names(raw: str, name: str) -> None:
    _rejects(raw, "reserved", repr(name))


@pytest.mark.parametrize(
    "raw",
    [
        "-a.com",
        "a-.com",
        "a_b.com",
        "a..com",
        "ab--c.com",
        "xn--abc.com",
        "a!.com",
        "a*.com",
        "a\\b.com",
        "a" * 64 + ".com",
        # 254 characters
        "b" * 62 + "." + "b" * 61 + "." + "b" * 61 + "." + "b" * 63 + ".com",
        ".".join(["a" * 63] * 5),
    ],
)
def test_normalize_domain_rejects_invalid_host_names(raw: str) -> None:
    _rejects(raw, "is not a valid host name", "domain " + repr(raw)[:40])


def test_normalize_domain_rejects_254_character_name_as_too_long() -> None:
    name = "b" * 62 + "." + "b" * 61 + "." + "b" * 61 + "." + "b" * 63 + ".com"
    assert len(name) == 254
    with pytest.raises(InvalidInput, match=r"(?i)too long"):
        normalize_domain(name)


def test_normalize_domain_rejects_64_character_label() -> None:
    with pytest.raises(InvalidInput, match=r"(?i)label too long"):
        normalize_domain("a" * 64 + ".com")


@pytest.mark.parametrize(
    "raw",
    [
        "a b.com",
        "a.com\tb",
        "a.com\nb",
        "a\x00.com",
        "a\x7f.com",
        "a\u00a0b.com",
        "a\u00adb.com",  # soft hyphen: UTS 46 would drop it silently
        "a\u202eb.com",  # right-to-left override
        "a\u2028b.com",
        "a\udcffb.com",  # lone surrogate from undecodable argv bytes
    ],
)
def test_normalize_domain_rejects_whitespace_and_control_characters(raw: str) -> None:
    _rejects(raw, "whitespace or a control character")


@pytest.mark.parametrize("raw", ["foo.notarealtld", "notarealtld", "a.b.zz9"])
def test_normalize_domain_rejects_suffix_not_on_public_suffix_list(raw: str) -> None:
    _rejects(raw, "does not end in a suffix on the Public Suffix List")


@pytest.mark.parametrize(
    "raw", ["com", "co.uk", "github.io", "www.co.uk", "https://www.github.io/", "foo.ck", "рф"]
)
def test_normalize_domain_rejects_public_suffix_itself(raw: str) -> None:
    _rejects(raw, "itself a public suffix")


def test_normalize_domain_rejects_other_schemes() -> None:
    _rejects("ftp://a.com", "http://")


def test_normalize_domain_message_escapes_control_characters() -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_domain("a\nb.com")
    assert "'a\\nb.com'" in info.value.message


# --- display_domain ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a_label", "expected"),
    [
        ("xn--bcher-kva.de", "bücher.de"),
        ("xn--e1afmkfd.xn--p1ai", "пример.рф"),
        ("example.com", "example.com"),
        ("xn--abc.com", "xn--abc.com"),
        ("a_b.com", "a_b.com"),
        ("", ""),
    ],
)
def test_display_domain(a_label: str, expected: str) -> None:
    assert display_domain(a_label) == expected


# --- parse_interval ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "hours"),
    [
        ("6h", 6),
        ("12h", 12),
        ("24h", 24),
        ("48h", 48),
        ("6", 6),
        ("12", 12),
        ("24", 24),
        ("48", 48),
        ("1d", 24),
        ("2d", 48),
        ("6H", 6),
        ("1D", 24),
        ("  12h ", 12),
    ],
)
def test_parse_interval_accepts(raw: str, hours: int) -> None:
    assert parse_interval(raw) == hours


@pytest.mark.parametrize("raw", ["", "1h", "3d", "0", "-6", "6.0", "6 h", "h", "weekly", "72h"])
def test_parse_interval_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_interval(raw)
    assert "--every" in info.value.message
    assert "6h, 12h, 24h, 48h" in info.value.message
    assert repr(raw) in info.value.message


# --- check_range ---------------------------------------------------------------------------


def test_check_range_message() -> None:
    with pytest.raises(InvalidInput) as info:
        check_range("--concurrency", 500, *CONCURRENCY)
    assert info.value.message == "--concurrency must be between 1 and 100 (got 500)"
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("bounds", "inside", "outside"),
    [
        (CONCURRENCY, [1, 20, 100], [0, 101, -1]),
        (MAX_PAGES, [0, 2_147_483_647], [-1, 2_147_483_648]),
        (REQUIRED_WORKERS, [1, 100], [0, 101]),
        (HISTORY_LIMIT, [1, 1000], [0, 1001]),
        (OFFSET, [0, 2_147_483_647], [-1, 2**63]),
        (NEXT_RUNS, [1, 1000], [0, 1001]),
        (TICK_LIMIT, [1, 2_147_483_647], [0, 2_147_483_648]),
    ],
)
def test_check_range_bounds(bounds: tuple[int, int], inside: list[int], outside: list[int]) -> None:
    for value in inside:
        assert check_range("--x", value, *bounds) == value
    for value in outside:
        with pytest.raises(InvalidInput, match=rf"^--x must be between .* \(got {value}\)$"):
            check_range("--x", value, *bounds)


def test_range_constants() -> None:
    assert CONCURRENCY == (1, 100)
    assert MAX_PAGES == (0, 2_147_483_647)
    assert REQUIRED_WORKERS == (1, 100)
    assert HISTORY_LIMIT == (1, 1000)
    assert OFFSET == (0, 2_147_483_647)
    assert NEXT_RUNS == (1, 1000)
    assert TICK_LIMIT == (1, 2_147_483_647)


# --- normalize_paths -----------------------------------------------------------------------


def test_normalize_paths_trims_and_removes_duplicates_keeping_order() -> None:
    assert normalize_paths("--include", [" /b ", "/a", "/b", "/a/", "/a"]) == ["/b", "/a", "/a/"]


def test_normalize_paths_empty() -> None:
    assert normalize_paths("--include", []) == []


def test_normalize_paths_accepts_unicode_and_query_characters() -> None:
    paths = ["/", "/blog/*", "/ünïcode", "/a?b=c", "/" + "x" * 2047]
    assert normalize_paths("--exclude", paths) == paths


@pytest.mark.parametrize("raw", ["", "   ", "blog", "*.pdf", "https://a.com/x"])
def test_normalize_paths_rejects_not_starting_with_slash(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--exclude .* must start with '/'$"):
        normalize_paths("--exclude", ["/ok", raw])


@pytest.mark.parametrize(
    "raw",
    ["/a b", "/a\tb", "/a\nb", "/a\x00", "/a\x1b[31m", "/a\u00a0b", "/a\u200bb", "/a\u2029b"],
)
def test_normalize_paths_rejects_whitespace_and_control_characters(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--include .*whitespace or a control character"):
        normalize_paths("--include", [raw])


def test_normalize_paths_rejects_too_long() -> None:
    with pytest.raises(InvalidInput, match=r"^--include .*too long \(2049 characters"):
        normalize_paths("--include", ["/" + "x" * 2048])


# --- paths_to_db / paths_from_db -----------------------------------------------------------


def test_paths_to_db() -> None:
    assert paths_to_db([]) is None
    assert paths_to_db(["/a", "/ü"]) == '["/a", "/\\u00fc"]'
    assert json.loads(paths_to_db(["/a", "/ü"]) or "") == ["/a", "/ü"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, []),
        ("", []),
        ("[]", []),
        ('["/a", "/b"]', ["/a", "/b"]),
        ("null", []),
        ("not json", []),
        ('{"a": 1}', []),
        ('"/a"', []),
        ('["/a", 1, null, "/b"]', ["/a", "/b"]),
    ],
)
def test_paths_from_db(text: str | None, expected: list[str]) -> None:
    assert paths_from_db(text) == expected


def test_paths_round_trip() -> None:
    paths = ["/a", "/b/ü", '/q"x']
    assert paths_from_db(paths_to_db(paths)) == paths


# --- parse_when ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["now", "NOW", " Now "])
def test_parse_when_now(raw: str) -> None:
    assert parse_when(raw) == START_NOW


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-01-31T06:00:00Z", datetime(2025, 1, 31, 6, tzinfo=UTC)),
        ("2025-01-31T06:00:00z", datetime(2025, 1, 31, 6, tzinfo=UTC)),
        ("2025-01-31 06:00:00Z", datetime(2025, 1, 31, 6, tzinfo=UTC)),
        ("2025-01-31T06:00", datetime(2025, 1, 31, 6, tzinfo=UTC)),
        ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31T08:00:00+02:00", datetime(2025, 1, 31, 6, tzinfo=UTC)),
        ("2025-01-31T01:30:00-04:30", datetime(2025, 1, 31, 6, tzinfo=UTC)),
        ("2025-01-31T06:00:00.250000+00:00", datetime(2025, 1, 31, 6, 0, 0, 250000, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("  2025-01-31T06:00Z  ", datetime(2025, 1, 31, 6, tzinfo=UTC)),
    ],
)
def test_parse_when_accepts(raw: str, expected: datetime) -> None:
    when = parse_when(raw)
    assert when == expected
    assert isinstance(when, datetime) and when.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "raw", ["", "tomorrow", "2025-13-01", "2025-01-31T25:00", "31/01/2025", "Z", "now-1h"]
)
def test_parse_when_rejects_garbage(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--start-at must be 'now' or an ISO 8601 time"):
        parse_when(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00:00",
        "1970-01-01T00:30:00+01:00",
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_parse_when_rejects_years_out_of_range(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--start-at .*(1970 and 9999|out of range)"):
        parse_when(raw)


# --- parse_duration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("2H", timedelta(hours=2)),
        (" 5m ", timedelta(minutes=5)),
        ("3650d", timedelta(days=3650)),
    ],
)
def test_parse_duration_accepts(raw: str, expected: timedelta) -> None:
    assert parse_duration(raw) == expected


def test_parse_duration_rejects_empty() -> None:
    with pytest.raises(InvalidInput, match=r"^--max-lag must not be empty$"):
        parse_duration("  ")


@pytest.mark.parametrize("raw", ["-5m", "-1", "-0s"])
def test_parse_duration_rejects_negative(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--max-lag must not be negative"):
        parse_duration(raw)


@pytest.mark.parametrize("raw", ["3651d", "3650d1s", "315360001s", "9" * 30 + "d"])
def test_parse_duration_rejects_too_large(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"too large"):
        parse_duration(raw)


@pytest.mark.parametrize("raw", ["90", "5", " 5 ", "315360001", "9" * 30])
def test_parse_duration_rejects_a_number_without_a_unit(raw: str) -> None:
    number = int(raw)
    with pytest.raises(InvalidInput, match=rf"needs a unit.*did you mean {number}m / {number}h\?"):
        parse_duration(raw)


@pytest.mark.parametrize(
    "raw", ["abc", "5x", "1.5h", "30m1h", "1h1h", "h", "1h 30m", "+5", "٣s", "5 m"]
)
def test_parse_duration_rejects_garbage(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--max-lag must be a duration like"):
        parse_duration(raw)


# --- parse_reason --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("  site migration  ", "site migration"),
        ("x" * 500, "x" * 500),
        ("café — ünïcode", "café — ünïcode"),
    ],
)
def test_parse_reason_accepts(raw: str | None, expected: str | None) -> None:
    assert parse_reason(raw) == expected


def test_parse_reason_rejects_too_long() -> None:
    with pytest.raises(InvalidInput, match=r"^--reason is too long \(501 characters"):
        parse_reason("x" * 501)


@pytest.mark.parametrize(
    "raw", ["a\nb", "a\tb", "a\rb", "a\x00b", "a\x1bb", "a\u202eb", "a\u2028b"]
)
def test_parse_reason_rejects_control_characters(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--reason .*control character"):
        parse_reason(raw)


# --- parse_org_name ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Acme", "Acme"), ("  Acme Corp  ", "Acme Corp"), ("x", "x"), ("é" * 200, "é" * 200)],
)
def test_parse_org_name_accepts(raw: str, expected: str) -> None:
    assert parse_org_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "   "])
def test_parse_org_name_rejects_empty(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"^organisation name must not be empty$"):
        parse_org_name(raw)


def test_parse_org_name_rejects_too_long() -> None:
    with pytest.raises(InvalidInput, match=r"too long \(201 characters; at most 200\)"):
        parse_org_name("x" * 201)


@pytest.mark.parametrize("raw", ["Ac\nme", "Ac\tme", "Acme\x00", "Ac\x7fme", "Ac\u202eme"])
def test_parse_org_name_rejects_control_characters(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"^organisation name .*control character"):
        parse_org_name(raw)
