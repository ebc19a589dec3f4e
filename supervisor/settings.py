"""The daemon's settings: PTYSUP_* variables, then an optional TOML file."""

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

KiB = 1024
MiB = 1024 * KiB


def config_file(env: dict[str, str] | None = None) -> Path | None:
    """$PTYSUP_CONFIG if set (it must exist), else $XDG_CONFIG_HOME/pty-supervisor/config.toml."""
    env = dict(os.environ) if env is None else env
    if env.get("PTYSUP_CONFIG"):
        return Path(env["PTYSUP_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = Path(base) / "pty-supervisor" / "config.toml"
    return path if path.is_file() else None


def _upstream_url(value: str | None) -> str | None:
    if value is None:
        return None
    from supervisor.opencode.gateway import Upstream

    Upstream(value)  # raises ValueError saying what is wrong with it
    return value


class SettingsError(Exception):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PTYSUP_", extra="forbid", validate_default=True, frozen=True
    )

    ring_size: Annotated[int, Field(ge=4 * KiB, le=1024 * MiB)] = 1 * MiB
    """Bytes of output kept per session for reads and reattach."""
    subscriber_backlog: Annotated[int, Field(ge=64 * KiB, le=1024 * MiB)] = 1 * MiB
    """Bytes queued for one slow subscriber before it is skipped forward."""
    max_sessions: Annotated[int, Field(ge=1, le=100_000)] = 2048
    max_connections: Annotated[int, Field(ge=1, le=100_000)] = 1024
    max_frame: Annotated[int, Field(ge=64 * KiB, le=64 * MiB)] = 8 * MiB
    kill_grace: Annotated[float, Field(ge=0.0, le=600.0)] = 2.0
    """Seconds between SIGHUP, SIGTERM and SIGKILL when a session is killed."""
    drain_timeout: Annotated[float, Field(ge=0.0, le=60.0)] = 0.25
    """Seconds to wait for output after the child exited while a grandchild holds the terminal."""
    shim: bool = True
    """Put the `opencode` shim first on every child's PATH."""
    opencode_bin: str | None = None
    """The real `opencode` for the shim (default: the next one on the child's PATH)."""
    opencode_upstream: Annotated[str | None, AfterValidator(_upstream_url)] = None
    """An OpenCode server (http://host:port) for the gateway that gives every child an
    OPENCODE_SERVER_URL carrying its project; its password comes from
    OPENCODE_SERVER_PASSWORD in the daemon's environment."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings() -> Settings:
    """Read and check every setting; a bad one raises SettingsError naming it."""
    path = config_file()
    if path is not None and not path.is_file():
        raise SettingsError(f"PTYSUP_CONFIG: no such file: {path}")
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            field = ".".join(str(p) for p in error["loc"])
            env_name = f"PTYSUP_{field.upper()}"
            where = env_name if env_name in os.environ else f"{field} in {path}"
            if error["type"] == "extra_forbidden":
                lines.append(f"unknown setting {field!r} in {path}")
            else:
                lines.append(f"invalid setting {where}: {error['msg']} (got {error['input']!r})")
        raise SettingsError("; ".join(lines)) from None
    except Exception as exc:  # a TOML syntax error
        raise SettingsError(f"cannot read settings from {path}: {exc}") from None
