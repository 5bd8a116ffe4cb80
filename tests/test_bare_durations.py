"""A number without a unit is not a duration: `--every 6` means hours, so reading `5`
elsewhere as seconds would be a guess. Each is exit 2 with the units to choose from, and
writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Cli, Conn, assert_error, fingerprint, make_org, make_scheduler


@pytest.fixture
def world(cli: Cli) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "example.com")


@pytest.mark.parametrize(
    "args",
    [
        ["pause", "example.com", "--until", "5"],
        ["update", "example.com", "--spread", "5"],
        ["update", "example.com", "--catchup-window", "5"],
        ["create", "other.com", "--every", "6h", "--spread", "5"],
        ["status", "--max-lag", "5"],
    ],
    ids=["pause-until", "update-spread", "update-catchup", "create-spread", "status-max-lag"],
)
def test_a_bare_number_for_a_duration_is_refused(
    cli: Cli, conn: Conn, world: None, args: list[str]
) -> None:
    before = fingerprint(conn)
    message = assert_error(cli(*args), 2)
    assert "did you mean 5m / 5h?" in message, message
    assert fingerprint(conn) == before


def test_a_bare_number_in_a_file_is_refused_naming_the_key(
    cli: Cli, conn: Conn, world: None, tmp_path: Path
) -> None:
    path = tmp_path / "schedulers.yaml"
    path.write_text("schedulers:\n  - domain: example.com\n    every: 24h\n    spread: 5\n")
    before = fingerprint(conn)
    result = cli("apply", "-f", str(path))
    assert result.code == 2, result
    assert "spread" in result.stderr and "did you mean 5m / 5h?" in result.stderr
    assert "--spread" not in result.stderr
    assert fingerprint(conn) == before


def test_zero_and_durations_with_a_unit_still_work(cli: Cli, world: None) -> None:
    assert cli("update", "example.com", "--spread", "0").code == 0
    assert cli("update", "example.com", "--spread", "5m").code == 0
    assert cli("status", "--max-lag", "1d").code == 0
    assert cli("pause", "example.com", "--until", "5h").code == 0


def test_every_keeps_its_bare_hours(cli: Cli, world: None) -> None:
    result = cli("create", "bare.com", "--every", "6", "--json")
    assert result.code == 0, result.stderr
    assert '"schedule_interval_hours": 6' in result.stdout


def test_a_spread_longer_than_the_interval_is_named_without_zero_units(
    cli: Cli, world: None
) -> None:
    message = assert_error(cli("update", "example.com", "--spread", "1500m"), 2)
    assert message.endswith("got 25h"), message
