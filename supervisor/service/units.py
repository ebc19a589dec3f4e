"""The unit files for this installation, from the templates in `systemd/` and `launchd/`."""

import os
import plistlib
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

SERVICE_UNIT = "pty-supervisor.service"
SOCKET_UNIT = "pty-supervisor.socket"
LAUNCHD_LABEL = "local.pty-supervisor"
PLIST_NAME = LAUNCHD_LABEL + ".plist"
LOG_NAME = "pty-supervisor.log"

_SOURCE_TREE = Path(__file__).resolve().parents[2]


class ServiceError(Exception):
    pass


def template(kind: str, name: str) -> str:
    """A shipped template: packaged under supervisor/service/units/, else in the source tree."""
    packaged = resources.files("supervisor.service").joinpath("units", kind, name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    try:
        return (_SOURCE_TREE / kind / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ServiceError(
            f"the {kind} template {name} is not installed with this copy of ptysup "
            f"(looked in the package and in {_SOURCE_TREE / kind})"
        ) from None


def daemon_command(executable: str | None = None) -> list[str]:
    """How the service runs this installation's ptysup: the `ptysup` script installed beside
    the interpreter, else the interpreter with `-m supervisor`. Absolute, and the
    interpreter's path is kept as it is: resolving a virtualenv's symlink would leave it."""
    python = os.path.abspath(executable or sys.executable)
    script = os.path.join(os.path.dirname(python), "ptysup")
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    return [python, "-m", "supervisor"]


def _plain(text: str, what: str) -> str:
    if any(ord(c) < 0x20 or c == "\x7f" for c in text):
        raise ServiceError(
            f"{what} contains a control character, which a unit cannot hold: {text!r}"
        )
    return text


def _specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _quote(word: str) -> str:
    if word and not any(c in word for c in " \t\"'\\;"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_word(raw: str) -> str:
    """`raw` as one word of an ExecStart= line, read back by systemd exactly as given."""
    return _quote(_specifiers(_plain(raw, "an argument")).replace("$", "$$"))


def socket_spec(socket_path: str, runtime_dir: str | None) -> str:
    """The socket as a unit names it: under %t when it lies in the runtime directory."""
    _plain(socket_path, "the socket path")
    if not os.path.isabs(socket_path):
        raise ServiceError(f"the socket path must be absolute: {socket_path}")
    if runtime_dir and os.path.isabs(runtime_dir):
        relative = os.path.relpath(socket_path, runtime_dir)
        if not relative.startswith(os.pardir):
            return "%t/" + _specifiers(relative)
    return _specifiers(socket_path)


def render_systemd(command: list[str], socket_path: str, runtime_dir: str | None) -> dict[str, str]:
    """File name → text of the service and socket units."""
    spec = socket_spec(socket_path, runtime_dir)
    values = {
        SERVICE_UNIT: {
            "@PTYSUP@": " ".join(exec_word(word) for word in command),
            "@SOCKET@": _quote(spec.replace("$", "$$")),
        },
        SOCKET_UNIT: {"@SOCKET@": spec},
    }
    units = {}
    for name, replacements in values.items():
        lines = template("systemd", name).splitlines(keepends=True)
        text = "".join(line for line in lines if not line.startswith("#@"))
        for key, value in replacements.items():
            text = text.replace(key, value)
        units[name] = text
    return units


def _fill(value: Any, strings: Mapping[str, str], command: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, strings, command) for k, v in value.items()}
    if isinstance(value, list):
        filled: list[Any] = []
        for item in value:
            if item == "@PTYSUP@":
                filled.extend(command)
            else:
                filled.append(_fill(item, strings, command))
        return filled
    if isinstance(value, str):
        for key, replacement in strings.items():
            value = value.replace(key, replacement)
    return value


def render_launchd(
    command: list[str], socket_path: str, log_path: str, *, sockets: bool = True
) -> bytes:
    """The agent's plist; with `sockets`, launchd holds the control socket (0600)."""
    for path, what in ((socket_path, "the socket path"), (log_path, "the log path")):
        if not os.path.isabs(_plain(path, what)):
            raise ServiceError(f"{what} must be absolute: {path}")
    plist = plistlib.loads(template("launchd", PLIST_NAME).encode())
    plist = _fill(plist, {"@SOCKET@": socket_path, "@LOG@": log_path}, command)
    if not sockets:
        del plist["Sockets"]
    return plistlib.dumps(plist, sort_keys=False)


def systemd_unit_dir(env: Mapping[str, str]) -> Path:
    config = env.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config):
        config = os.path.join(_home(env), ".config")
    return Path(config) / "systemd" / "user"


def launch_agents_dir(env: Mapping[str, str]) -> Path:
    return Path(_home(env)) / "Library" / "LaunchAgents"


def launchd_log(env: Mapping[str, str]) -> Path:
    return Path(_home(env)) / "Library" / "Logs" / LOG_NAME


def _home(env: Mapping[str, str]) -> str:
    home = env.get("HOME", "")
    if not os.path.isabs(home):
        raise ServiceError("HOME is not set to an absolute path; cannot tell where units go")
    return home
