"""The options of `create` and `update`, declared once as groups (each command's own, and the
timing both take), and turned into checked changes (models.SchedulerChanges): which options go
together, and each value checked by its rule in validation.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from schedctl import completion
from schedctl.cli.app import Options
from schedctl.cli.options import UntilOpt
from schedctl.cli.session import pair
from schedctl.errors import InvalidInput
from schedctl.fields import DEFAULTS
from schedctl.models import Overlap, PathEdit, SchedulerChanges
from schedctl.validation import (
    CONCURRENCY,
    MAX_PAGES,
    REQUIRED_WORKERS,
    check_range,
    normalize_paths,
    parse_catchup_window,
    parse_interval,
    parse_spread,
    parse_time_of_day,
    parse_until,
    parse_when,
    parse_zone,
    show,
)


def _every(marked: str = "") -> Any:
    """--every; create marks it required in its help (it checks that itself, to say how)."""
    return typer.Option(
        "--every",
        metavar="INTERVAL",
        help="6h, 12h, 24h or 48h (also 6, 12, 24, 48, 1d, 2d)." + marked,
        autocompletion=completion.every,
    )


def _per_job(what: str, bounds: tuple[int, int], field: str) -> Any:
    """A number each job is made with, in `bounds`, defaulting to the field's default."""
    return typer.Option(
        metavar="INTEGER", help=f"{what}, {bounds[0]}-{bounds[1]} (default {DEFAULTS[field]})."
    )


def _paths(flag: str, what: str, more: str = "") -> Any:
    """A repeatable option of path prefixes."""
    return typer.Option(flag, metavar="PATH", help=f"{what} (repeatable){more}.")


def _edit(verb: str, kind: str) -> Any:
    """update's --add-include and its kin: paths added to or removed from a list as it is."""
    return _paths(f"--{verb}-{kind}", f"{verb.capitalize()} an {kind} path")


def _clear(kind: str) -> Any:
    """update's --clear-include or --clear-exclude."""
    return typer.Option(f"--clear-{kind}", help=f"Remove every {kind} path.")


def _start(run: str, more: str = "") -> Any:
    """--start-at: when the first (create) or the next (update) run is."""
    return typer.Option(
        metavar="WHEN", help=f"{run}: 'now' (to the second) or an ISO 8601 time{more}."
    )


Paths = list[str] | None
ConcurrencyOpt = Annotated[
    int | None, _per_job("Concurrent requests per job", CONCURRENCY, "concurrency")
]
FindLinksOpt = Annotated[
    bool, typer.Option("--find-links", help="Follow links found on pages (the default).")
]
NoFindLinksOpt = Annotated[
    bool, typer.Option("--no-find-links", help="Do not follow links found on pages.")
]
MaxPagesOpt = Annotated[
    int | None,
    typer.Option(metavar="INTEGER", help="Page limit per job; 0 means no limit (default)."),
]
WorkersOpt = Annotated[
    int | None, _per_job("Workers a job needs", REQUIRED_WORKERS, "required_workers")
]
OverlapOpt = Annotated[
    Overlap | None,
    typer.Option(
        metavar="POLICY",
        help=f"When a job of the domain is still active: replace, skip or allow "
        f"(default {DEFAULTS['overlap_policy']}).",
        case_sensitive=False,
    ),
]


@dataclass(frozen=True, kw_only=True)
class CreateOptions(Options):
    """create's options for the new scheduler (what it leaves out gets fields.DEFAULTS)."""

    every: Annotated[str | None, _every("  [required]")] = None
    concurrency: ConcurrencyOpt = None
    find_links: FindLinksOpt = False
    no_find_links: NoFindLinksOpt = False
    max_pages: MaxPagesOpt = None
    include: Annotated[Paths, _paths("--include", "Crawl only this path prefix")] = None
    exclude: Annotated[Paths, _paths("--exclude", "Skip this path prefix")] = None
    required_workers: WorkersOpt = None
    overlap: OverlapOpt = None
    start_at: Annotated[str | None, _start("First run", " (UTC unless it has an offset)")] = None
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it paused.")] = False


@dataclass(frozen=True, kw_only=True)
class PathEdits(Options):
    """update's changes to the path lists as they are, or their clearing."""

    add_include: Annotated[Paths, _edit("add", "include")] = None
    remove_include: Annotated[Paths, _edit("remove", "include")] = None
    add_exclude: Annotated[Paths, _edit("add", "exclude")] = None
    remove_exclude: Annotated[Paths, _edit("remove", "exclude")] = None
    clear_include: Annotated[bool, _clear("include")] = False
    clear_exclude: Annotated[bool, _clear("exclude")] = False


@dataclass(frozen=True, kw_only=True)
class UpdateOptions(Options):
    """update's options: each one given is a change."""

    every: Annotated[str | None, _every()] = None
    concurrency: ConcurrencyOpt = None
    find_links: FindLinksOpt = False
    no_find_links: NoFindLinksOpt = False
    max_pages: MaxPagesOpt = None
    include: Annotated[
        Paths,
        _paths("--include", "Replace the include paths with these", "; see --add-include"),
    ] = None
    exclude: Annotated[
        Paths,
        _paths("--exclude", "Replace the exclude paths with these", "; see --add-exclude"),
    ] = None
    edits: PathEdits
    required_workers: WorkersOpt = None
    overlap: OverlapOpt = None
    start_at: Annotated[str | None, _start("Next run")] = None
    enable: Annotated[bool, typer.Option("--enable", help="Enable it.")] = False
    disable: Annotated[bool, typer.Option("--disable", help="Pause it.")] = False


