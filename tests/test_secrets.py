"""The database password never appears in any output or error, `-v` tracebacks included.

A real role with a password is made on the test server. That server trusts local
connections, so a wrong password still connects (and the role, lacking privileges, fails
in other ways); an authentication failure as such cannot be provoked here. Everything else
is real: refused and silent ports, unknown hosts and databases, malformed URLs (including
passwords that were not percent-encoded, which a parser may read as a host or a port), the
key=value form, DATABASE_URL and a .env file, and `migrate` with each."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import Cli, Result, check_result, run_cli_subprocess

# Two random pieces: if either shows up anywhere, some of the password leaked.
HEAD = f"s3cr3t{secrets.token_hex(6)}"
TAIL = f"k3y{secrets.token_hex(6)}"
# Characters that URL and conninfo parsers treat specially, between the two pieces.
PASSWORD = f"{HEAD} @/:%?&=+\u00fc#'\\{TAIL}"
ROLE = f"schedctl_pw_{secrets.token_hex(4)}"


def leaked(text: str, password: str = PASSWORD) -> list[str]:
    """The forms of the password (or the pieces of it) found in `text`."""
    forms = {
        password,
        quote(password, safe=""),
        quote(password),
        quote_plus(password),
        password.encode("unicode_escape").decode("ascii"),
        HEAD,
        TAIL,
    }
    return sorted(form for form in forms if form and form in text)


@pytest.fixture
def target(server_url: str, database_url: str) -> Iterator[dict[str, str]]:
    """A role with the password, allowed to use this test's database; where it lives."""
    params = conninfo_to_dict(database_url)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(PASSWORD)
            )
        )
    try:
        yield {
            "host": str(params.get("host") or ""),
            "port": str(params.get("port") or "5432"),
            "dbname": str(params["dbname"]),
        }
    finally:
        role = sql.Identifier(ROLE)
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))  # and its privileges
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


def uri(
    target: dict[str, str],
    *,
    password: str = PASSWORD,
    host: str | None = None,
    port: str | None = None,
    dbname: str | None = None,
    encode: bool = True,
    query: str = "",
) -> str:
    """A URI for the role; a Unix-socket server is named in the query, as libpq wants."""
    secret = quote(password, safe="") if encode else password
    host = target["host"] if host is None else host
    port = target["port"] if port is None else port
    dbname = target["dbname"] if dbname is None else dbname
    if host.startswith("/"):
        extra = f"host={quote(host, safe='')}&port={port}"
        query = f"{query}&{extra}" if query else extra
        netloc = f"{ROLE}:{secret}@"
    else:
        netloc = f"{ROLE}:{secret}@{host}:{port}"
    return f"postgresql://{netloc}/{dbname}" + (f"?{query}" if query else "")


# Commands run against each URL, each also with -v; the NUL in --org makes the driver raise
# (an error with a cause, so -v prints its traceback).
COMMANDS = [
    ["list"],
    ["list", "--org", "\x00"],
    ["org", "create", "Acme"],
    ["org", "list", "--json"],
    ["show", "example.com"],
    ["tick", "--json"],
    ["status", "--json"],
    ["migrate"],
    ["migrate", "--dry-run"],
]


def _run_all(
    cli: Cli,
    env: dict[str, str],
    commands: list[list[str]] = COMMANDS,
    verbosity: Any = ((), ("-v",)),
) -> list[Any]:
    results = []
    for command in commands:
        for verbose in verbosity:
            result = cli(*command, *verbose, env=env)
            check_result(result, verbose=bool(verbose))
            assert not leaked(result.stdout + result.stderr), (command, verbose, result)
            results.append(result)
    return results


