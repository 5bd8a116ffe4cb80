"""Tables and records that fit the terminal: at 80, 100 and 120 columns of a real
pseudo-terminal (its size read by schedctl, as after `stty cols N`), no line is wider than
the terminal, every id shown has at least 8 characters and works as a REF, and no word is
split over two lines."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from rich.cells import cell_len

from tests.helpers import ANSI, BOX, Cli, Conn, make_due, make_org, make_scheduler, run_in_terminal

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Words a terminal adds to what plain output says: times to the minute, relative times.
_TERMINAL_WORD = re.compile(
    r"^(\d{4}-\d\d-\d\d|\d\d:\d\d|UTC|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ|\d+[dhms]|in|ago|"
    r"overdue|just|now|Org|Scheds|Ended|Schedulers|Jobs|of|Audit|log|Organisations)$"
)
_PUNCTUATION = ",;:()[]"


def in_terminal(args: list[str], env: dict[str, str], columns: int) -> str:
    """schedctl run on a pseudo-terminal `columns` wide (no COLUMNS variable: schedctl reads
    the terminal's size); everything it wrote, without colours."""
    code, out = run_in_terminal(args, env, columns, timeout=120, columns_variable=False)
    assert code in (0, 1), out
    return ANSI.sub("", out)


def _words(text: str) -> set[str]:
    """The words of `text`, without surrounding punctuation, and each domain's labels."""
    found = set()
    for word in text.split():
        labels = word.strip(_PUNCTUATION).split(".")
        for start in range(len(labels)):
            for end in range(start + 1, len(labels) + 1):
                run = ".".join(labels[start:end])
                found |= {run, f"{run}.", run.strip(_PUNCTUATION)}
    return found


def _header(lines: list[str]) -> list[str]:
    """The first line of a rich table's header row, by column."""
    first = next((line for line in lines if line.startswith("┃")), "")
    return [cell.strip() for cell in first.strip().strip("┃").split("┃")]


def _table_cells(lines: list[str]) -> list[list[str]]:
    """The cells of each line of a rich table (its border lines left out)."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in lines
        if line.startswith("│")
    ]


@pytest.fixture
def world(cli: Cli, conn: Conn) -> dict[str, Any]:
    """Three organisations with long names, schedulers of every kind, jobs and audit."""
    docs: dict[str, Any] = {}
    for org in ("Northwind Logistics", "Contoso Pharmaceuticals", "Fabrikam"):
        make_org(cli, org)
        prefix = org.split()[0].lower()
        docs[f"{prefix}.com"] = make_scheduler(
            cli,
            f"{prefix}.com",
            "--org",
            org,
            "--every",
            "24h",
            "--at",
            "03:00",
            "--time-zone",
            "Europe/London",
            "--spread",
            "1h",
            "--catchup-window",
            "2h",
        )
        docs[f"shop.{prefix}.example.org"] = make_scheduler(
            cli, f"shop.{prefix}.example.org", "--org", org, "--overlap", "skip"
        )
    docs["bücher.de"] = make_scheduler(cli, "bücher.de", "--org", "Fabrikam")
    make_due(conn, docs["shop.fabrikam.example.org"]["id"], "3 hours")
    cli("pause", "bücher.de", "--org", "Fabrikam", "--reason", "site migration", "--until", "3d")
    cli("run", "fabrikam.com", "--org", "Fabrikam")
    cli("run", "shop.fabrikam.example.org", "--org", "Fabrikam")
    return docs


COMMANDS = [
    ["list", "--org", "Fabrikam"],
    ["list", "--all-orgs"],
    ["show", "fabrikam.com", "--org", "Fabrikam"],
    ["history", "fabrikam.com", "--org", "Fabrikam"],
    ["log", "--org", "Fabrikam"],
    ["log", "--all-orgs"],
    ["status", "--max-lag", "1d"],
]


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_output_fits_the_terminal_without_splitting_words_or_ids(
    cli: Cli, database_url: str, world: dict[str, Any], columns: int
) -> None:
    for args in COMMANDS:
        _check_fits(cli, database_url, world, args, columns)


def _check_fits(
    cli: Cli, database_url: str, world: dict[str, Any], args: list[str], columns: int
) -> None:
    env = {"SCHEDCTL_DATABASE_URL": database_url}
    out = in_terminal(args, env, columns)
    lines = out.splitlines()
    assert lines, out
    too_wide = [line for line in lines if cell_len(line) > columns]
    assert not too_wide, out

    # Every word shown is a word of the plain output (or one a terminal adds): none is
    # cut in two over lines.
    plain = cli(*args)
    known = _words(plain.stdout) | _words(" ".join(world))  # the titles name domains
    short_ids = {doc["id"][:n] for doc in world.values() for n in range(8, 37)}
    short_ids |= {word[:8] for word in known if UUID.match(word)}  # a job in the audit
    jobs = json.loads(cli(*args, "--json").stdout) if args[0] == "history" else []
    short_ids |= {job["id"][:n] for job in jobs for n in range(8, len(job["id"]) + 1)}
    header_words = {"Organisation", "Domain", "Every", "Next", "run", "Status", "Overlap"}
    header_words |= {"Id", "Last", "Job", "Progress", "Created", "Completed", "Done", "Failed"}
    header_words |= {"Slot", "Trigger", "At", "Actor", "Action", "Changes", "Reason", "Source"}
    for line in lines:
        for word in BOX.sub(" ", line).split():
            bare = word.strip(_PUNCTUATION)
            if not bare:
                continue
            assert (
                bare in known
                or bare in short_ids
                or bare in header_words
                or _TERMINAL_WORD.match(bare)
                or bare.endswith(".")  # a domain folded after a dot
            ), f"{bare!r} is not a whole word ({columns} columns):\n{out}"

    # Ids: at least 8 characters, whole on one line, and each one a REF that finds it.
    header = _header(lines)
    rows = _table_cells(lines)
    if args[0] == "list":
        column = header.index("Id")
        ids = [row[column] for row in rows if row[column]]
        assert len(ids) == (7 if "--all-orgs" in args else 3), out
        for shown in ids:
            assert len(shown) >= 8, out
            owners = [doc for doc in world.values() if doc["id"].startswith(shown)]
            assert len(owners) == 1, shown
            result = cli("show", shown, "--org", owners[0]["organisation_id"], "--json")
            assert result.code == 0, result.stderr
            assert json.loads(result.stdout)["id"] == owners[0]["id"]
    if args[0] == "history":
        column = header.index("Job")
        ids = [row[column] for row in rows if row[column]]
        assert ids, out
        assert all(len(shown) >= 8 and shown in short_ids for shown in ids), out
