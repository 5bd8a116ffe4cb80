"""schedctl's own exceptions: each carries the exit code of the command-line contract."""

from __future__ import annotations


class SchedctlError(Exception):
    """Base of every error schedctl reports to the user; `exit_code` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OperationFailed(SchedctlError):
    """The operation failed part-way; whatever was half done was rolled back."""

    exit_code = 1


class InvalidInput(SchedctlError):
    """Invalid usage or input; nothing was written."""

    exit_code = 2


class NotFound(SchedctlError):
    """No such scheduler or organisation (also another organisation's scheduler)."""

    exit_code = 3


class Conflict(SchedctlError):
    """Already exists, or refused by the overlap policy."""

    exit_code = 4


class DatabaseUnavailable(SchedctlError):
    """The database cannot be reached, or its schema is not migrated."""

    exit_code = 5


class Interrupted(SchedctlError):
    """Ctrl-C: the command stopped early (what it says it committed is kept)."""

    exit_code = 130


class SchedulerNotFound(NotFound):
    """No scheduler by that REF in the organisation; the CLI names the organisation."""

    def __init__(self, ref: str, hint: str = "") -> None:
        super().__init__(f"no scheduler {ref!r} in this organisation{hint}")
        self.ref = ref
        # Why the REF may have found nothing (", an id prefix needs ..."), or "".
        self.hint = hint
