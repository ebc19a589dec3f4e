"""Installing the OpenCode plugin (`opencode-plugin/`) into OpenCode's global config
directory or a project's `.opencode/`: an entry file in `plugins/` and the modules beside
it in `plugins/ptysup/`. The user's own files (opencode.json, other plugins) are only read.
Nothing is written or removed through a symbolic link, and of what is there only the files
the install's own manifest (`install.json`) lists are ever removed."""

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import supervisor
from supervisor.safedir import SafeDir, SafeDirError, read_plain

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
    """Name → bytes of every file of `plugins/ptysup/`; the record (install.json) lists the
    others, and is the manifest of what an install wrote."""
    files = {p.name: p.read_bytes() for p in sorted(source.glob("*.js"))}
    files["package.json"] = (source / "package.json").read_bytes()
    record = {
        "command": ptysup_command(),
        "version": supervisor.__version__,
        "source": str(source),
        "files": sorted(files),
    }
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


def _conflicts(target: Path, plugins: SafeDir | None) -> list[str]:
    """Other plugins that define the same pty_* tools (opencode-pty), as notes."""
    notes = []
    for name in ("opencode.json", "opencode.jsonc"):
        path = target / name
        data = read_plain(path)
        if data is not None and b"opencode-pty" in data:
            notes.append(
                f"{path} loads opencode-pty, whose pty_* tools have the same names: "
                'remove it from "plugin" there so that these are the ones the agent gets'
            )
    for name in sorted(os.listdir(plugins.fd)) if plugins is not None else []:
        if name == ENTRY_NAME or not name.endswith((".js", ".ts")):
            continue
        try:
            data = plugins.read(name)
        except SafeDirError:
            continue
        if data is not None and b"pty_spawn" in data:
            notes.append(
                f"{plugins.path / name} also defines pty_spawn: remove it, or the tools clash"
            )
    return notes


def status(
    target: Path, *, opencode: str | None = None, probe: bool = True, project: bool = False
) -> Report:
    report = Report(target)
    try:
        with _Plugins(target, project=project, create=False) as held:
            plugins, files = held.plugins, held.files()
            if plugins is not None and files is not None:
                entry = plugins.read(ENTRY_NAME)
                report.installed = _is_entry(entry) and files.read("index.js") is not None
                if report.installed:
                    wanted = _plugin_files(source_dir())
                    report.up_to_date = entry == ENTRY_TEXT.encode() and all(
                        files.read(name) == data for name, data in wanted.items()
                    )
            report.notes.extend(_conflicts(target, plugins))
    except PluginInstallError as exc:
        report.installed = False
        report.notes.append(str(exc))
    if probe:
        check_opencode(opencode, report)
    return report


def install(
    target: Path,
    *,
    opencode: str | None = None,
    force: bool = False,
    probe: bool = True,
    project: bool = False,
) -> Report:
    """Write the plugin under `target`; only files that differ are written, and of what is
    there only the files the previous install's manifest lists are removed.

    `project`: `target` is a project's `.opencode/`, whose contents may come from anyone
    (a cloned repository), so no symbolic link below the project is followed. In the global
    config the directories above ours may be links (a dotfiles manager's); ours never."""
    report = Report(target)
    if probe:
        try:
            check_opencode(opencode, report)
        except PluginInstallError:
            if not force:
                raise
    wanted = _plugin_files(source_dir())
    with _Plugins(target, project=project, create=True) as held:
        plugins = held.plugins
        assert plugins is not None
        if not _is_entry(plugins.read(ENTRY_NAME), missing=True):
            raise PluginInstallError(
                f"{plugins.path / ENTRY_NAME} exists and is not this plugin's; move it away first"
            )
        files = held.files()
        assert files is not None
        before = _manifest(files, wanted)
        if before is None:
            foreign = sorted(name for name in wanted if files.kind(name) is not None)
            if foreign:
                raise PluginInstallError(
                    f"{files.path} holds {', '.join(foreign)} but no {RECORD_NAME}: it is not "
                    "this plugin's; move it away first"
                )
            before = set()
        for stale in sorted(before - set(wanted)):
            if files.remove(stale):
                report.changed.append(f"removed {files.path / stale}")
        for name, data in wanted.items():
            if files.read(name) != data:
                files.write(name, data)
                report.changed.append(str(files.path / name))
        if plugins.read(ENTRY_NAME) != ENTRY_TEXT.encode():
            plugins.write(ENTRY_NAME, ENTRY_TEXT.encode())
            report.changed.append(str(plugins.path / ENTRY_NAME))
        report.installed = report.up_to_date = True
        report.notes.extend(_conflicts(target, plugins))
    return report


