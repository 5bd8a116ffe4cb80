"""`export` then `apply --check`: schedulers made by commands, exported, match the file
exactly; only their adoption (unmanaged → managed) would happen, which is not drift."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import Cli, Conn, fingerprint, make_org, make_scheduler


def test_export_then_check_exits_0_and_names_what_it_would_adopt(
    cli: Cli, conn: Conn, tmp_path: Path
) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "plain.com")
    make_scheduler(
        cli,
        "zoned.org",
        "--every",
        "24h",
        "--at",
        "03:00",
        "--time-zone",
        "Europe/London",
        "--spread",
        "1h",
    )
    make_scheduler(cli, "paused.net", "--disabled", "--until", "2099-01-01T06:00:00Z")
    path = tmp_path / "exported.yaml"
    path.write_text(cli("export").stdout, encoding="utf-8")
    before = fingerprint(conn)

    check = cli("apply", "-f", str(path), "--check")
    assert check.code == 0, (check.stdout, check.stderr)
    assert check.stderr == ""
    adopted = [line for line in check.stdout.splitlines() if line.startswith("~ adopt ")]
    assert len(adopted) == 3, check.stdout
    assert "3 adopted" in check.stdout.splitlines()[-1]

    as_json = cli("apply", "-f", str(path), "--check", "--json")
    assert as_json.code == 0
    plan = json.loads(as_json.stdout)
    assert plan["drift"] is False and plan["in_sync"] is False
    assert len(plan["adopted"]) == 3
    assert fingerprint(conn) == before  # --check writes nothing


def test_adoption_that_changes_a_schedule_is_drift(cli: Cli, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "plain.com", "--every", "12h")
    path = tmp_path / "file.yaml"
    path.write_text("schedulers:\n  - domain: plain.com\n    every: 6h\n", encoding="utf-8")
    check = cli("apply", "-f", str(path), "--check", "--json")
    assert check.code == 1
    plan = json.loads(check.stdout)
    assert plan["drift"] is True
    assert plan["adopted"][0]["changes"] == {"every": ["12h", "6h"]}
