"""The options of `create` and `update` turned into checked changes (models.SchedulerChanges):
which options go together, and each value checked by its rule in validation.py."""

from __future__ import annotations

from schedctl.errors import InvalidInput
from schedctl.models import Overlap, SchedulerChanges
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


def scheduler_changes(
    *,
    every: str | None = None,
    concurrency: int | None = None,
    find_links: bool | None = None,
    max_pages: int | None = None,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    clear_include: bool = False,
    clear_exclude: bool = False,
    required_workers: int | None = None,
    overlap: Overlap | None = None,
    start_at: str | None = None,
    enabled: bool | None = None,
    include_add: list[str] | None = None,
    include_remove: list[str] | None = None,
    exclude_add: list[str] | None = None,
    exclude_remove: list[str] | None = None,
    at: str | None = None,
    time_zone: str | None = None,
    spread: str | None = None,
    catchup_window: str | None = None,
    until: str | None = None,
) -> SchedulerChanges:
    """The options of `create` and `update`, each checked against its rule (a spread longer
    than a new interval too; against the scheduler's own interval once it is read)."""
    if until is not None and enabled is not False:
        raise InvalidInput(
            "--until says when a pause ends: give it with --disabled (create), --disable "
            "(update), or use `schedctl pause REF --until WHEN`"
        )
    interval_hours = parse_interval(every) if every is not None else None
    if include and clear_include:
        raise InvalidInput("--include and --clear-include cannot be used together")
    if exclude and clear_exclude:
        raise InvalidInput("--exclude and --clear-exclude cannot be used together")
    edits = path_edits(
        include_add=include_add,
        include_remove=include_remove,
        exclude_add=exclude_add,
        exclude_remove=exclude_remove,
        replaced_include=bool(include) or clear_include,
        replaced_exclude=bool(exclude) or clear_exclude,
    )
    return SchedulerChanges(
        schedule_interval_hours=interval_hours,
        concurrency=_in_range("--concurrency", concurrency, CONCURRENCY),
        find_links=find_links,
        max_pages=_in_range("--max-pages", max_pages, MAX_PAGES),
        include_paths=(
            normalize_paths("--include", include or []) if include or clear_include else None
        ),
        exclude_paths=(
            normalize_paths("--exclude", exclude or []) if exclude or clear_exclude else None
        ),
        required_workers=_in_range("--required-workers", required_workers, REQUIRED_WORKERS),
        overlap_policy=overlap,
        start=parse_when(start_at) if start_at is not None else None,
        is_enabled=enabled,
        **edits,
        at=parse_time_of_day(at) if at is not None else None,
        time_zone=parse_zone(time_zone) if time_zone is not None else None,
        spread_seconds=parse_spread(spread, interval_hours) if spread is not None else None,
        catchup_window_seconds=(
            parse_catchup_window(catchup_window) if catchup_window is not None else None
        ),
        until=parse_until(until) if until is not None else None,
    )


def exclusive(**given: bool) -> None:
    """Refuse options that contradict each other: `given` maps each option's spelling (with
    `_` for `-`, no leading dashes) to whether it was given; at most one may be."""
    named = [f"--{name.replace('_', '-')}" for name, present in given.items() if present]
    if len(named) > 1:
        raise InvalidInput(f"{' and '.join(named)} cannot be used together")


def path_edits(
    *,
    include_add: list[str] | None = None,
    include_remove: list[str] | None = None,
    exclude_add: list[str] | None = None,
    exclude_remove: list[str] | None = None,
    replaced_include: bool = False,
    replaced_exclude: bool = False,
) -> dict[str, list[str] | None]:
    """`update`'s --add-include/--remove-include (and exclude) options, checked: they edit
    the list as it is, so they cannot be combined with replacing or clearing it."""
    if (include_add or include_remove) and replaced_include:
        raise InvalidInput(
            "--add-include/--remove-include cannot be used with --include or --clear-include"
        )
    if (exclude_add or exclude_remove) and replaced_exclude:
        raise InvalidInput(
            "--add-exclude/--remove-exclude cannot be used with --exclude or --clear-exclude"
        )
    edits = {
        "include_add": ("--add-include", include_add),
        "include_remove": ("--remove-include", include_remove),
        "exclude_add": ("--add-exclude", exclude_add),
        "exclude_remove": ("--remove-exclude", exclude_remove),
    }
    checked = {
        key: normalize_paths(option, values) if values else None
        for key, (option, values) in edits.items()
    }
    for kind in ("include", "exclude"):
        both = set(checked[f"{kind}_add"] or []) & set(checked[f"{kind}_remove"] or [])
        if both:
            raise InvalidInput(
                f"--add-{kind} and --remove-{kind} cannot be used together for the same "
                f"path {show(sorted(both)[0])}"
            )
    return checked


def _in_range(option: str, value: int | None, bounds: tuple[int, int]) -> int | None:
    return None if value is None else check_range(option, value, *bounds)
