"""Which ``opencode`` is installed and which flags it takes, read from its own ``--help``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from supervisor.opencode.locate import (
    CACHE_FORMAT,
    CACHE_NAME,
    OpenCodeNotFound,
    cache_key,
    find_opencode,
    load_cache,
)

__all__ = [
    "CACHE_NAME",
    "Capabilities",
    "OpenCodeNotFound",
    "ProbeFailed",
    "find_opencode",
    "parse_help",
    "probe",
]

CACHE_ENTRIES = 8

_HELP_COMMANDS: dict[str, list[str]] = {
    "version": ["--version"],
    "tui": ["--help"],
    "run": ["run", "--help"],
    "attach": ["attach", "--help"],
}
_REQUIRED = ("version", "tui")
_OPTION = re.compile(r"  (?:(-[A-Za-z0-9]), |    )(--[A-Za-z0-9][A-Za-z0-9-]*)")
_COMMAND = re.compile(r"  opencode (\S+)")
_POSITIONAL = re.compile(r"  ([A-Za-z][\w-]*)  ")
_VERSION = re.compile(r"\d+\.\d+\.\d+\S*")


class ProbeFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Capabilities:
    """What one ``opencode`` binary (``binary``: its real path) supports.

    The flag sets hold every option its help lists, long and short (``--session``, ``-s``);
    ``tui`` is the default command, ``opencode [project]``. A subcommand whose help fails
    has no flags, and the properties count a flag only where its subcommand exists (an
    unknown subcommand's help is the top-level help).
    """

    binary: str
    version: str
    commands: frozenset[str]
    tui_positionals: tuple[str, ...]
    tui_flags: frozenset[str]
    run_flags: frozenset[str]
    attach_flags: frozenset[str]

    @property
    def tui_project(self) -> bool:
        return "project" in self.tui_positionals

    @property
    def tui_session(self) -> bool:
        return "--session" in self.tui_flags

    @property
    def run_dir(self) -> bool:
        return "run" in self.commands and "--dir" in self.run_flags

    @property
    def run_session(self) -> bool:
        return "run" in self.commands and "--session" in self.run_flags

    @property
    def run_attach(self) -> bool:
        return "run" in self.commands and "--attach" in self.run_flags

    @property
    def attach(self) -> bool:
        return "attach" in self.commands

    @property
    def attach_dir(self) -> bool:
        return self.attach and "--dir" in self.attach_flags

    @property
    def attach_session(self) -> bool:
        return self.attach and "--session" in self.attach_flags

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, frozenset | tuple):
                data[key] = sorted(value) if isinstance(value, frozenset) else list(value)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Capabilities:
        def strings(key: str) -> list[str]:
            value = data[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(key)
            return value

        binary, version = data["binary"], data["version"]
        if not isinstance(binary, str) or not isinstance(version, str):
            raise ValueError("binary/version")
        return cls(
            binary=binary,
            version=version,
            commands=frozenset(strings("commands")),
            tui_positionals=tuple(strings("tui_positionals")),
            tui_flags=frozenset(strings("tui_flags")),
            run_flags=frozenset(strings("run_flags")),
            attach_flags=frozenset(strings("attach_flags")),
        )


def probe(
    binary: str,
    cache_dir: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Capabilities:
    """What ``binary`` supports, from the cache in ``cache_dir`` or by asking it once.

    The cache is keyed by the binary's real path, mtime and size, so an upgrade in place
    is probed again.
    """
    real, key = cache_key(binary)
    cache_path = os.path.join(cache_dir, CACHE_NAME)
    entries = load_cache(cache_path)
    cached = entries.get(key)
    if cached is not None:
        try:
            return Capabilities.from_json(cached)
        except (KeyError, ValueError):
            pass
    outputs = _run_all(real, env, timeout)
    caps = parse_help(real, outputs)
    entries.pop(key, None)
    entries[key] = caps.to_json()
    _store_cache(cache_path, dict(list(entries.items())[-CACHE_ENTRIES:]))
    return caps


def parse_help(binary: str, outputs: Mapping[str, str]) -> Capabilities:
    """Capabilities from the outputs of the commands in ``_HELP_COMMANDS``."""
    version_match = _VERSION.search(outputs.get("version", ""))
    top = outputs.get("tui", "")
    return Capabilities(
        binary=binary,
        version=version_match[0] if version_match else "",
        commands=frozenset(
            m[1]
            for line in _section(top, "Commands")
            if (m := _COMMAND.match(line)) and not m[1].startswith(("[", "<"))
        ),
        tui_positionals=tuple(
            m[1] for line in _section(top, "Positionals") if (m := _POSITIONAL.match(line))
        ),
        tui_flags=_flags(top),
        run_flags=_flags(outputs.get("run", "")),
        attach_flags=_flags(outputs.get("attach", "")),
    )


def _flags(help_text: str) -> frozenset[str]:
    flags: set[str] = set()
    for line in _section(help_text, "Options"):
        m = _OPTION.match(line)
        if m:
            flags.update(f for f in m.groups() if f)
    return frozenset(flags)


def _section(help_text: str, title: str) -> list[str]:
    lines: list[str] = []
    inside = False
    for line in help_text.splitlines():
        if not line.startswith(" ") and line.strip():
            inside = line.strip() == f"{title}:"
        elif inside:
            lines.append(line)
    return lines


def _run_all(binary: str, env: Mapping[str, str] | None, timeout: float) -> dict[str, str]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, args in _HELP_COMMANDS.items():
            procs[name] = subprocess.Popen(
                [binary, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                start_new_session=True,
            )
        outputs: dict[str, str] = {}
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=timeout)
            if proc.returncode == 0:
                outputs[name] = out.decode("utf-8", "replace")
            elif name in _REQUIRED:
                command = " ".join(_HELP_COMMANDS[name])
                raise ProbeFailed(f"{binary} {command} exited {proc.returncode}")
        return outputs
    except subprocess.TimeoutExpired as e:
        raise ProbeFailed(f"{binary} did not answer {e.cmd} within {timeout}s") from None
    except OSError as e:
        raise ProbeFailed(f"cannot run {binary}: {e}") from None
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _store_cache(path: str, entries: Mapping[str, Mapping[str, object]]) -> None:
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".opencode-capabilities.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"format": CACHE_FORMAT, "entries": entries}, f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass
