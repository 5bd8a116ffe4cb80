"""The commands and the file say the same thing the same way: a scheduler made with `create`
and changed with `update` (and `pause`/`resume`) equals one made and changed by `apply -f`
of the same values, and so do their audit trails; `list`, `show`, `create` and `update`
print the same scheduler document, each with only its documented extras."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import (
    JOB_KEYS,
    SCHEDULER_KEYS,
    Cli,
    make_org,
    ok_json,
    parse_time,
)

# Every test of this file reads the one scenario a process runs: keep them on one worker.
pytestmark = pytest.mark.xdist_group("parity")

# ---------------------------------------------------------------- the combinations

EVERY = ("6h", "12h", "24h", "48h")
OVERLAP = ("replace", "skip", "allow")
CONCURRENCY = (1, 5, 20, 100)
FIND_LINKS = (True, False)
MAX_PAGES = (0, 1000, 2_147_483_647)
PATHS = ((), ("/blog",), ("/blog", "/docs"), ("/shop/cart",))
WORKERS = (1, 2, 100)
REASONS = ("site migration", "billing hold: ask ops")
UNTIL = ("2099-01-01T06:00:00Z", "2098-06-30T12:00:00+02:00")
AT = ("03:00", "23:30", "12:45")
ZONES = ("UTC", "Europe/London", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe")
SPREAD = ("0", "30m", "1h", "3h")
CATCHUP = (None, "10m", "2h", "1d")


@dataclass(frozen=True)
class State:
    """A scheduler's fields as `create`'s options and the file's keys give them."""

    every: str = "6h"
    overlap: str = "replace"
    concurrency: int = 20
    find_links: bool = True
    max_pages: int = 0
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    required_workers: int = 1
    enabled: bool = True
    pause_reason: str | None = None
    paused_until: str | None = None
    at: str | None = None
    time_zone: str = "UTC"
    spread: str = "0"
    catchup_window: str | None = None


DEFAULT = State()

# The fields a combination may set, by the file key each is (manifest.FIELDS).
FILE_KEYS = {
    "every": "every",
    "overlap": "overlap",
    "concurrency": "concurrency",
    "find_links": "find-links",
    "max_pages": "max-pages",
    "include": "include",
    "exclude": "exclude",
    "required_workers": "required-workers",
    "enabled": "enabled",
    "pause_reason": "pause-reason",
    "paused_until": "paused-until",
    "at": "at",
    "time_zone": "time-zone",
    "spread": "spread",
    "catchup_window": "catchup-window",
}

_PLAIN_FIELDS = {
    "every": EVERY,
    "overlap": OVERLAP,
    "concurrency": CONCURRENCY,
    "find_links": FIND_LINKS,
    "max_pages": MAX_PAGES,
    "include": PATHS,
    "exclude": PATHS,
    "required_workers": WORKERS,
    "spread": SPREAD,
    "catchup_window": CATCHUP,
}


def _hours(duration: str) -> float:
    if duration == "0":
        return 0
    value, unit = int(duration[:-1]), duration[-1]
    return value * {"m": 1 / 60, "h": 1, "d": 24}[unit]


def _valid(state: State) -> bool:
    """What both the commands and the file accept, and mean the same by."""
    if _hours(state.spread) > _hours(state.every):
        return False
    # `--time-zone` without `--at` takes the local time of day, a file's `time-zone` does not
    # (a documented difference): a zone only with a time of day.
    if state.at is None and state.time_zone != "UTC":
        return False
    return not state.enabled or (state.pause_reason is None and state.paused_until is None)


def _pause_state(rng: random.Random, *, reason: bool) -> dict[str, Any]:
    kinds = ["enabled", "disabled", "until"] + (["reason", "reason+until"] if reason else [])
    kind = rng.choice(kinds)
    return {
        "enabled": kind == "enabled",
        "pause_reason": rng.choice(REASONS) if kind.startswith("reason") else None,
        "paused_until": rng.choice(UNTIL) if kind.endswith("until") else None,
    }


def _paths(rng: random.Random, old: tuple[str, ...]) -> tuple[str, ...]:
    """New paths: often the old ones with one added or taken away (what --add-include and
    --remove-include do), else any."""
    extra = rng.choice(("/news", "/shop/cart", "/docs/api"))
    if old and rng.random() < 0.3:
        return old[:-1]
    if rng.random() < 0.4 and extra not in old:
        return (*old, extra)
    return rng.choice(PATHS)


