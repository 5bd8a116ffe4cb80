"""Shell completion of values read from the database, through real processes: `show <TAB>`
lists the organisation's domains, --org its names, --time-zone the server's zones; a database
that does not answer completes nothing, silently."""

from __future__ import annotations

from tests.helpers import Cli, make_org, make_scheduler, run_cli_subprocess

# Generous for a loaded test machine; the default is half a second.
_PATIENT = {"SCHEDCTL_COMPLETION_TIMEOUT": "30"}


def _complete(words: str, cword: int, env: dict[str, str]) -> list[str]:
    result = run_cli_subprocess(
        [],
        env
        | {"_SCHEDCTL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
    )
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.split()


def test_show_tab_lists_the_organisations_domains(cli: Cli, database_url: str) -> None:
    acme, other = make_org(cli, "acme"), make_org(cli, "other")
    make_scheduler(cli, "alpha.com", "--org", acme)
    make_scheduler(cli, "beta.com", "--org", acme)
    make_scheduler(cli, "gamma.com", "--org", other)
    env = {"SCHEDCTL_DATABASE_URL": database_url, **_PATIENT}
    assert _complete("schedctl show --org acme ", 4, env) == ["alpha.com", "beta.com"]
    # "bet": no id can begin so ("b" alone also offers an id that begins with b, 1 in 8 runs)
    assert _complete("schedctl show --org acme bet", 4, env) == ["beta.com"]
    assert _complete("schedctl history ", 2, env | {"SCHEDCTL_ORG": "other"}) == ["gamma.com"]
    # several organisations and none chosen: nothing to offer
    assert _complete("schedctl show ", 2, env) == []


def test_the_only_organisation_needs_no_org_and_ids_complete_too(
    cli: Cli, database_url: str
) -> None:
    make_org(cli, "acme")
    scheduler = make_scheduler(cli, "alpha.com")
    env = {"SCHEDCTL_DATABASE_URL": database_url, **_PATIENT}
    assert _complete("schedctl pause ", 2, env) == ["alpha.com"]
    assert _complete(f"schedctl show {scheduler['id'][:4]}", 2, env) == [scheduler["id"]]


def test_org_time_zone_and_every_complete(cli: Cli, database_url: str) -> None:
    make_org(cli, "acme")
    make_org(cli, "Acorn")
    env = {"SCHEDCTL_DATABASE_URL": database_url, **_PATIENT}
    assert _complete("schedctl list --org ", 3, env) == ["Acorn", "acme"]
    assert _complete("schedctl list --org Ac", 3, env) == ["Acorn"]
    assert "Europe/Paris" in _complete("schedctl create x.com --time-zone Europe/P", 4, env)
    assert _complete("schedctl create x.com --every ", 4, env) == ["6h", "12h", "24h", "48h"]


def test_a_database_that_does_not_answer_completes_nothing(silent_port: int) -> None:
    env = {
        "SCHEDCTL_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{silent_port}/postgres",
        "SCHEDCTL_COMPLETION_TIMEOUT": "0.5",
    }
    assert _complete("schedctl show ", 2, env) == []
    assert _complete("schedctl list --org ", 3, env) == []


def test_no_database_configured_completes_nothing_and_starts_no_server() -> None:
    assert _complete("schedctl show ", 2, {}) == []
