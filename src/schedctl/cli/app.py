"""The Typer applications every command module registers on, and what every command shares:
its help, --json and -v, and groups of options declared once (Options)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_type_hints

import typer
from typer.core import TyperCommand

from schedctl.cli import session

_HELP = """Recurring crawl-job scheduling for the crawling service's PostgreSQL database.

The database is SCHEDCTL_DATABASE_URL (a libpq URI, from the environment or a .env file in
the working directory), else DATABASE_URL, else an embedded server for trying schedctl out.
Every command but export (which prints YAML) takes --json (exactly one JSON document on
stdout), -v (a traceback on error) and -h; see `schedctl COMMAND -h`.
"""

_EPILOG = """\b
Exit codes:
  0  success
  1  failed part-way (tick with failed schedulers, a lost connection, a lock timeout;
     status: lag or a failed tick); nothing half-written
  2  invalid usage or input; nothing was written
  3  not found (a scheduler, also another organisation's, or an organisation)
  4  conflict (already exists; refused by the skip policy; an organisation in use)
  5  database unreachable, not migrated, read-only, or a privilege missing
  130  interrupted (Ctrl-C): rolled back, unless the message says what was committed
"""


def _argument_name(param: Any) -> str:
    name: str = param.metavar or (param.name or "").upper()
    return name


class Command(TyperCommand):
    """Help as a reader expects it: arguments by their metavar (`REF`, `[REF]`) in the usage
    line and in their section, without Typer's braces and `<str>` types."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_argument_name(param), record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


# -h as well as --help, on every command (click passes it down to subcommands).
CONTEXT = {"help_option_names": ["-h", "--help"]}


def _typer(**kwargs: Any) -> typer.Typer:
    return typer.Typer(
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings=CONTEXT,
        **kwargs,
    )


app = _typer(name="schedctl", help=_HELP, epilog=_EPILOG, add_completion=True)
org_app = _typer(help="Manage organisations.")
app.add_typer(org_app, name="org")
hooks_app = _typer(help="Hooks: how the host makes, cancels and announces jobs.")
app.add_typer(hooks_app, name="hooks")
pg_cron_app = _typer(help="pg_cron runs tick inside the database (Supabase Cron).")
app.add_typer(pg_cron_app, name="pg-cron")


class Verbosity:
    """Whether the command being run was given -v, as its parser read it (a value such as
    `--reason -v` is not the flag)."""

    requested = False


def _remember_verbose(value: bool) -> bool:
    Verbosity.requested = Verbosity.requested or value
    return value


# Every command but export (which prints YAML) takes --json; the command reads it from
# session.as_json().
_JSON = inspect.Parameter(
    "as_json",
    inspect.Parameter.KEYWORD_ONLY,
    default=False,
    annotation=Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")],
)

# Every command's last option; main() reads it (Verbosity), the command never does.
_VERBOSE = inspect.Parameter(
    "verbose",
    inspect.Parameter.KEYWORD_ONLY,
    default=False,
    annotation=Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Show the traceback of an error.", callback=_remember_verbose
        ),
    ],
)


@dataclass(frozen=True, kw_only=True)
class Options:
    """Options that go together, declared once: a dataclass whose fields are the options, each
    `Annotated` with its typer.Option and given its default (a field typed with another group
    stands for that group's options). A command's parameter typed with a group stands for the
    group's options, in that place of its help, and gets them as one value."""


F = TypeVar("F", bound=Callable[..., Any])


def command(group: typer.Typer, *args: Any, json: bool = True, **kwargs: Any) -> Callable[[F], F]:
    """Register a command on `group` with the shared help (Command), its groups of options
    (Options), --json (unless `json` is False) and -v."""

    def register(func: F) -> F:
        group.command(*args, cls=Command, **kwargs)(_as_typer_reads(func, json))
        return func

    return register


def _as_typer_reads(func: Callable[..., Any], json: bool) -> Callable[..., Any]:
    """`func` with its groups of options spread into their options, then --json (if `json`)
    and -v: Typer reads the parameters of the signature this gives, and calls it with a
    keyword for each."""
    hints = get_type_hints(func, include_extras=True)
    params = list(inspect.signature(func).parameters.values())
    options = [
        option
        for param in params
        for option in _spread(param.name, hints[param.name], param.default)
    ]

    @functools.wraps(func)
    def run(**given: Any) -> Any:
        del given[_VERBOSE.name]
        session.use_json(given.pop(_JSON.name, False))
        return func(
            **{param.name: _gather(param.name, hints[param.name], given) for param in params}
        )

    shared = [_JSON, _VERBOSE] if json else [_VERBOSE]
    run.__signature__ = inspect.Signature([*options, *shared])  # type: ignore[attr-defined]
    run.__annotations__ = hints  # read once: Typer need not read the text again
    return run


def _spread(name: str, hint: Any, default: Any) -> list[inspect.Parameter]:
    """The options a parameter stands for: itself, or, typed with a group, the group's."""
    if not _is_group(hint):
        return [
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint
            )
        ]
    hints = _group_hints(hint)
    return [
        option
        for field in dataclasses.fields(hint)
        for option in _spread(field.name, hints[field.name], field.default)
    ]


def _gather(name: str, hint: Any, given: dict[str, Any]) -> Any:
    """A parameter's value from the options Typer gave: its own, or its group's made of them."""
    if not _is_group(hint):
        return given[name]
    hints = _group_hints(hint)
    return hint(
        **{
            field.name: _gather(field.name, hints[field.name], given)
            for field in dataclasses.fields(hint)
        }
    )


def _is_group(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Options)


@functools.cache
def _group_hints(group: type[Options]) -> dict[str, Any]:
    return get_type_hints(group, include_extras=True)


def _show_version(value: bool) -> None:
    if value:
        from schedctl import __version__

        print(f"schedctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    pass