def _first(rng: random.Random) -> State:
    """A state `create` can make in one command: everything but a pause reason (create has
    no --reason; `pause --reason` gives one)."""
    while True:
        values: dict[str, Any] = {
            name: rng.choice(choices)
            for name, choices in _PLAIN_FIELDS.items()
            if rng.random() < 0.5
        }
        values["every"] = rng.choice(EVERY)
        if rng.random() < 0.4:
            values["at"] = rng.choice(AT)
            values["time_zone"] = rng.choice(ZONES)
        if rng.random() < 0.4:
            values |= _pause_state(rng, reason=False)
        state = replace(DEFAULT, **values)
        if _valid(state):
            return state


def _second(rng: random.Random, first: State) -> State:
    """`first` with one to four fields changed, the pause state every other time; a time of
    day, once set, stays (`update` cannot take it away)."""
    while True:
        values: dict[str, Any] = {}
        if rng.random() < 0.5:
            values |= _pause_state(rng, reason=True)
            if not first.enabled and rng.random() < 0.4:
                values |= {"enabled": True, "pause_reason": None, "paused_until": None}
        for name in rng.sample(["at", *_PLAIN_FIELDS], rng.randint(0 if values else 1, 3)):
            if name == "at":
                values["at"] = rng.choice(AT)
                values["time_zone"] = rng.choice(ZONES)
            elif name in ("include", "exclude"):
                values[name] = _paths(rng, getattr(first, name))
            else:
                values[name] = rng.choice(_PLAIN_FIELDS[name])
        state = replace(first, **values)
        if state != first and _valid(state):
            return state


@dataclass(frozen=True)
class Case:
    """One combination: the first values, the second, and how the commands disable and
    enable (with `pause`/`resume`, or with `update --disable`/`--enable` where it can)."""

    index: int
    first: State
    second: State
    by_update: bool

    @property
    def command_domain(self) -> str:
        return f"cmd-{self.index}.com"

    @property
    def file_domain(self) -> str:
        return f"file-{self.index}.com"


def _cases(count: int = 30, seed: int = 1623) -> list[Case]:
    """`count` combinations; the seed is the first whose thirty cover NEEDED."""
    rng = random.Random(seed)
    cases = []
    for index in range(count):
        first = _first(rng)
        second = _second(rng, first)
        cases.append(Case(index, first, second, by_update=rng.random() < 0.4))
    return cases


CASES = _cases()

# ---------------------------------------------------------------- the two paths


def _create_args(case: Case) -> list[str]:
    state = case.first
    args = ["create", case.command_domain, "--every", state.every]
    args += _option_args(DEFAULT, state, creating=True)
    if not state.enabled:
        args.append("--disabled")
        if state.paused_until is not None:
            args += ["--until", state.paused_until]
    return args


def _paths_args(name: str, old: tuple[str, ...], new: tuple[str, ...]) -> list[str]:
    """`--include`/`--exclude` (or their add, remove and clear forms) from `old` to `new`."""
    if not new:
        return [f"--clear-{name}"]
    if new[: len(old)] == old and old:
        return [arg for path in new[len(old) :] for arg in (f"--add-{name}", path)]
    if old[: len(new)] == new:
        return [arg for path in old[len(new) :] for arg in (f"--remove-{name}", path)]
    return [arg for path in new for arg in (f"--{name}", path)]


def _option_args(old: State, new: State, *, creating: bool = False) -> list[str]:
    """The options of `update` that take `old` to `new` (not the pause state); `creating`:
    those of `create` that make `new` (--every apart), `old` being the defaults."""
    args: list[str] = []
    if new.every != old.every and not creating:
        args += ["--every", new.every]
    if new.overlap != old.overlap:
        args += ["--overlap", new.overlap]
    if new.concurrency != old.concurrency:
        args += ["--concurrency", str(new.concurrency)]
    if new.find_links != old.find_links:
        args.append("--find-links" if new.find_links else "--no-find-links")
    if new.max_pages != old.max_pages:
        args += ["--max-pages", str(new.max_pages)]
    for name in ("include", "exclude"):
        old_paths, new_paths = getattr(old, name), getattr(new, name)
        if new_paths != old_paths:
            if creating:
                args += [arg for path in new_paths for arg in (f"--{name}", path)]
            else:
                args += _paths_args(name, old_paths, new_paths)
    if new.required_workers != old.required_workers:
        args += ["--required-workers", str(new.required_workers)]
    if new.at != old.at:
        assert new.at is not None
        args += ["--at", new.at]
    if new.time_zone != old.time_zone:
        args += ["--time-zone", new.time_zone]
    if new.spread != old.spread:
        args += ["--spread", new.spread]
    if new.catchup_window != old.catchup_window:
        args += ["--catchup-window", new.catchup_window or "none"]
    return args


