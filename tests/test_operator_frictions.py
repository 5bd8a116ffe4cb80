"""The small frictions an operator met in 0.3: messages that say what to do next (short id
prefixes, the nearest key or zone, which scheduler lags), a tick that says what it resumed,
`status --prometheus` when the database is down, and help that shows what is required, how
Ctrl-C exits and examples."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import (
    Cli,
    Conn,
    assert_error,
    make_org,
    make_scheduler,
    run_cli,
    run_cli_subprocess,
)


def test_a_ref_shorter_than_an_id_prefix_says_prefixes_need_8(cli: Cli) -> None:
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "example.com")
    message = assert_error(cli("show", doc["id"][:4]), 3)
    assert message == (
        f"no scheduler {doc['id'][:4]!r} in organisation 'Acme' "
        "(an id prefix needs at least 8 characters)"
    )
    assert "id prefix" not in assert_error(cli("show", "nowhere.com"), 3)
    assert cli("show", doc["id"][:8]).code == 0


def test_tick_and_its_dry_run_say_which_pauses_ran_out(cli: Cli, conn: Conn) -> None:
    make_org(cli, "Acme")
    make_scheduler(cli, "paused.com", "--disabled", "--until", "2h")
    # Enabled with a run-out `paused_until` left behind: tick clears it, resumes nothing.
    enabled = make_scheduler(cli, "enabled.com", "--disabled", "--until", "2h")
    conn.execute("UPDATE schedulers SET is_enabled = TRUE WHERE id = %s", [enabled["id"]])
    conn.execute(
        "UPDATE schedctl.scheduler_settings SET paused_until = now() - interval '1 minute'"
    )
    dry = cli("tick", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert dry.stdout.splitlines()[-1].endswith(", 1 to resume"), dry.stdout
    assert json.loads(cli("tick", "--dry-run", "--json").stdout)["resumed"] == 1
    real = cli("tick")
    assert real.code == 0, real.stderr
    assert real.stdout.splitlines()[-1].endswith(", 1 resumed"), real.stdout
    assert json.loads(cli("tick", "--json").stdout)["resumed"] == 0
    assert cli("tick").stdout.splitlines()[-1].endswith(" missed")  # none: not mentioned


def test_an_unknown_key_or_zone_suggests_the_nearest(cli: Cli, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    path = tmp_path / "file.yaml"
    path.write_text("schedulers:\n  - domain: a.com\n    evrey: 6h\n", encoding="utf-8")
    message = assert_error(cli("apply", "-f", str(path)), 2)
    assert "unknown key 'evrey' (did you mean 'every'?)" in message, message
    path.write_text("schedulers:\n  - domain: a.com\n    every: 6h\n    zzz: 1\n")
    assert "known keys: " in assert_error(cli("apply", "-f", str(path)), 2)  # none near
    zone = assert_error(
        cli("create", "b.com", "--every", "24h", "--at", "03:00", "--time-zone", "Europe/Londn"),
        2,
    )
    assert "(did you mean Europe/London?)" in zone, zone


def test_a_file_error_names_the_key_not_the_flag(cli: Cli, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    path = tmp_path / "file.yaml"
    path.write_text("schedulers:\n  - domain: a.com\n    every: 5x\n", encoding="utf-8")
    message = assert_error(cli("apply", "-f", str(path)), 2)
    assert "every must be one of" in message and "--every" not in message, message


def test_status_prometheus_says_down_when_the_database_does_not_answer() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    result = run_cli_subprocess(["status", "--prometheus"], {"SCHEDCTL_DATABASE_URL": url})
    assert result.code == 5, result
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(result.stdout)
        for sample in family.samples
    }
    assert samples == {"schedctl_up": 0}
    assert result.stderr.startswith("error: cannot connect")


def test_metric_help_says_what_each_count_counts(cli: Cli, tmp_path: Path) -> None:
    make_org(cli, "Acme")
    target = tmp_path / "schedctl.prom"
    assert cli("tick", "--quiet", "--metrics-file", str(target)).code == 0
    docs = {f.name: f.documentation for f in text_string_to_metric_families(target.read_text())}
    assert docs["schedctl_tick_last_created"].startswith("Jobs created")
    assert docs["schedctl_tick_last_missed"].startswith("Slots passed over")
    assert not any(doc.startswith("Schedulers created") for doc in docs.values())


def test_help_marks_what_is_required_and_shows_examples() -> None:
    top = run_cli(["--help"]).stdout
    assert "130  interrupted" in top
    assert "export" in top.split("Every command but")[1].split("takes")[0]
    create = run_cli(["create", "--help"]).stdout
    every = create[create.index("--every") :].split("\n  --")[0]
    assert "[required]" in every, create
    assert "--metrics-file PATH" in run_cli(["tick", "--help"]).stdout
    for command in ("create", "pause", "apply", "status", "tick"):
        text = run_cli([command, "--help"]).stdout
        assert "Examples:\n    schedctl " + command in text, (command, text)