@dataclass(frozen=True, kw_only=True)
class Timing(Options):
    """When the runs of a scheduler start (create and update): a wall-clock time of day in a
    zone, a spread, a catch-up window, and the end of a pause."""

    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="HH:MM",
            help="Run at this wall-clock time of day, HH:MM, in --time-zone.",
        ),
    ] = None
    time_zone: Annotated[
        str | None,
        typer.Option(
            "--time-zone",
            metavar="ZONE",
            help=f"IANA time zone of --at (default {DEFAULTS['time_zone']}); alone, keeps the "
            "local time of day.",
            autocompletion=completion.time_zones,
        ),
    ] = None
    spread: Annotated[
        str | None,
        typer.Option(
            "--spread",
            metavar="DURATION",
            help="Start each run at a stable offset inside this window (e.g. 1h; at most the "
            "interval; 0: none).",
        ),
    ] = None
    catchup_window: Annotated[
        str | None,
        typer.Option(
            "--catchup-window",
            metavar="DURATION",
            help="Skip a slot reached later than this (at least 1m; 'none': however late).",
        ),
    ] = None
    until: UntilOpt = None


def scheduler_changes(given: CreateOptions | UpdateOptions, timing: Timing) -> SchedulerChanges:
    """The options of `create` or `update`, each checked against its rule (a spread longer
    than a new interval too; against the scheduler's own interval once it is read)."""
    find_links = pair(given.find_links, given.no_find_links, "--find-links", "--no-find-links")
    if isinstance(given, UpdateOptions):
        enabled = pair(given.enable, given.disable, "--enable", "--disable")
        edits = given.edits
    else:
        enabled = False if given.disabled else None
        edits = PathEdits()
    if timing.until is not None and enabled is not False:
        raise InvalidInput(
            "--until says when a pause ends: give it with --disabled (create), --disable "
            "(update), or use `schedctl pause REF --until WHEN`"
        )
    interval_hours = parse_interval(given.every) if given.every is not None else None
    include, exclude = given.include, given.exclude
    if include and edits.clear_include:
        raise InvalidInput("--include and --clear-include cannot be used together")
    if exclude and edits.clear_exclude:
        raise InvalidInput("--exclude and --clear-exclude cannot be used together")
    checked_edits = path_edits(
        edits,
        replaced_include=bool(include) or edits.clear_include,
        replaced_exclude=bool(exclude) or edits.clear_exclude,
    )
    return SchedulerChanges(
        schedule_interval_hours=interval_hours,
        concurrency=_in_range("--concurrency", given.concurrency, CONCURRENCY),
        find_links=find_links,
        max_pages=_in_range("--max-pages", given.max_pages, MAX_PAGES),
        include_paths=(
            normalize_paths("--include", include or []) if include or edits.clear_include else None
        ),
        exclude_paths=(
            normalize_paths("--exclude", exclude or []) if exclude or edits.clear_exclude else None
        ),
        required_workers=_in_range("--required-workers", given.required_workers, REQUIRED_WORKERS),
        overlap_policy=given.overlap,
        start=parse_when(given.start_at) if given.start_at is not None else None,
        is_enabled=enabled,
        **checked_edits,
        at=parse_time_of_day(timing.at) if timing.at is not None else None,
        time_zone=parse_zone(timing.time_zone) if timing.time_zone is not None else None,
        spread_seconds=(
            parse_spread(timing.spread, interval_hours) if timing.spread is not None else None
        ),
        catchup_window_seconds=(
            parse_catchup_window(timing.catchup_window)
            if timing.catchup_window is not None
            else None
        ),
        until=parse_until(timing.until) if timing.until is not None else None,
    )


def exclusive(**given: bool) -> None:
    """Refuse options that contradict each other: `given` maps each option's spelling (with
    `_` for `-`, no leading dashes) to whether it was given; at most one may be."""
    named = [f"--{name.replace('_', '-')}" for name, present in given.items() if present]
    if len(named) > 1:
        raise InvalidInput(f"{' and '.join(named)} cannot be used together")


def path_edits(
    edits: PathEdits, *, replaced_include: bool, replaced_exclude: bool
) -> dict[str, PathEdit]:
    """`update`'s --add-include/--remove-include (and exclude) options, checked: they edit
    the list as it is, so they cannot be combined with replacing or clearing it."""
    if (edits.add_include or edits.remove_include) and replaced_include:
        raise InvalidInput(
            "--add-include/--remove-include cannot be used with --include or --clear-include"
        )
    if (edits.add_exclude or edits.remove_exclude) and replaced_exclude:
        raise InvalidInput(
            "--add-exclude/--remove-exclude cannot be used with --exclude or --clear-exclude"
        )
    checked = {
        kind: PathEdit(
            tuple(normalize_paths(f"--add-{kind}", added) if added else ()),
            tuple(normalize_paths(f"--remove-{kind}", removed) if removed else ()),
        )
        for kind, added, removed in (
            ("include", edits.add_include, edits.remove_include),
            ("exclude", edits.add_exclude, edits.remove_exclude),
        )
    }
    for kind, edit in checked.items():
        both = set(edit.added) & set(edit.removed)
        if both:
            raise InvalidInput(
                f"--add-{kind} and --remove-{kind} cannot be used together for the same "
                f"path {show(sorted(both)[0])}"
            )
    return {f"{kind}_edit": edit for kind, edit in checked.items()}


def _in_range(option: str, value: int | None, bounds: tuple[int, int]) -> int | None:
    return None if value is None else check_range(option, value, *bounds)