def _change_commands(case: Case) -> list[list[str]]:
    """The commands that take the first values to the second: `update` for the fields, then
    `pause`/`resume` for the pause state (with `--disable`/`--enable` of update instead,
    where the case says so and no reason is involved)."""
    old, new, domain = case.first, case.second, case.command_domain
    update = _option_args(old, new)
    after: list[list[str]] = []
    pause_changed = (old.enabled, old.pause_reason, old.paused_until) != (
        new.enabled,
        new.pause_reason,
        new.paused_until,
    )
    if pause_changed:
        until = ["--until", new.paused_until] if new.paused_until is not None else []
        no_reason = new.pause_reason is None and old.pause_reason is None
        if new.enabled:
            if case.by_update and no_reason:
                update.append("--enable")
            else:
                after.append(["resume", domain])
        elif case.by_update and no_reason:
            update += ["--disable", *until]
        else:
            reason = ["--reason", new.pause_reason] if new.pause_reason is not None else []
            after.append(["pause", domain, *reason, *until])
    commands = [["update", domain, *update]] if update else []
    return commands + after


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(value) + "]"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a JSON string is a YAML string


def _entry(domain: str, state: State, explicit: bool) -> str:
    """One entry of a file: the keys with other values than create's defaults (`explicit`:
    every key, defaults too)."""
    lines = [f"  - domain: {domain}"]
    for name, key in FILE_KEYS.items():
        value = getattr(state, name)
        if name == "every" or explicit or value != getattr(DEFAULT, name):
            lines.append(f"    {key}: {'null' if value is None else _yaml(value)}")
    return "\n".join(lines)


def _file(states: list[tuple[str, State]], explicit: bool) -> str:
    return "schedulers:\n" + "\n".join(_entry(d, s, explicit) for d, s in states) + "\n"


# ---------------------------------------------------------------- the scenario, run once


@dataclass
class Parity:
    """What each path left: `show --json` and the audit entries of each scheduler."""

    shown: dict[str, dict[str, Any]] = field(default_factory=dict)  # by domain
    audit: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by domain, oldest first
    commands: dict[int, list[list[str]]] = field(default_factory=dict)  # by case index


_SCENARIO: list[Parity] = []


def _run(cli: Cli, *args: str) -> Any:
    return ok_json(cli(*args, "--json"))


def _scenario(cli: Cli, workdir: Path) -> Parity:
    make_org(cli, "Acme")  # the only organisation: every command and file is about it
    parity = Parity()
    # One file per step, an entry per case: the first gives the keys whose values are not
    # create's defaults (as export writes them), the second every key, nulls and defaults too.
    first = _file([(c.file_domain, c.first) for c in CASES], explicit=False)
    second = _file([(c.file_domain, c.second) for c in CASES], explicit=True)
    for case in CASES:
        parity.commands[case.index] = [_create_args(case)]
        _run(cli, *_create_args(case))
    (workdir / "first.yaml").write_text(first, encoding="utf-8")
    plan = _run(cli, "apply", "-f", str(workdir / "first.yaml"))
    assert len(plan["created"]) == len(CASES), plan
    for case in CASES:
        for command in _change_commands(case):
            parity.commands[case.index].append(command)
            assert _run(cli, *command)["changed"] is True, command
    (workdir / "second.yaml").write_text(second, encoding="utf-8")
    plan = _run(cli, "apply", "-f", str(workdir / "second.yaml"))
    assert len(plan["changed"]) == len(CASES), plan
    for case in CASES:
        for domain in (case.command_domain, case.file_domain):
            parity.shown[domain] = _run(cli, "show", domain)
    for entry in reversed(_run(cli, "log", "--limit", "1000")):
        if entry["domain"] is not None:
            parity.audit.setdefault(entry["domain"], []).append(entry)
    return parity


@pytest.fixture
def parity(request: pytest.FixtureRequest, tmp_path: Path) -> Parity:
    """The scenario, run by the first test of this process that needs it (in its database)."""
    if not _SCENARIO:
        cli: Cli = request.getfixturevalue("cli")
        _SCENARIO.append(_scenario(cli, tmp_path))
    return _SCENARIO[0]


# ---------------------------------------------------------------- comparing


# Readings of the clock, or of the scheduler's identity; compared apart below.
_APART = {
    "id",
    "organisation_id",
    "domain",
    "created_at",
    "updated_at",
    "next_run_at",
    "spread_offset_seconds",
    "next_runs",
    "next_runs_local",
}


