"""schedctl's own exceptions: each carries the exit code of the command-line contract."""

from __future__ import annotations


class SchedctlError(Exception):
    """Base of every error schedctl reports to the user; `exit_code` is what the CLI exits with.
    A subclass names its code in its class statement (`class X(SchedctlError, exit_code=2)`),
    or keeps its base's."""

    exit_code = 1

    def __init_subclass__(cls, exit_code: int | None = None) -> None:
        super().__init_subclass__()
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OperationFailed(SchedctlError, exit_code=1):
    """The operation failed part-way; whatever was half done was rolled back."""


class InvalidInput(SchedctlError, exit_code=2):
    """Invalid usage or input; nothing was written."""


class NotFound(SchedctlError, exit_code=3):
    """No such scheduler or organisation (also another organisation's scheduler)."""


class Conflict(SchedctlError, exit_code=4):
    """Already exists, or refused by the overlap policy."""


class DatabaseUnavailable(SchedctlError, exit_code=5):
    """The database cannot be reached, or its schema is not migrated."""


# 128 + SIGINT's number, as shells report a command Ctrl-C stopped.
class Interrupted(SchedctlError, exit_code=130):
    """Ctrl-C: the command stopped early (what it says it committed is kept)."""


class SchedulerNotFound(NotFound):
    """No scheduler by that REF in the organisation; the CLI names the organisation."""

    def __init__(self, ref: str, hint: str = "") -> None:
        super().__init__(f"no scheduler {ref!r} in this organisation{hint}")
        self.ref = ref
        # Why the REF may have found nothing (", an id prefix needs ..."), or "".
        self.hint = hint
