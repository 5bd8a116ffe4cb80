"""Configuration from the environment and a .env file (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from schedctl.errors import InvalidInput


class Settings(BaseSettings):
    """Everything schedctl reads from its environment. The database URL is never a flag."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=False)

    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SCHEDCTL_DATABASE_URL", "DATABASE_URL")
    )
    # migrate needs a direct connection where the main URL goes through a pooler.
    migrate_database_url: SecretStr | None = Field(
        default=None, validation_alias="SCHEDCTL_MIGRATE_DATABASE_URL"
    )
    org: str | None = Field(default=None, validation_alias="SCHEDCTL_ORG")
    connect_timeout: int = Field(
        default=10, ge=1, le=3600, validation_alias="SCHEDCTL_CONNECT_TIMEOUT"
    )
    lock_timeout: float = Field(
        default=30, gt=0, le=86400, validation_alias="SCHEDCTL_LOCK_TIMEOUT"
    )
    actor: str | None = Field(default=None, validation_alias="SCHEDCTL_ACTOR")
    data_dir: Path | None = Field(default=None, validation_alias="SCHEDCTL_DATA_DIR")
    # A large tick pass may apply batches over a second connection (see the README).
    tick_connections: int = Field(
        default=1, ge=1, le=2, validation_alias="SCHEDCTL_TICK_CONNECTIONS"
    )

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
