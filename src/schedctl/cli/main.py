"""The entry point: run a command, and turn every error into one `error:` line and its exit
code."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import NoReturn

import typer

from schedctl.cli.app import Verbosity, app
from schedctl.cli.session import forget_settings
from schedctl.config import Settings
from schedctl.errors import Interrupted, SchedctlError


def _fail(message: str, code: int) -> NoReturn:
    from schedctl import journal

    journal.error(message)
    raise SystemExit(code)


# Ctrl-C (SIGINT), however it arrives: Interrupted's exit code.
INTERRUPTED = Interrupted.exit_code
_COMPLETION_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _check_completion_shell(args: list[str]) -> None:
    """--install-completion and --show-completion in a shell Typer has no script for:
    one error line (Typer prints its own words and exits 1)."""
    if not {"--install-completion", "--show-completion"} & set(args):
        return
    import shellingham

    try:
        shell, _ = shellingham.detect_shell()
    except shellingham.ShellDetectionFailure:
        shell = None
    if shell not in _COMPLETION_SHELLS:
        _fail(
            f"shell completion is available for bash, zsh, fish and PowerShell, not for "
            f"{shell or 'this shell (not detected)'}: run the command from one of them",
            2,
        )


def _warn_about_unknown_settings() -> None:
    import os

    from schedctl import journal
    from schedctl.config import unknown_settings

    for message in unknown_settings(dict(os.environ)):
        journal.warning(message)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error becomes one `error:` line and its exit code."""
    from schedctl import interrupts
    from schedctl.refresh import with_default_seconds

    args = with_default_seconds(sys.argv[1:] if argv is None else argv)  # `--watch` alone
    # The driver's own log lines (e.g. a rollback it could not send after Ctrl-C cut a query
    # short) would reach stderr through logging's last resort: schedctl says what happened
    # in its own one line.
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
    Verbosity.requested = False
    forget_settings()
    interrupts.reset()
    try:
        _run(args)
    finally:
        # SIGINT unblocked again: a process started after a command run in this one (the
        # tests run many) would inherit the blocked signal.
        interrupts.release()


def _run(args: list[str]) -> NoReturn:
    from schedctl import interrupts

    try:
        _warn_about_unknown_settings()
        _check_completion_shell(args)
        result = app(args=args, prog_name="schedctl", standalone_mode=False)
    except SchedctlError as exc:
        if Verbosity.requested and exc.__cause__ is not None:
            _print_traceback(exc)
        _fail(exc.message, exc.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _fail(interrupts.interrupted_message(), INTERRUPTED)
    except typer.TyperException as exc:  # usage errors, with the context they arose in
        ctx = getattr(exc, "ctx", None)
        path = ctx.command_path if ctx is not None else "schedctl"
        message = exc.format_message().strip()
        if exc.exit_code != 2:
            _fail(message.splitlines()[0] if message else "error", exc.exit_code)
        if message.startswith("Usage:"):  # a group given no command: its help is the message
            _fail(f"missing command (see `{path} --help`)", 2)
        _fail(message.splitlines()[0] + f" (see `{path} --help`)", 2)
    except Exception as exc:
        if Verbosity.requested:
            _print_traceback(exc)
        _fail(interrupts.failed_message(f"unexpected {type(exc).__name__}: {_safe(str(exc))}"), 1)
    if result == INTERRUPTED:  # Typer turns KeyboardInterrupt into this exit code
        _fail(interrupts.interrupted_message(), INTERRUPTED)
    interrupts.note_held()
    raise SystemExit(result if isinstance(result, int) else 0)


def _configured_secrets() -> tuple[str, ...]:
    """Every form of the configured database password, to keep it out of any output."""
    from schedctl import db

    try:
        settings = Settings()
    except Exception:  # settings that do not parse: nothing was connected, no URL printed
        return ()
    urls = (settings.database_url, settings.migrate_database_url)
    return tuple(secret for url in urls if url for secret in db.url_secrets(url.get_secret_value()))


def _safe(text: str) -> str:
    """The first line of `text`, with the password removed."""
    from schedctl import db

    return db.redact(text.strip().splitlines()[0] if text.strip() else "", _configured_secrets())


def _print_traceback(exc: BaseException) -> None:
    from schedctl import db

    text = "".join(traceback.format_exception(exc))
    print(db.redact(text, _configured_secrets()), file=sys.stderr, end="")
