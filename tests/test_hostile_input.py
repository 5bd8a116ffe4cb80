"""Property tests: arbitrary text and numbers in every argument and option of every command.

Whatever comes in, schedctl answers with an exit code of the contract and, on failure,
one `error:` line; never a traceback. When it refuses (exit 2-5), no table changed by a
single byte."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import (
    ACME,
    ALPHA,
    BETA,
    GAMMA,
    OTHER,
    SHARED,
    Cli,
    Conn,
    check_result,
    ensure_world,
    fingerprint,
)

# How many command lines each property tried, printed at the end of the module (run with -s).
TRIED: Counter[str] = Counter()

CODES: Counter[tuple[str, int]] = Counter()

EXAMPLES = 80

# Values an attacker, a broken script or a careless operator might pass.
HOSTILE = [
    "",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\x00",
    "a\x00b",
    "\x1b[31mred\x1b[0m",
    "\x7f",
    "\u202eevil",
    "\ufeff",
    "\u200b",
    "\u2028",
    "\udcff",  # an undecodable argv byte, as Python's surrogateescape hands it over
    "'",
    '"',
    "\\",
    "'; DROP TABLE schedulers; --",
    "1; DELETE FROM jobs",
    "' OR '1'='1",
    "alpha.com' OR 1=1 --",
    "%s",
    "%(id)s",
    "%%",
    "{}",
    "$1",
    "NULL",
    "null",
    "None",
    "true",
    "-",
    "--",
    "-v",
    "--verbose",
    "-1",
    "0",
    "-0",
    "00",
    "1e9",
    "1.5",
    "NaN",
    "inf",
    "-inf",
    "0x10",
    "1_000",
    "\uff11\uff12",  # full-width digits
    "\u0663",  # Arabic-Indic three
    "9" * 40,
    "-" + "9" * 40,
    "x" * 5000,
    "\u00e9" * 3000,
    "/" + "a" * 3000,
    "a." * 200 + "com",
    "xn--",
    "xn--zz",
    "\U0001f642",
    "\u4f8b\u3048.jp",
    "b\u00fccher.de",
    "http://user:pw@alpha.com:8080/path?q#f",
    "127.0.0.1",
    "[::1]",
    "localhost",
    "shop.example",
    "co.uk",
    "../../etc/passwd",
    "/blog",
    "/blog post",
    "/ok/\x01",
    "now",
    "NOW",
    "2025-01-31T06:00:00Z",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-14:00",
    "1969-12-31T23:59:59Z",
    "2025-02-30",
    "6h",
    "6H",
    "1d",
    "7h",
    "0h",
    "replace",
    "skip",
    "allow",
    " SKIP ",
    "5m",
    "0s",
    "1h30m",
    "3651d",
    "99999999999999999999d",
]

# Values that name things which exist, so that the commands also get past lookup.
KNOWN = [
    "alpha.com",
    "https://WWW.Alpha.com/",
    "beta.org",
    "gamma.net",
    ALPHA,
    BETA,
    GAMMA,
    SHARED,
    ALPHA.upper(),
    f" {ALPHA} ",
    "Acme",
    "Other",
    ACME,
    OTHER,
    "00000000-0000-0000-0000-000000000000",
]

BOUNDARY_NUMBERS = [
    0,
    1,
    -1,
    2,
    5,
    20,
    99,
    100,
    101,
    999,
    1000,
    1001,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
]

numbers = st.one_of(
    st.sampled_from(BOUNDARY_NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70),
).map(str)

values = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from(KNOWN),
    numbers,
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="ascii"), max_size=20),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

# Names that are valid domains nobody has yet, so that `create` also succeeds.
new_domains = st.builds(
    "{}{}.{}".format,
    st.sampled_from(["", "www.", "https://", "HTTP://WWW."]),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True),
    st.sampled_from(["com", "org", "de", "co.uk", "io", "xn--p1ai"]),
)

# Per command: its words, whether it takes a positional argument (True: required,
# None: optional), options that take a value, and flags.
COMMANDS: dict[str, tuple[list[str], bool | None, list[str], list[str]]] = {
    "org create": (["org", "create"], True, [], ["--json"]),
    "org list": (["org", "list"], False, [], ["--json"]),
    "create": (
        ["create"],
        True,
        [
            "--every",
            "--concurrency",
            "--max-pages",
            "--include",
            "--exclude",
            "--required-workers",
            "--overlap",
            "--start-at",
            "--org",
        ],
        ["--find-links", "--no-find-links", "--disabled", "--json"],
    ),
    "list": (
        ["list"],
        False,
        ["--org"],
        ["--enabled", "--disabled", "--due", "--all-orgs", "--json"],
    ),
    "show": (["show"], True, ["--next", "--org"], ["--json"]),
    "update": (
        ["update"],
        True,
        [
            "--every",
            "--concurrency",
            "--max-pages",
            "--include",
            "--exclude",
            "--required-workers",
            "--overlap",
            "--start-at",
            "--org",
        ],
        [
            "--find-links",
            "--no-find-links",
            "--clear-include",
            "--clear-exclude",
            "--enable",
            "--disable",
            "--json",
        ],
    ),
    "delete": (["delete"], True, ["--org"], ["--yes", "--json"]),
    "history": (["history"], True, ["--limit", "--offset", "--org"], ["--json"]),
    "tick": (["tick"], False, ["--limit"], ["--dry-run", "--quiet", "--json"]),
    "pause": (["pause"], True, ["--reason", "--org"], ["--json"]),
    "resume": (["resume"], True, ["--org"], ["--json"]),
    "run": (["run"], True, ["--org"], ["--json"]),
    "status": (["status"], False, ["--max-lag", "--org"], ["--all-orgs", "--json"]),
    "log": (["log"], None, ["--limit", "--org"], ["--json"]),
    "pg-cron install": (["pg-cron", "install"], False, ["--schedule", "--role"], ["--json"]),
    "pg-cron show": (["pg-cron", "show"], False, ["--limit"], ["--json"]),
}

# Values each option accepts, given two times in three so that whole command lines get past
# validation and reach the database (successes, lookups that fail, conflicts).
PLAUSIBLE: dict[str, st.SearchStrategy[str]] = {
    "--every": st.sampled_from(["6h", "12h", "24h", "48h", "6", "1d", "2d", " 12H "]),
    "--concurrency": st.integers(1, 100).map(str),
    "--max-pages": st.integers(0, 2**31 - 1).map(str),
    "--required-workers": st.integers(1, 100).map(str),
    "--include": st.sampled_from(["/blog", "/docs/", "/a/b?c", "/\u00e9t\u00e9"]),
    "--exclude": st.sampled_from(["/admin", "/tmp", "/x-y_z"]),
    "--overlap": st.sampled_from(["replace", "skip", "allow"]),
    "--start-at": st.sampled_from(["now", "2030-01-01T00:00:00Z", "2020-06-01 12:00+02:00"]),
    "--org": st.sampled_from(["Acme", ACME, OTHER, "Other", "Nobody"]),
    "--next": st.integers(1, 1000).map(str),
    "--limit": st.integers(1, 1000).map(str),
    "--offset": st.integers(0, 2**31 - 1).map(str),
    "--reason": st.text(max_size=30),
    "--max-lag": st.sampled_from(["5m", "30s", "1h30m", "90", "1d"]),
    "--schedule": st.sampled_from(["* * * * *", "*/2 * * * *", "30 seconds", "0 0 1 1 *"]),
    "--role": st.sampled_from(["postgres", "schedctl_cron", "nobody"]),
}


@st.composite
def command_lines(draw: Any, name: str) -> list[str]:
    """A command line of one command, with hostile values in its arguments and options."""
    words, positional, options, flags = COMMANDS[name]
    argv = list(words)
    if positional or (positional is None and draw(st.booleans())):
        if name == "create" and draw(st.booleans()):
            argv.append(draw(new_domains))
        else:
            argv.append(draw(st.sampled_from(KNOWN) if draw(st.booleans()) else values))
    chosen = draw(st.lists(st.sampled_from(options), max_size=4)) if options else []
    if "--every" in options and draw(st.integers(0, 3)) > 0:
        chosen.append("--every")  # without it create is refused before anything else
    for option in chosen:
        value = draw(PLAUSIBLE[option] if draw(st.integers(0, 2)) > 0 else values)
        # Both spellings reach the parser: `--opt value` and `--opt=value`.
        argv += [f"{option}={value}"] if draw(st.booleans()) else [option, value]
    argv += draw(st.lists(st.sampled_from(flags), max_size=2, unique=True))
    if draw(st.integers(0, 19)) == 0:  # now and then a stray argument
        argv.append(draw(values))
    return argv


@pytest.fixture(scope="module", autouse=True)
def _report_inputs_tried() -> Iterator[None]:
    """Print how many command lines the properties tried (visible with -s)."""
    yield
    total = sum(TRIED.values())
    print(f"\nproperty tests tried {total} command lines: {dict(sorted(TRIED.items()))}")
    print(f"exit codes: {dict(sorted(CODES.items()))}")


@pytest.fixture
def world(cli: Cli, conn: Conn, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The little world, with Acme as the default organisation (SCHEDCTL_ORG)."""
    ensure_world(conn)
    monkeypatch.setenv("SCHEDCTL_ORG", "Acme")
    yield conn