def uninstall(target: Path, *, project: bool = False) -> Report:
    """Remove the entry and the files the install's manifest lists; the directory goes only
    once nothing else is left in it."""
    report = Report(target)
    with _Plugins(target, project=project, create=False) as held:
        plugins = held.plugins
        if plugins is None:
            return report
        entry = plugins.read(ENTRY_NAME)
        if entry is not None:
            if not _is_entry(entry):
                raise PluginInstallError(
                    f"{plugins.path / ENTRY_NAME} is not this plugin's; left in place"
                )
            plugins.remove(ENTRY_NAME)
            report.changed.append(f"removed {plugins.path / ENTRY_NAME}")
        files = held.files()
        listed = _manifest(files, _known_names()) if files is not None else None
        if files is None or listed is None:
            return report
        for name in sorted(listed):
            files.remove(name)
        files.remove(RECORD_NAME)
        left = sorted(os.listdir(files.fd))
        if left:
            report.changed.append(f"removed this plugin's files from {files.path}")
            report.notes.append(
                f"{files.path} kept: it holds files ptysup did not write ({', '.join(left)})"
            )
        else:
            os.rmdir(DIR_NAME, dir_fd=plugins.fd)
            report.changed.append(f"removed {files.path}")
    return report


def _is_entry(data: bytes | None, *, missing: bool = False) -> bool:
    if data is None:
        return missing
    return data.decode(errors="replace").split(":", 1)[0] == MARKER


def _known_names() -> dict[str, bytes]:
    """The plugin's files by name, for a record from before the manifest (it lists none)."""
    try:
        return _plugin_files(source_dir())
    except (PluginInstallError, OSError):
        return {}


def _manifest(files: SafeDir, known: Mapping[str, bytes]) -> set[str] | None:
    """The names the install recorded in `files` wrote (None: no record, not ours). Only
    plain names of this directory count, whatever else a record says."""
    data = files.read(RECORD_NAME)
    if data is None:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        record = None
    listed = record.get("files") if isinstance(record, dict) else None
    if not isinstance(listed, list):
        listed = list(known)
    return {n for n in listed if _plain_name(n) and n != RECORD_NAME}


def _plain_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and name not in ("", os.curdir, os.pardir)
        and "/" not in name
        and "\0" not in name
    )


_OWNER = "this plugin's"


class _Plugins:
    """`target/plugins` (None where absent and not created) and, on demand, `ptysup/` in it,
    held open for one install, uninstall or status; a SafeDirError leaves it as a
    PluginInstallError with the same message."""

    def __init__(self, target: Path, *, project: bool, create: bool) -> None:
        self.target, self.project, self.create = target, project, create
        self.held: list[SafeDir] = []
        self.plugins: SafeDir | None = None

    def __enter__(self) -> "_Plugins":
        try:
            self.plugins = self._open_plugins()
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        while self.held:
            self.held.pop().close()
        if isinstance(exc, SafeDirError):
            raise PluginInstallError(str(exc)) from None

    def files(self) -> SafeDir | None:
        if self.plugins is None:
            return None
        return self._hold(self.plugins.child(DIR_NAME, create=self.create))

    def _hold(self, d: SafeDir | None) -> SafeDir | None:
        if d is not None:
            self.held.append(d)
        return d

    def _open_plugins(self) -> SafeDir | None:
        plugins = self.target / "plugins"
        if not self.project:
            try:
                if self.create:
                    plugins.mkdir(parents=True, exist_ok=True)
                opened = SafeDir.open(plugins, follow=True, owner=_OWNER)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise PluginInstallError(f"cannot open {plugins}: {exc.strerror}") from None
            return self._hold(opened)
        try:
            root = SafeDir.open(self.target.parent, follow=True, owner=_OWNER)
        except OSError as exc:
            raise PluginInstallError(f"cannot open {self.target.parent}: {exc.strerror}") from None
        self._hold(root)
        dot = self._hold(root.child(self.target.name, create=self.create))
        return self._hold(dot.child("plugins", create=self.create)) if dot else None