def _slot(doc: dict[str, Any], moment: str) -> datetime:
    """A run time without the scheduler's own offset in its spread (a hash of its id)."""
    return parse_time(moment) - timedelta(seconds=doc["spread_offset_seconds"])


def _placement(doc: dict[str, Any]) -> dict[str, Any]:
    """Where the next runs fall, as far as it is not a reading of the clock or of the id.

    On a wall-clock grid: the local times of day of the grid's slots (which of them comes
    first depends on the scheduler's offset in its spread, a hash of its id: the first slot
    whose run, slot + offset, is not yet past). On the elapsed-time grid: how long after the
    scheduler's creation the next slot is, and how far apart the slots are."""
    slots = [_slot(doc, moment) for moment in doc["next_runs"]]
    assert slots[0] == _slot(doc, doc["next_run_at"])
    if doc["at"] is not None:
        zone = ZoneInfo(doc["time_zone"])
        return {"local": sorted({slot.astimezone(zone).time() for slot in slots})}
    created = parse_time(doc["created_at"])
    return {
        "after_creation": slots[0] - created,
        "apart": [b - a for a, b in itertools.pairwise(slots)],
    }


def _on_grid(doc: dict[str, Any]) -> None:
    """Every slot of a wall-clock grid is `at`, or `at` plus whole intervals, in its zone."""
    zone = ZoneInfo(doc["time_zone"])
    at = datetime.strptime(doc["at"], "%H:%M").time()
    hours = doc["schedule_interval_hours"]
    day = 24 * 60
    grid = {
        (at.hour * 60 + at.minute + k * hours * 60) % day
        for k in range(max(day // (hours * 60), 1))
    }
    for moment in doc["next_runs"]:
        local = _slot(doc, moment).astimezone(zone)
        assert (local.hour * 60 + local.minute) in grid and local.second == 0, (moment, doc)


def _same_day_offsets(by_command: dict[str, Any], by_file: dict[str, Any]) -> None:
    """Slots on the same local day and time are as far from UTC on both sides."""
    zone = ZoneInfo(by_command["time_zone"])
    command_slots = {
        local.replace(tzinfo=None): local.utcoffset()
        for local in (_slot(by_command, m).astimezone(zone) for m in by_command["next_runs"])
    }
    for moment in by_file["next_runs"]:
        local = _slot(by_file, moment).astimezone(zone)
        if local.replace(tzinfo=None) in command_slots:
            assert command_slots[local.replace(tzinfo=None)] == local.utcoffset(), moment


def _audit_shape(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry's action, reason and changes, but the times of the next run (a reading of
    the clock: only that it changed) and the ownership mark apply adds when it adopts."""
    shaped = []
    for entry in entries:
        changes = {
            name: "changed" if name == "next_run_at" else values
            for name, values in entry["changes"].items()
            if name != "managed_by"
        }
        shaped.append({"action": entry["action"], "changes": changes, "reason": entry["reason"]})
    return shaped


# Combinations whose two paths differ today, and how: in what `show` prints, and in the
# audit trail.
SHOWN_DIFFERENT: dict[int, str] = {}
AUDITED_DIFFERENT: dict[int, str] = {}


def _params(divergent: dict[int, str]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=f"case{case.index}",
            marks=[pytest.mark.xfail(strict=True, reason=divergent[case.index])]
            if case.index in divergent
            else [],
        )
        for case in CASES
    ]


@pytest.mark.parametrize("case", _params(SHOWN_DIFFERENT))
def test_show_is_the_same_by_commands_and_by_file(parity: Parity, case: Case) -> None:
    by_command = parity.shown[case.command_domain]
    by_file = parity.shown[case.file_domain]
    context = (case, parity.commands[case.index])
    assert {k: v for k, v in by_command.items() if k not in _APART} == {
        k: v for k, v in by_file.items() if k not in _APART
    }, context
    assert _placement(by_command) == _placement(by_file), context
    if by_command["at"] is not None:
        _on_grid(by_command)
        _on_grid(by_file)
        _same_day_offsets(by_command, by_file)
    for doc in (by_command, by_file):
        assert 0 <= doc["spread_offset_seconds"] <= max(doc["spread_seconds"] - 1, 0), context


@pytest.mark.parametrize("case", _params(AUDITED_DIFFERENT))
def test_audit_is_the_same_by_commands_and_by_file(parity: Parity, case: Case) -> None:
    by_command = _audit_shape(parity.audit[case.command_domain])
    by_file = _audit_shape(parity.audit[case.file_domain])
    assert by_command == by_file, (case, parity.commands[case.index])


def _coverage(cases: list[Case]) -> set[str]:
    """What the combinations do that a test of parity must do: each field set away from its
    default by first values, each changed by second values, and each way the commands have
    to change a scheduler."""
    done = set()
    for case in cases:
        for name in FILE_KEYS:
            if getattr(case.first, name) != getattr(DEFAULT, name):
                done.add(f"set {name}")
            if getattr(case.first, name) != getattr(case.second, name):
                done.add(f"change {name}")
        words = [word for command in _change_commands(case) for word in command]
        done |= {word for word in words if word.startswith("--") or word in ("pause", "resume")}
        if case.first.at is not None and case.second.at != case.first.at:
            done.add("move at")
        if case.first.at == case.second.at and case.first.time_zone != case.second.time_zone:
            done.add("move zone")
    return done


NEEDED = (
    {f"set {name}" for name in FILE_KEYS if name != "pause_reason"}  # create has no --reason
    | {f"change {name}" for name in FILE_KEYS}
    | {"pause", "resume", "--reason", "--until", "--enable", "--disable", "move at"}
    | {
        f"--{verb}-{paths}"
        for verb in ("add", "remove", "clear")
        for paths in ("include", "exclude")
    }
)


def test_the_combinations_cover_every_field() -> None:
    assert len(CASES) == 30
    assert sorted(NEEDED - _coverage(CASES)) == []


# ---------------------------------------------------------------- the same scheduler keys

# What each command prints besides the scheduler's keys, as the README documents it.
SHOW_EXTRAS = {"next_runs", "next_runs_local", "last_job"}
LIST_EXTRAS = {"last_run"}
CHANGE_EXTRAS = {"changed"}  # update, pause and resume: whether anything changed
LAST_RUN_KEYS = {"job_id", "status", "at"}
LOCAL_RUN_KEYS = {"at", "local_time", "utc_offset_seconds", "dst_day"}


def _scheduler_part(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: doc[key] for key in SCHEDULER_KEYS}


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(("--every", "6h"), id="defaults"),
        pytest.param(
            (
                "--every", "24h", "--at", "03:00", "--time-zone", "Europe/London", "--spread",
                "1h", "--catchup-window", "2h", "--include", "/blog", "--exclude", "/cart",
                "--overlap", "skip", "--disabled", "--until", "2099-01-01T06:00:00Z",
            ),
            id="every-field",
        ),
    ],
)  # fmt: skip
def test_list_show_create_and_update_print_the_same_scheduler(
    cli: Cli, options: tuple[str, ...]
) -> None:
    """One scheduler through every command that prints it: the same keys (SCHEDULER_KEYS, as
    the contract writes them) and the same values, with only each command's documented
    extras: `show` its next runs and last job, `list` its last run, `update`, `pause` and
    `resume` whether anything changed; `create` nothing more."""
    make_org(cli, "Acme")
    created = _run(cli, "create", "example.com", *options)
    assert set(created) == SCHEDULER_KEYS
    updated = _run(cli, "update", "example.com", "--concurrency", "7")
    assert set(updated) == SCHEDULER_KEYS | CHANGE_EXTRAS
    assert updated["changed"] is True
    unchanged = _run(cli, "update", "example.com", "--concurrency", "7")
    assert set(unchanged) == SCHEDULER_KEYS | CHANGE_EXTRAS
    assert unchanged["changed"] is False
    assert _scheduler_part(unchanged) == _scheduler_part(updated)
    for command in (["pause", "example.com", "--reason", "hold"], ["resume", "example.com"]):
        changed = _run(cli, *command)
        assert set(changed) == SCHEDULER_KEYS | CHANGE_EXTRAS, command
        assert changed["changed"] is True, command
    shown = _run(cli, "show", "example.com")
    assert set(shown) == SCHEDULER_KEYS | SHOW_EXTRAS
    assert shown["last_job"] is None
    assert all(set(run) == LOCAL_RUN_KEYS for run in shown["next_runs_local"])
    (listed,) = _run(cli, "list")
    assert set(listed) == SCHEDULER_KEYS | LIST_EXTRAS
    assert listed["last_run"] is None
    assert _scheduler_part(listed) == _scheduler_part(shown) == _scheduler_part(changed)
    # with a run: the last run and the last job are documents of their own
    job = _run(cli, "run", "example.com")
    shown = _run(cli, "show", "example.com")
    (listed,) = _run(cli, "list")
    assert set(shown["last_job"]) == JOB_KEYS
    assert shown["last_job"]["id"] == job["id"]
    assert set(listed["last_run"]) == LAST_RUN_KEYS
    assert listed["last_run"]["job_id"] == job["id"]
    assert _scheduler_part(listed) == _scheduler_part(shown)
