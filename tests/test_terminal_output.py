"""Output for people: on a terminal (a real pseudo-terminal), tables that fit its width and
show relative times, colours only without NO_COLOR; elsewhere plain tab-separated text."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from rich.cells import cell_len

from tests.helpers import (
    ANSI,
    BOX,
    Cli,
    Conn,
    make_due,
    make_org,
    make_scheduler,
    run_cli_subprocess,
    run_in_terminal,
)

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colour_codes(text: str) -> list[str]:
    """The SGR parameters in `text` that set a foreground or background colour."""
    found = []
    for params in SGR.findall(text):
        for param in params.split(";"):
            if param.isdigit() and (
                30 <= int(param) <= 38 or 40 <= int(param) <= 48 or 90 <= int(param) <= 107
            ):
                found.append(param)
    return found


def _visible(text: str) -> list[str]:
    return ANSI.sub("", text).splitlines()


def _column(lines: list[str], index: int) -> str:
    """Everything in one column of a rich table's body, its folded pieces joined and
    spaces left out."""
    body = [line for line in lines if line.startswith("│")]
    return "".join(line.split("│")[index + 1].replace(" ", "") for line in body)


def _index(lines: list[str], header: str) -> int:
    """Where a column is (a narrow table leaves some out; see the README)."""
    first = next(line for line in lines if line.startswith("┃"))
    return [cell.strip() for cell in first.strip().strip("┃").split("┃")].index(header)


@pytest.fixture
def schedulers(cli: Cli, conn: Conn) -> dict[str, dict[str, Any]]:
    """One scheduler overdue, one upcoming, one paused (with a reason), and some history."""
    make_org(cli, "Acme")
    docs = {
        "late.com": make_scheduler(cli, "late.com"),
        "soon.org": make_scheduler(cli, "soon.org", "--every", "12h"),
        "bücher.de": make_scheduler(cli, "bücher.de", "--every", "24h"),
    }
    make_due(conn, docs["late.com"]["id"], "3 hours 10 minutes")
    cli("pause", "bücher.de", "--reason", "site migration [/blog]")
    cli("run", "soon.org")
    return docs


@pytest.mark.parametrize("columns", [80, 200])
def test_list_on_a_terminal_is_a_table_that_fits_its_width(
    database_url: str, schedulers: dict[str, dict[str, Any]], columns: int
) -> None:
    code, out = run_in_terminal(["list"], {"SCHEDCTL_DATABASE_URL": database_url}, columns)
    assert code == 0, out
    lines = _visible(out)
    assert BOX.search(out)
    widths = [cell_len(line) for line in lines]
    assert max(widths) <= columns, "\n".join(lines)
    text = "\n".join(lines)
    assert "UTC" in text
    assert "xn--bcher-kva.de(bücher.de)" in _column(lines, 0)
    # Ids cut to a prefix that REF accepts, never folded over lines.
    ids = _column(lines, _index(lines, "Id"))
    assert ids == "".join(schedulers[d]["id"][:8] for d in ("late.com", "soon.org", "bücher.de"))
    # The last run: soon.org's manual run, pending; the others have none.
    assert re.search(r"pending", _column(lines, _index(lines, "Last run")))
    if columns == 200:
        assert max(widths) > 100  # rich used the width it was given, not a default 80
        for doc in schedulers.values():
            assert f" {doc['id'][:8]} " in text  # nothing cut or folded
        assert re.search(r"│ 3h 1\dm overdue +│", text)
        assert re.search(r"│ in 11h 5\dm +│", text)
        assert "paused: site migration [/blog]" in text
        assert "(bücher.de)" in text


def test_list_on_a_narrow_terminal_folds_instead_of_overflowing(
    database_url: str, schedulers: dict[str, dict[str, Any]]
) -> None:
    code, out = run_in_terminal(["list"], {"SCHEDCTL_DATABASE_URL": database_url}, 60)
    assert code == 0, out
    lines = _visible(out)
    assert max(cell_len(line) for line in lines) <= 60, "\n".join(lines)
    # Folded over lines, never truncated; ids are short and on one line.
    ids = _column(lines, _index(lines, "Id"))
    assert ids == "".join(schedulers[d]["id"][:8] for d in ("late.com", "soon.org", "bücher.de"))
    for doc in schedulers.values():
        assert f" {doc['id'][:8]} " in "\n".join(lines)
    assert _column(lines, 0) == "late.comsoon.orgxn--bcher-kva.de(bücher.de)"


def test_colours_on_a_terminal_and_none_with_no_color(
    database_url: str, schedulers: dict[str, dict[str, Any]]
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url}
    code, coloured = run_in_terminal(["list"], env, 120)
    assert code == 0
    assert {"31", "32", "33"} <= set(colour_codes(coloured))  # overdue, enabled, paused
    for args in (["list"], ["history", "soon.org"], ["log"], ["org", "list"]):
        code, plain = run_in_terminal(args, env | {"NO_COLOR": "1"}, 120)
        assert code == 0, plain
        assert colour_codes(plain) == [], (args, plain)
        assert BOX.search(plain)  # still a table


def test_history_log_show_and_status_on_a_terminal_show_relative_times(
    database_url: str, schedulers: dict[str, dict[str, Any]]
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url}
    code, history = run_in_terminal(["history", "soon.org"], env, 160)
    assert code == 0
    assert re.search(r"│ (just now|\dm ago) +│", ANSI.sub("", history))
    code, log = run_in_terminal(["log"], env, 200)
    assert code == 0
    log_text = ANSI.sub("", log)
    assert len(re.findall(r"│ (just now|\dm ago) +│", log_text)) >= 5
    assert "[/blog]" in log_text  # shown as written, not read as rich markup
    code, show = run_in_terminal(["show", "late.com"], env, 160)
    assert code == 0
    assert re.search(r"^next run +\S+Z  \(3h 1\dm overdue\)$", show, re.M)
    assert re.search(r"^ +\S+Z  \(in 2h (49|50)m\)$", show, re.M)
    code, status = run_in_terminal(["status", "--max-lag", "1d"], env, 160)
    assert code == 0, status
    assert re.search(r"^worst lag +3h 1\dm \(limit 1d\)$", status, re.M)


def test_json_on_a_terminal_is_one_document(
    database_url: str, schedulers: dict[str, dict[str, Any]]
) -> None:
    code, out = run_in_terminal(["list", "--json"], {"SCHEDCTL_DATABASE_URL": database_url}, 80)
    assert code == 0
    assert "\x1b" not in out
    assert {doc["id"] for doc in json.loads(out)} == {d["id"] for d in schedulers.values()}


def test_output_is_plain_text_when_stdout_is_not_a_terminal(
    database_url: str, schedulers: dict[str, dict[str, Any]]
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url, "COLUMNS": "40"}
    listed = run_cli_subprocess(["list"], env)
    assert listed.code == 0, listed.stderr
    assert "\x1b" not in listed.stdout
    assert not BOX.search(listed.stdout)
    lines = listed.stdout.splitlines()
    assert lines[0] == "domain\tevery\tnext_run\tstatus\toverlap\tid\tlast_run\tlast_status"
    rows = [line.split("\t") for line in lines[1:]]
    assert [row[0] for row in rows] == ["late.com", "soon.org", "xn--bcher-kva.de"]
    assert [row[5] for row in rows] == [
        schedulers[d]["id"] for d in ("late.com", "soon.org", "bücher.de")
    ]
    assert [row[2] for row in rows] == [
        json.loads(run_cli_subprocess(["show", d, "--json"], env).stdout)["next_run_at"]
        for d in ("late.com", "soon.org", "bücher.de")
    ]
    assert rows[2][3] == "paused: site migration [/blog]"
    assert "overdue" not in listed.stdout and " ago" not in listed.stdout

    for args, header in (
        (
            ["history", "soon.org"],
            "job\tstatus\tprogress\tcreated\tcompleted\tdone\tfailed\tslot\ttrigger",
        ),
        (["log"], "at\tactor\taction\tdomain\tchanges\treason\tsource"),
        (["org", "list"], "name\tschedulers\tid"),
    ):
        result = run_cli_subprocess(args, env)
        assert result.code == 0, result.stderr
        assert "\x1b" not in result.stdout and not BOX.search(result.stdout)
        assert result.stdout.splitlines()[0] == header
        width = header.count("\t")
        assert all(line.count("\t") == width for line in result.stdout.splitlines())