def _try(cli: Cli, conn: Conn, label: str, argv: list[str]) -> None:
    ensure_world(conn)
    before = fingerprint(conn)
    result = cli(*argv)
    TRIED[label] += 1
    CODES[(label, result.code)] += 1
    check_result_for(argv, result)
    if result.code >= 2:
        assert fingerprint(conn) == before, f"{argv!r} exited {result.code} but wrote"


def check_result_for(argv: list[str], result: Any) -> None:
    """check_result, except that tick and status report a failure (exit 1) on stdout."""
    if result.code == 1 and argv[0] in ("tick", "status") and result.stdout:
        assert "Traceback" not in result.stderr, result.stderr
        return
    # A value may itself read "-v"; then whether the parser took it as the flag decides.
    check_result(result, verbose="-v" in argv or "--verbose" in argv)
    # An exception schedctl did not anticipate is still one line, but it is a bug.
    assert "error: unexpected" not in result.stderr, (argv, result)
    if result.code == 1:
        assert result.stdout == "", (argv, result)
        assert result.stderr.startswith("error: "), (argv, result)


HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("name", sorted(COMMANDS))
@HYPOTHESIS
@given(data=st.data())
def test_every_command_survives_hostile_arguments(
    name: str, data: st.DataObject, cli: Cli, world: Any
) -> None:
    argv = data.draw(command_lines(name), label="argv")
    _try(cli, world, name, argv)


