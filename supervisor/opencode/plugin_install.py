"""Installing the OpenCode plugin (`opencode-plugin/`) into OpenCode's global config
directory or a project's `.opencode/`: an entry file in `plugins/` and the modules beside
it in `plugins/ptysup/`. The user's own files (opencode.json, other plugins) are only read."""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import supervisor

ENTRY_NAME = "ptysup.js"
DIR_NAME = "ptysup"
RECORD_NAME = "install.json"
MARKER = "// pty-supervisor plugin entry"
ENTRY_TEXT = (
    f"{MARKER}: `ptysup opencode plugin uninstall` removes it.\n"
    f'export {{ default }} from "./{DIR_NAME}/index.js";\n'
)
MIN_VERSION = (1, 18, 0)
TESTED_VERSION = "1.18.33"
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


class PluginInstallError(Exception):
    """Installing or removing cannot go ahead; the message says why and what to do."""


@dataclass
class Report:
    """What install, uninstall or status found and did, for the CLI to print."""

    target: Path
    changed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    installed: bool = False
    up_to_date: bool = False
    opencode: str | None = None
    opencode_version: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "target": str(self.target),
            "installed": self.installed,
            "up_to_date": self.up_to_date,
            "changed": self.changed,
            "notes": self.notes,
            "opencode": self.opencode,
            "opencode_version": self.opencode_version,
        }


def source_dir() -> Path:
    """The plugin's files: packaged with the wheel, else the checkout's `opencode-plugin/`."""
    here = Path(supervisor.__file__).resolve().parent
    for candidate in (here / "opencode" / "plugin_files", here.parent / "opencode-plugin"):
        if (candidate / "index.js").is_file():
            return candidate
    raise PluginInstallError(f"the plugin's files are missing from this installation ({here})")


def config_dir(env: dict[str, str] | None = None) -> Path:
    """OpenCode's global config directory: `$XDG_CONFIG_HOME/opencode` (~/.config)."""
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(
        env.get("HOME") or str(Path.home()), ".config"
    )
    return Path(base) / "opencode"


def target_dir(project: str | None, env: dict[str, str] | None = None) -> Path:
    if project is None:
        return config_dir(env)
    root = Path(project).expanduser().resolve()
    if not root.is_dir():
        raise PluginInstallError(f"--project {project}: no such directory")
    return root / ".opencode"


def ptysup_command() -> list[str]:
    """How the plugin starts a daemon: this installation's `ptysup`."""
    script = Path(sys.executable).parent / "ptysup"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "supervisor"]


def _plugin_files(source: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in sorted(source.glob("*.js"))}
    files["package.json"] = (source / "package.json").read_bytes()
    record = {"command": ptysup_command(), "version": supervisor.__version__, "source": str(source)}
    files[RECORD_NAME] = (json.dumps(record, indent=2) + "\n").encode()
    return files


def check_opencode(binary: str | None, report: Report) -> None:
    """Note which OpenCode is installed; refuse one too old to load the plugin."""
    from supervisor.opencode.probe import OpenCodeNotFound, find_opencode

    try:
        found = find_opencode(binary=binary)
    except OpenCodeNotFound:
        report.notes.append(
            f"OpenCode was not found ({binary or 'opencode on PATH'}); the plugin is for "
            f"OpenCode {'.'.join(map(str, MIN_VERSION))} or later (tested with {TESTED_VERSION})"
        )
        return
    report.opencode = found
    try:
        done = subprocess.run(
            [found, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        match = _VERSION.search(done.stdout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        report.notes.append(f"could not ask {found} for its version: {exc}")
        return
    if match is None:
        report.notes.append(
            f"{found} --version printed no version ({done.stdout.strip()!r}); "
            f"the plugin needs OpenCode {'.'.join(map(str, MIN_VERSION))} or later"
        )
        return
    report.opencode_version = match[0]
    if tuple(int(g) for g in match.groups()) < MIN_VERSION:
        raise PluginInstallError(
            f"{found} is OpenCode {match[0]}, too old for this plugin (it needs "
            f"{'.'.join(map(str, MIN_VERSION))} or later, tested with {TESTED_VERSION}): "
            "run `opencode upgrade`, or give --force to install anyway"
        )


def _conflicts(target: Path) -> list[str]:
    """Other plugins that define the same pty_* tools (opencode-pty), as notes."""
    notes = []
    for name in ("opencode.json", "opencode.jsonc"):
        path = target / name
        try:
            text = path.read_text()
        except OSError:
            continue
        if "opencode-pty" in text:
            notes.append(
                f"{path} loads opencode-pty, whose pty_* tools have the same names: "
                'remove it from "plugin" there so that these are the ones the agent gets'
            )
    plugins = target / "plugins"
    for other in sorted(plugins.glob("*.[jt]s")) if plugins.is_dir() else []:
        if other.name != ENTRY_NAME and "pty_spawn" in other.read_text(errors="replace"):
            notes.append(f"{other} also defines pty_spawn: remove it, or the tools clash")
    return notes


def status(target: Path, *, opencode: str | None = None, probe: bool = True) -> Report:
    report = Report(target)
    entry = target / "plugins" / ENTRY_NAME
    files = target / "plugins" / DIR_NAME
    report.installed = entry.is_file() and (files / "index.js").is_file()
    if report.installed:
        wanted = _plugin_files(source_dir())
        report.up_to_date = entry.read_text() == ENTRY_TEXT and all(
            (files / name).is_file() and (files / name).read_bytes() == data
            for name, data in wanted.items()
        )
    report.notes.extend(_conflicts(target))
    if probe:
        check_opencode(opencode, report)
    return report


def install(
    target: Path, *, opencode: str | None = None, force: bool = False, probe: bool = True
) -> Report:
    """Write the plugin under `target`; only files that differ are written."""
    report = Report(target)
    if probe:
        try:
            check_opencode(opencode, report)
        except PluginInstallError:
            if not force:
                raise
    entry = target / "plugins" / ENTRY_NAME
    if entry.exists() and entry.read_text(errors="replace").split(":", 1)[0] != MARKER:
        raise PluginInstallError(f"{entry} exists and is not this plugin's; move it away first")
    files = target / "plugins" / DIR_NAME
    files.mkdir(parents=True, exist_ok=True)
    wanted = _plugin_files(source_dir())
    for name, data in wanted.items():
        path = files / name
        if not path.is_file() or path.read_bytes() != data:
            _write(path, data)
            report.changed.append(str(path))
    for stale in sorted(files.iterdir()):
        if stale.name not in wanted and stale.is_file():
            stale.unlink()
            report.changed.append(f"removed {stale}")
    if not entry.is_file() or entry.read_text() != ENTRY_TEXT:
        _write(entry, ENTRY_TEXT.encode())
        report.changed.append(str(entry))
    report.installed = report.up_to_date = True
    report.notes.extend(_conflicts(target))
    return report


def uninstall(target: Path) -> Report:
    report = Report(target)
    entry = target / "plugins" / ENTRY_NAME
    files = target / "plugins" / DIR_NAME
    if entry.is_file():
        if entry.read_text(errors="replace").split(":", 1)[0] != MARKER:
            raise PluginInstallError(f"{entry} is not this plugin's; left in place")
        entry.unlink()
        report.changed.append(f"removed {entry}")
    if (files / RECORD_NAME).is_file():
        shutil.rmtree(files)
        report.changed.append(f"removed {files}")
    return report


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
