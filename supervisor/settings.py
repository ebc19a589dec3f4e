"""The daemon's settings: PTYSUP_* variables, then an optional TOML file, then the defaults.

Every setting is checked at start; a bad one stops the daemon with a message naming it.
Plain Python (tomllib and a table of rules), because the daemon reads its settings before
anything else at every start, an upgrade in place included.
"""

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB
PREFIX = "PTYSUP_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    ring_size: int = 1 * MiB
    """Bytes of output kept per session for reads and reattach."""
    subscriber_backlog: int = 1 * MiB
    """Bytes queued for one slow subscriber before it is skipped forward."""
    max_sessions: int = 2048
    max_connections: int = 1024
    max_connections_per_peer: int = 512
    """Connections one client process may hold at once."""
    hello_timeout: float = 5.0
    """Seconds a new connection has to complete its hello before it is closed."""
    max_frame: int = 8 * MiB
    partial_frame_budget: int = 64 * MiB
    """Bytes of unfinished frames held for all connections together (the first 64 KiB of
    each connection's are not counted)."""
    kill_grace: float = 2.0
    """Seconds between SIGHUP, SIGTERM and SIGKILL when a session is killed."""
    drain_timeout: float = 0.25
    """Seconds to wait for output after the child exited while a grandchild holds the terminal."""
    shim: bool = True
    """Put the `opencode` shim first on every child's PATH."""
    opencode_bin: str | None = None
    """The real `opencode` for the shim (default: the next one on the child's PATH)."""
    opencode_upstream: str | None = None
    """An OpenCode server (http://host:port) for the gateway that gives every child an
    OPENCODE_SERVER_URL carrying its project; its password comes from
    OPENCODE_SERVER_PASSWORD in the daemon's environment, which the daemon takes out of its
    environment at start (lifecycle/credentials.py)."""
    log_level: str = "info"
    log_format: str = "auto"


RANGES: dict[str, tuple[float, float]] = {
    "ring_size": (4 * KiB, 1024 * MiB),
    "subscriber_backlog": (64 * KiB, 1024 * MiB),
    "max_sessions": (1, 100_000),
    "max_connections": (1, 100_000),
    "max_connections_per_peer": (1, 100_000),
    "hello_timeout": (0.1, 600.0),
    "max_frame": (64 * KiB, 64 * MiB),
    "partial_frame_budget": (64 * KiB, 64 * 1024 * MiB),
    "kill_grace": (0.0, 600.0),
    "drain_timeout": (0.0, 60.0),
}
CHOICES = {
    "log_level": ("debug", "info", "warning", "error"),
    "log_format": ("auto", "json", "console"),
}
_KINDS = {f.name: f.type for f in fields(Settings)}


def config_file(env: dict[str, str] | None = None) -> Path | None:
    """$PTYSUP_CONFIG if set (it must exist), else $XDG_CONFIG_HOME/pty-supervisor/config.toml."""
    env = dict(os.environ) if env is None else env
    if env.get("PTYSUP_CONFIG"):
        return Path(env["PTYSUP_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = Path(base) / "pty-supervisor" / "config.toml"
    return path if path.is_file() else None


def _convert(name: str, value: object, from_text: bool) -> object:
    """The setting's value, checked; ValueError says what is wrong with it."""
    kind = _KINDS[name]
    if kind is bool or kind == "bool":
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("expected true or false")
    if kind in (int, "int"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("expected a whole number")
        try:
            number: float = int(value)
        except ValueError:
            raise ValueError("expected a whole number") from None
    elif kind in (float, "float"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("expected a number")
        try:
            number = float(value)
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
    else:
        if not isinstance(value, str):
            raise ValueError("expected text")
        if name in CHOICES and value not in CHOICES[name]:
            raise ValueError(f"expected one of {', '.join(CHOICES[name])}")
        if name == "opencode_upstream":
            from supervisor.opencode.gateway_upstream import Upstream

            Upstream(value)  # raises ValueError saying what is wrong with it
        return value
    low, high = RANGES[name]
    if not low <= number <= high:
        raise ValueError(f"must be from {low:g} to {high:g}")
    return number


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read and check every setting; a bad one raises SettingsError naming it."""
    env = dict(os.environ) if env is None else env
    path = config_file(env)
    if path is not None and not path.is_file():
        raise SettingsError(f"PTYSUP_CONFIG: no such file: {path}")
    from_file: dict[str, object] = {}
    if path is not None:
        import tomllib

        try:
            with open(path, "rb") as f:
                from_file = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read settings from {path}: {exc}") from None
    upper_env = {key.upper(): value for key, value in env.items()}
    values: dict[str, object] = {}
    problems = [f"unknown setting {name!r} in {path}" for name in from_file if name not in _KINDS]
    for name in _KINDS:
        env_name = PREFIX + name.upper()
        if env_name in upper_env:
            raw, where, text = upper_env[env_name], env_name, True
        elif name in from_file:
            raw, where, text = from_file[name], f"{name} in {path}", False
        else:
            continue
        try:
            values[name] = _convert(name, raw, text)
        except ValueError as exc:
            problems.append(f"invalid setting {where}: {exc} (got {raw!r})")
    if problems:
        raise SettingsError("; ".join(problems))
    return Settings(**values)  # type: ignore[arg-type]