@HYPOTHESIS
@given(
    command=st.sampled_from([c[0] for c in COMMANDS.values()] + [["migrate"], ["org"], []]),
    words=st.lists(
        st.one_of(values, st.sampled_from(["--json", "--org", "--", "-x", "--yes"])), max_size=6
    ),
)
def test_arbitrary_words_after_any_command(
    command: list[str], words: list[str], cli: Cli, world: Any
) -> None:
    argv = command + words
    _try(cli, world, "arbitrary words", argv or ["list"])


@settings(HYPOTHESIS, max_examples=25)
@given(dry_run=st.booleans(), extra=st.lists(values, max_size=2))
def test_migrate_survives_hostile_arguments(
    dry_run: bool, extra: list[str], cli: Cli, world: Any
) -> None:
    _try(cli, world, "migrate", ["migrate", *(["--dry-run"] if dry_run else []), *extra])


# ---------------------------------------------------------------- what the properties found


def test_a_value_that_reads_like_a_flag_does_not_turn_on_tracebacks(cli: Cli, world: Any) -> None:
    # "-v" here is the pause reason, not the flag; the NUL makes the driver raise.
    result = cli("pause", "alpha.com", "--reason", "-v", "--org", "\x00")
    assert result.code == 2
    assert result.stderr == (
        "error: invalid value: PostgreSQL text fields cannot contain NUL (0x00) bytes\n"
    )
    # The flag itself, anywhere among the options, still shows the traceback.
    verbose = cli("pause", "alpha.com", "-v", "--reason", "-v", "--org", "\x00")
    assert verbose.code == 2
    assert verbose.stderr.startswith("Traceback (most recent call last):")
    assert verbose.stderr.splitlines()[-1] == result.stderr.strip()


def test_an_undecodable_argument_is_invalid_input(cli: Cli, world: Any) -> None:
    before = fingerprint(world)
    result = cli("resume", "alpha.com", "--org", "\udcff")
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: an argument holds bytes that are not valid text")
    assert fingerprint(world) == before


def test_a_run_time_near_the_year_9999_is_shown_without_overflow(cli: Cli, world: Any) -> None:
    import json

    assert cli("update", "alpha.com", "--start-at", "9999-12-31T20:00:00Z").code == 0
    shown = cli("show", "alpha.com", "--next", "1000", "--json")
    assert shown.code == 0, shown.stderr
    # Only the times a datetime can hold: 20:00 and nothing 6 hours later.
    assert json.loads(shown.stdout)["next_runs"] == ["9999-12-31T20:00:00Z"]


def test_a_new_interval_past_the_year_9999_is_refused(cli: Cli, world: Any) -> None:
    assert cli("update", "alpha.com", "--start-at", "9999-12-31T20:00:00Z").code == 0
    before = fingerprint(world)
    result = cli("update", "alpha.com", "--every", "48h")
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == "error: --every: the next run would fall after the year 9999\n"
    assert fingerprint(world) == before


@pytest.mark.parametrize(
    ("args", "path"), [(["org"], "schedctl org"), ([], "schedctl")], ids=["org", "bare"]
)
def test_a_command_group_without_a_command_is_one_error_line(
    cli: Cli, args: list[str], path: str
) -> None:
    result = cli(*args)
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == f"error: missing command (see `{path} --help`)\n"
