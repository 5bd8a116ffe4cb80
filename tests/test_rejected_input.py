"""Every class of input the rules reject, through the command line: exit 2, one `error:` line,
and not a single row written anywhere (no domain, no organisation, no audit entry)."""

from __future__ import annotations

from collections.abc import Mapping

from tests.helpers import Cli, Conn, assert_error, fingerprint, make_org, make_scheduler

BAD_DOMAINS = {
    # empty
    "empty": "",
    "blank": "   ",
    "scheme only": "https://",
    "www only": "www.",
    # a port
    "port": "example.com:8080",
    "port after scheme": "https://example.com:443/",
    # a path, query or fragment
    "path": "example.com/blog",
    "query": "example.com?page=1",
    "fragment": "example.com#top",
    "path after scheme": "http://example.com/a/b",
    # user info
    "user info": "a@b",
    "user at domain": "user@example.com",
    "user and password": "https://user:pw@example.com",
    # IP addresses
    "ipv4": "192.0.2.10",
    "ipv4 loopback": "127.0.0.1",
    "ipv4 with scheme": "http://203.0.113.5/",
    "ipv6": "2001:db8::1",
    "ipv6 bracketed": "[::1]",
    # reserved names, whole or as the last label
    "localhost": "localhost",
    "local": "local",
    "internal": "internal",
    "test": "test",
    "example": "example",
    "invalid": "invalid",
    "under localhost": "app.localhost",
    "under local": "printer.local",
    "under internal": "corp.internal",
    "under test": "shop.test",
    "under example": "shop.example",
    "under invalid": "www.site.invalid",
    # not a valid host name
    "leading hyphen": "-bad.com",
    "trailing hyphen": "bad-.com",
    "underscore": "bad_name.com",
    "space": "exa mple.com",
    "empty label": "ex..com",
    "label of 64": "a" * 64 + ".com",
    "name over 253": ".".join(["a" * 60] * 5) + ".com",
    "control character": "exam\x07ple.com",
    # not under a public suffix, or a public suffix itself
    "unknown tld": "example.notarealtld",
    "single label": "intranet",
    "icann suffix": "co.uk",
    "tld": "com",
    "private suffix": "github.io",
    # another scheme
    "ftp": "ftp://example.com",
}


def _refusals(cli: Cli, conn: Conn, cases: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Run every case on one database; the cases that were not refused cleanly (exit 2, one
    `error:` line, empty stdout, every table unchanged)."""
    problems = []
    for name, args in cases.items():
        before = fingerprint(conn)
        result = cli(*args)
        try:
            assert_error(result, 2)
        except AssertionError:
            problems.append(f"{name}: exit {result.code}, {result.stdout!r}, {result.stderr!r}")
        if fingerprint(conn) != before:
            problems.append(f"{name}: a table changed")
    return problems


def test_create_refuses_every_bad_domain_and_writes_nothing(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    cases = {
        name: ("create", domain, "--every", "6h", "--json") for name, domain in BAD_DOMAINS.items()
    }
    assert _refusals(cli, conn, cases) == []
    assert conn.execute("SELECT count(*) FROM domains").fetchone() == (0,)
    # The organisation's own entry alone.
    assert conn.execute("SELECT count(*) FROM schedctl.audit").fetchone() == (1,)


BAD_OPTIONS = {
    # numbers out of range, including values beyond a 32-bit column
    "concurrency 0": ("--concurrency", "0"),
    "concurrency 101": ("--concurrency", "101"),
    "concurrency negative": ("--concurrency", "-1"),
    "concurrency huge": ("--concurrency", "99999999999"),
    "max-pages negative": ("--max-pages", "-1"),
    "max-pages int32+1": ("--max-pages", "2147483648"),
    "max-pages huge": ("--max-pages", "99999999999"),
    "max-pages not a number": ("--max-pages", "lots"),
    "required-workers 0": ("--required-workers", "0"),
    "required-workers 101": ("--required-workers", "101"),
    "required-workers negative": ("--required-workers", "-3"),
    "required-workers huge": ("--required-workers", "99999999999"),
    # paths
    "include without slash": ("--include", "blog"),
    "include empty": ("--include", ""),
    "include with space": ("--include", "/a b"),
    "include with tab": ("--include", "/a\tb"),
    "include with newline": ("--include", "/a\nb"),
    "include with nul": ("--include", "/a\x00b"),
    "include too long": ("--include", "/" + "a" * 3000),
    "exclude without slash": ("--exclude", "private"),
    "exclude with control": ("--exclude", "/x\x1b[31m"),
    "one good one bad include": ("--include", "/ok", "--include", "bad"),
    # --every
    "every 5": ("--every", "5"),
    "every 7h": ("--every", "7h"),
    "every 3d": ("--every", "3d"),
    "every 0": ("--every", "0"),
    "every negative": ("--every", "-6"),
    "every empty": ("--every", ""),
    "every words": ("--every", "6 hours"),
    "every 1w": ("--every", "1w"),
    # --start-at
    "start-at words": ("--start-at", "tomorrow"),
    "start-at month 13": ("--start-at", "2030-13-01T00:00:00Z"),
    "start-at empty": ("--start-at", ""),
    "start-at bad offset": ("--start-at", "2030-01-01T00:00:00+25:00"),
    "start-at year 1": ("--start-at", "0001-01-01T00:00:00Z"),
    # --overlap
    "overlap never": ("--overlap", "never"),
    "overlap empty": ("--overlap", ""),
}


def _with_every(options: tuple[str, ...]) -> tuple[str, ...]:
    return options if "--every" in options else (*options, "--every", "6h")


def test_create_refuses_every_bad_option_and_writes_nothing(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    cases = {
        name: ("create", "example.com", *_with_every(options), "--json")
        for name, options in BAD_OPTIONS.items()
    }
    assert _refusals(cli, conn, cases) == []
    assert conn.execute("SELECT count(*) FROM domains").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM schedulers").fetchone() == (0,)


def test_create_without_every_is_refused(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    before = fingerprint(conn)
    message = assert_error(cli("create", "example.com"), 2)
    assert "--every" in message
    assert fingerprint(conn) == before


def test_update_refuses_every_bad_option_and_changes_nothing(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")
    cases = {
        name: ("update", "example.com", *options, "--json") for name, options in BAD_OPTIONS.items()
    }
    assert _refusals(cli, conn, cases) == []


def test_org_create_refuses_a_bad_name_and_writes_nothing(cli: Cli, conn: Conn) -> None:
    names = {
        "empty": "",
        "blank": "   ",
        "too long": "x" * 201,
        "newline": "Acme\nCorp",
        "nul": "Acme\x00",
        "tab only": "\t",
    }
    cases = {label: ("org", "create", name, "--json") for label, name in names.items()}
    assert _refusals(cli, conn, cases) == []
    assert conn.execute("SELECT count(*) FROM organisations").fetchone() == (0,)


def test_the_limits_themselves_are_accepted(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(
        cli,
        "example.com",
        "--concurrency",
        "100",
        "--max-pages",
        "2147483647",
        "--required-workers",
        "100",
        "--include",
        "/" + "a" * 2047,
    )
    assert (doc["concurrency"], doc["max_pages"], doc["required_workers"]) == (
        100,
        2147483647,
        100,
    )
    low = make_scheduler(cli, "example.org", "--concurrency", "1", "--required-workers", "1")
    assert (low["concurrency"], low["required_workers"]) == (1, 1)