def _grant(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as admin:
        role = sql.Identifier(ROLE)
        admin.execute(sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA public TO {}").format(role))
        admin.execute(sql.SQL("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {}").format(role))
        admin.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(role))
        admin.execute(sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA schedctl TO {}").format(role))
        admin.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA schedctl TO {}").format(role))


def test_the_right_password_with_privileges(cli: Cli, database_url: str, target: Any) -> None:
    _grant(database_url)
    results = _run_all(cli, {"SCHEDCTL_DATABASE_URL": uri(target)})
    assert results[4].code == 0, results[4].stderr  # org create worked: the role connected


def test_a_wrong_password_on_a_trusting_server(cli: Cli, database_url: str, target: Any) -> None:
    _grant(database_url)
    wrong = PASSWORD[::-1]
    results = _run_all(cli, {"SCHEDCTL_DATABASE_URL": uri(target, password=wrong)})
    assert results[4].code == 0, results[4].stderr  # trusted: connected all the same
    assert not leaked("".join(r.stdout + r.stderr for r in results), wrong)


def test_a_role_without_privileges(cli: Cli, target: Any) -> None:
    # Without -v for `migrate`: yoyo retries its lock table for 10 s before giving up.
    commands = [c for c in COMMANDS if c != ["migrate"]]
    results = _run_all(cli, {"SCHEDCTL_DATABASE_URL": uri(target)}, commands)
    results += _run_all(cli, {"SCHEDCTL_DATABASE_URL": uri(target)}, [["migrate"]], [("-v",)])
    # Connected, then refused by the missing privileges: exit 5 with the reason.
    assert results[0].code == 5
    assert "permission denied" in results[0].stderr
    assert results[-1].code == 5
    assert "permission denied" in results[-1].stderr


def test_an_unreachable_port(cli: Cli, target: Any) -> None:
    results = _run_all(cli, {"SCHEDCTL_DATABASE_URL": uri(target, host="127.0.0.1", port="1")})
    assert {r.code for r in results} == {5}
    assert results[0].stderr.startswith("error: cannot connect to the database: ")


def test_a_server_that_never_answers(cli: Cli, target: Any, silent_port: int) -> None:
    url = uri(target, host="127.0.0.1", port=str(silent_port))
    for command in (["list", "-v"], ["migrate", "-v"]):
        result = cli(*command, env={"SCHEDCTL_DATABASE_URL": url, "SCHEDCTL_CONNECT_TIMEOUT": "2"})
        check_result(result, verbose=True)
        assert result.code == 5, result
        assert not leaked(result.stderr)


def test_an_unknown_host(cli: Cli, target: Any) -> None:
    url = uri(target, host="no-such-host.invalid", port="5432")
    results = _run_all(cli, {"SCHEDCTL_DATABASE_URL": url})
    assert {r.code for r in results} == {5}


def test_an_unknown_database(cli: Cli, target: Any) -> None:
    results = _run_all(cli, {"SCHEDCTL_DATABASE_URL": uri(target, dbname="no_such_database")})
    assert {r.code for r in results} == {5}
    assert "no_such_database" in results[0].stderr


@pytest.mark.parametrize(
    "kind",
    [
        "port is not a number",
        "unknown query parameter",
        "unclosed bracket",
        "bad percent-encoding",
        "password not percent-encoded",
        "only the slash not percent-encoded",
        "only the at sign not percent-encoded",
    ],
)
def test_a_malformed_url(cli: Cli, target: Any, kind: str) -> None:
    host = "127.0.0.1"
    port = "5432" if not target["host"].startswith("/") else target["port"]
    db = target["dbname"]
    secret = quote(PASSWORD, safe="")
    url = {
        "port is not a number": f"postgresql://{ROLE}:{secret}@{host}:notaport/{db}",
        "unknown query parameter": f"postgresql://{ROLE}:{secret}@{host}:{port}/{db}?bogus=1",
        "unclosed bracket": f"postgresql://{ROLE}:{secret}@[::1/{db}",
        "bad percent-encoding": f"postgresql://{ROLE}:{HEAD}%zz{TAIL}@{host}:{port}/{db}",
        "password not percent-encoded": f"postgresql://{ROLE}:{PASSWORD}@{host}:{port}/{db}",
        "only the slash not percent-encoded": f"postgresql://{ROLE}:{HEAD}/{TAIL}@{host}:{port}/{db}",
        "only the at sign not percent-encoded": f"postgresql://{ROLE}:{HEAD}@{TAIL}@{host}:{port}/{db}",
    }[kind]
    results = _run_all(cli, {"SCHEDCTL_DATABASE_URL": url})
    assert {r.code for r in results} <= {1, 2, 5}, [r.stderr for r in results]


def test_the_key_value_form(cli: Cli, target: Any) -> None:
    escaped = PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
    conninfo = f"host=127.0.0.1 port=1 user={ROLE} password='{escaped}' dbname=x"
    results = _run_all(cli, {"SCHEDCTL_DATABASE_URL": conninfo})
    assert {r.code for r in results} == {5}
    conninfo = f"host=127.0.0.1 port=1 user={ROLE} password='{escaped}' dbname=x bogus=1"
    results = _run_all(cli, {"SCHEDCTL_DATABASE_URL": conninfo})
    assert {r.code for r in results} == {2}


def test_database_url_and_a_dotenv_file(
    cli: Cli, target: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = uri(target, dbname="no_such_database")
    monkeypatch.delenv("SCHEDCTL_DATABASE_URL")
    results = _run_all(cli, {"DATABASE_URL": url})
    assert {r.code for r in results} == {5}
    monkeypatch.delenv("DATABASE_URL")
    (tmp_path / ".env").write_text(f"SCHEDCTL_DATABASE_URL='{url}'\n")
    results = _run_all(cli, {})
    assert {r.code for r in results} == {5}
    assert "no_such_database" in results[0].stderr  # the .env URL was the one used


@pytest.mark.slow
def test_real_processes_print_no_password(database_url: str, target: Any, silent_port: int) -> None:
    """The same as real processes: whatever a library writes to the real stderr counts too."""
    _grant(database_url)
    urls = [
        uri(target),
        uri(target, host="127.0.0.1", port="1"),
        uri(target, host="127.0.0.1", port=str(silent_port)),
        uri(target, dbname="no_such_database"),
        f"postgresql://{ROLE}:{HEAD}/{TAIL}@127.0.0.1:5432/x",
    ]
    commands = (["migrate", "-v"], ["tick", "-v"], ["list", "-v", "--org", "\x01"])

    def run_all(url: str) -> list[Result]:
        env = {"SCHEDCTL_DATABASE_URL": url, "SCHEDCTL_CONNECT_TIMEOUT": "2"}
        return [run_cli_subprocess(command, env) for command in commands]

    # One URL's commands one after the other, the URLs side by side: most of their time is
    # spent waiting on servers that never answer.
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        for url, results in zip(urls, pool.map(run_all, urls), strict=True):
            for command, result in zip(commands, results, strict=True):
                assert result.code in {0, 1, 2, 3, 5}, result
                assert not leaked(result.stdout + result.stderr), (url, command, result)
