"""Configuration from the environment and a .env file (pydantic-settings)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pydantic import AliasChoices, AliasGenerator, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from schedctl.errors import DatabaseUnavailable, InvalidInput

PREFIX = "SCHEDCTL_"

# The settings that choose the database. A near miss of one set while the name itself is
# not would send schedctl to another database (DATABASE_URL's, or the embedded server).
DATABASE_URL_NAMES = ("SCHEDCTL_DATABASE_URL", "SCHEDCTL_MIGRATE_DATABASE_URL")

# SCHEDCTL_* names schedctl itself does not read, but that belong to it.
_ALSO_KNOWN = frozenset({"SCHEDCTL_TEST_DATABASE_URL"})  # the test suite's server


class Settings(BaseSettings):
    """Everything schedctl reads from its environment. The database URL is never a flag."""

    model_config = SettingsConfigDict(
        env_file=".env",
        extra="ignore",
        populate_by_name=False,
        # Each setting is the variable of its name with the prefix (org: SCHEDCTL_ORG), and
        # a malformed value is reported by that name.
        alias_generator=AliasGenerator(validation_alias=lambda name: PREFIX + name.upper()),
    )

    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SCHEDCTL_DATABASE_URL", "DATABASE_URL")
    )
    # migrate needs a direct connection where the main URL goes through a pooler.
    migrate_database_url: SecretStr | None = None
    org: str | None = None
    connect_timeout: int = Field(default=10, ge=1, le=3600)
    lock_timeout: float = Field(default=30, gt=0, le=86400)
    actor: str | None = None
    data_dir: Path | None = None
    # A large tick pass may apply batches over a second connection (see the README).
    tick_connections: int = Field(default=1, ge=1, le=2)

    # How long shell completion waits for the database before it completes nothing.
    completion_timeout: float = Field(default=0.5, gt=0, le=60)

    # A healthchecks.io-style URL pinged around each tick pass (see ping.py). Never a flag:
    # the URL is the secret.
    ping_url: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """A .env file is read for SCHEDCTL_* names only: the .env of another application in
        the working directory (its DATABASE_URL) must not point schedctl at its database."""
        if isinstance(dotenv_settings, DotEnvSettingsSource):
            dotenv_settings.env_vars = {
                name: value
                for name, value in dotenv_settings.env_vars.items()
                if name.upper().startswith(PREFIX)
            }
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    def actor_name(self) -> str:
        """Who is making a change, for the audit trail: SCHEDCTL_ACTOR, else the
        operating-system user."""
        import getpass
        import os

        # Printed in tables and tab-separated lines: no control characters, one line.
        name = "".join(ch for ch in (self.actor or "") if ch.isprintable()).strip()
        if name:
            return name[:200]
        try:
            return getpass.getuser()
        except Exception:  # no user name in a bare container
            return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def load_settings() -> Settings:
    """Read the settings; a malformed value is invalid input, reported without its value."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidInput(f"invalid configuration: {problems}") from None


def known_names() -> frozenset[str]:
    """Every SCHEDCTL_* variable schedctl knows."""
    names: set[str] = set(_ALSO_KNOWN)
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        names.update(str(choice) for choice in choices if str(choice).startswith(PREFIX))
    return frozenset(names)


def _set_names(environ: dict[str, str], env_file: Path) -> set[str]:
    """The SCHEDCTL_* names set in the environment or in .env."""
    names = {name for name in environ if name.upper().startswith(PREFIX)}
    if env_file.is_file():
        from dotenv import dotenv_values

        # A .env that cannot be read is pydantic-settings' to report.
        with contextlib.suppress(OSError, UnicodeDecodeError):
            names |= {name for name in dotenv_values(env_file) if name.upper().startswith(PREFIX)}
    return names


def _nearest_known(name: str, known: frozenset[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(name.upper(), sorted(known), n=1)
    return close[0] if close else None


def unknown_settings(environ: dict[str, str], env_file: Path = Path(".env")) -> list[str]:
    """One warning for each SCHEDCTL_* name in the environment or .env that schedctl does
    not read (a misspelt SCHEDCTL_DATABASE_URL silently falls back to another database)."""
    known = known_names()
    warnings = []
    for name in sorted(name for name in _set_names(environ, env_file) if name.upper() not in known):
        close = _nearest_known(name, known)
        hint = f" (did you mean {close}?)" if close else ""
        warnings.append(f"{name} is not a schedctl setting and is ignored{hint}")
    return warnings


def refuse_misspelt_database_setting(
    meant: tuple[str, ...] = ("SCHEDCTL_DATABASE_URL",),
    environ: dict[str, str] | None = None,
    env_file: Path = Path(".env"),
) -> None:
    """Refuse (exit 5) when a near miss of one of the `meant` database settings is set while
    that setting is not: falling back to DATABASE_URL or the embedded server would act on
    another database than the operator named, and report all was well."""
    import os

    names = _set_names(dict(os.environ) if environ is None else environ, env_file)
    upper = {name.upper() for name in names}
    known = known_names()
    for name in sorted(names):
        if name.upper() in known:
            continue
        close = _nearest_known(name, known)
        if close in meant and close not in upper:
            raise DatabaseUnavailable(
                f"{name} is set but {close} is not: did you mean {close}? schedctl does not "
                f"fall back to another database while {name} is set; rename it to {close}"
            )
