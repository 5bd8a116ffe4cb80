"""`--watch [SECONDS]` of `status`, `list` and `timeline`: the command's output redrawn in
place on a terminal until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable

from schedctl.errors import InvalidInput

DEFAULT_SECONDS = 2.0
_MIN_SECONDS = 0.5
_COMMANDS = ("status", "list", "timeline")
# Home, then clear the screen below: the next drawing replaces the last in place.
_REDRAW = "\x1b[H\x1b[2J"
_TICK = 0.1  # how soon Ctrl-C is noticed while waiting


def with_default_seconds(args: list[str]) -> list[str]:
    """The command line with the default interval written in after a `--watch` given none
    (the parser takes no option whose value may be left out)."""
    if not args or args[0] not in _COMMANDS or "--watch" not in args:
        return args
    out: list[str] = []
    for index, arg in enumerate(args):
        out.append(arg)
        if arg == "--watch":
            following = args[index + 1] if index + 1 < len(args) else None
            if following is None or not _number(following):
                out.append(str(DEFAULT_SECONDS))
    return out


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check(seconds: float | None, *, as_json: bool) -> None:
    """Refuse --watch with --json, or when stdout is not a terminal (exit 2)."""
    if seconds is None:
        return
    if as_json:
        raise InvalidInput("--watch redraws for people: it takes no --json")
    if not sys.stdout.isatty():
        raise InvalidInput("--watch needs a terminal on stdout (run the command without it)")
    if not seconds >= _MIN_SECONDS:
        raise InvalidInput(f"--watch must be at least {_MIN_SECONDS} seconds")


def run(seconds: float | None, draw: Callable[[], None]) -> None:
    """Draw once; with `seconds`, redraw in place every `seconds` until Ctrl-C (exit 0).
    Ctrl-C is taken as a request to stop after the drawing under way: a query cut in the
    middle would leave the connection unusable, and the command would fail on leaving."""
    if seconds is None:
        draw()
        return
    stop: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
    try:
        while not stop:
            sys.stdout.write(_REDRAW)
            draw()
            print(f"every {seconds:g}s; Ctrl-C to stop", file=sys.stderr)
            sys.stdout.flush()
            deadline = time.monotonic() + seconds
            while not stop and time.monotonic() < deadline:
                time.sleep(min(_TICK, max(deadline - time.monotonic(), 0)))
    finally:
        signal.signal(signal.SIGINT, previous)
