"""The `opencode` on every supervised child's PATH.

When the current directory resolves to another project than the one the terminal was
opened for (OPENCODE_DIRECTORY), it runs the real `opencode` anchored in that project:
the TUI gets it as its positional project, `run` and `attach` get `--dir`, every other
subcommand runs with it as the working directory. Explicit user choices win, and inside
the same project nothing changes. The real binary replaces this process (exec), so
stdin, stdout, the terminal and the exit status are the real one's.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from supervisor import workdir

if TYPE_CHECKING:
    from supervisor.opencode.probe import Capabilities
    from supervisor.opencode.project import Project, ProjectMemo
    from supervisor.opencode.sessions import SessionRecord

SHIM_NAME = "opencode"
# Options of the top-level command that take a value (the rest are flags).
VALUE_OPTIONS = frozenset(
    {
        "--log-level",
        "--port",
        "--hostname",
        "--mdns-domain",
        "--cors",
        "-m",
        "--model",
        "-s",
        "--session",
        "--prompt",
        "--agent",
        "--replay-limit",
        "--variant",
    }
)
RUN_FILE_OPTIONS = frozenset({"-f", "--file"})
ATTACH_VALUE_OPTIONS = frozenset(
    {"--dir", "-s", "--session", "-p", "--password", "-u", "--username", "--log-level"}
)
PASS_THROUGH_FLAGS = frozenset({"-h", "--help", "-v", "--version"})
SESSION_OPTIONS = ("-s", "--session")
CONTINUE_OPTIONS = ("-c", "--continue")
SESSION_COMMANDS = frozenset({"", "run"})
"""Where `--session` opens a session of this machine's store: the TUI and `run` (whose event
stream, scoped to its own directory, never sees another directory's session finish)."""
CONTINUE_COMMANDS = frozenset({"run"})
"""Where `--continue` looks in the one directory alone (the TUI looks below it too)."""
MEMO_FILE = "projects.json"
MEMO_SIZE = 64


@dataclass(frozen=True)
class Plan:
    argv: list[str]
    cwd: str | None
    why: str


def _split(argv: Sequence[str], value_options: frozenset[str]) -> tuple[int | None, bool]:
    """Index of the first positional argument, and whether `--` ends the options first."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return (i + 1 if i + 1 < len(argv) else None), True
        if arg.startswith("-") and arg != "-":
            if "=" not in arg and arg in value_options:
                i += 1
            i += 1
            continue
        return i, False
    return None, False


def _has_option(argv: Sequence[str], names: Sequence[str]) -> bool:
    return any(a in names or any(a.startswith(n + "=") for n in names) for a in argv)


def _absolute_files(argv: list[str], cwd: str, options: frozenset[str]) -> list[str]:
    """Make the values of `options` (e.g. `run -f x`) absolute, relative to `cwd`."""
    out: list[str] = []
    taking = False
    for arg in argv:
        if taking and not arg.startswith("-"):
            out.append(arg if os.path.isabs(arg) else os.path.join(cwd, arg))
            continue
        taking = False
        name, eq, value = arg.partition("=")
        if name in options and eq and not os.path.isabs(value):
            out.append(f"{name}={os.path.join(cwd, value)}")
            continue
        if arg in options:
            taking = True
        out.append(arg)
    return out


def _absolute_paths(argv: list[str], cwd: str) -> list[str]:
    """Arguments naming an existing path relative to `cwd`, made absolute, so that they
    mean the same once the working directory changes."""
    out = []
    for arg in argv:
        if arg and not arg.startswith("-") and not os.path.isabs(arg) and "://" not in arg:
            candidate = os.path.join(cwd, arg)
            if os.path.exists(candidate):
                out.append(candidate)
                continue
        out.append(arg)
    return out


def plan(
    argv: Sequence[str],
    *,
    cwd: str,
    anchor: str,
    commands: frozenset[str],
    tui_project: bool,
    run_dir: bool,
    attach_dir: bool,
) -> Plan:
    """How to run `opencode argv` from `cwd` so that it works in the project at `anchor`.

    The caller has already established that `cwd` is in another project than `anchor`.
    """
    args = list(argv)
    if _has_option(args, sorted(PASS_THROUGH_FLAGS)):
        return Plan(args, None, "help or version")
    first, after_dashes = _split(args, VALUE_OPTIONS)
    command = args[first] if first is not None and not after_dashes else None
    if command is None or command not in commands:
        if first is not None:
            return Plan(args, None, "the project was given explicitly")
        if not tui_project:
            return Plan(args, anchor, "this opencode takes no project argument; ran in it")
        return Plan([anchor, *args], None, "the TUI opens the terminal's project")
    if command in ("run", "attach"):
        if _has_option(args, ["--dir"]):
            return Plan(args, None, "--dir was given explicitly")
        supported = run_dir if command == "run" else attach_dir
        if command == "run":
            args = _absolute_files(args, cwd, RUN_FILE_OPTIONS)
        if not supported:
            return Plan(args, anchor, f"this opencode has no `{command} --dir`; ran in it")
        return Plan([*args, "--dir", anchor], None, f"`{command}` gets --dir")
    head, tail = args[: first + 1], args[first + 1 :]
    return Plan([*head, *_absolute_paths(tail, cwd)], anchor, "ran in the terminal's project")


def with_server_url(argv: Sequence[str], server_url: str | None) -> list[str]:
    """`opencode attach` with no URL attaches to this terminal's server (the gateway's
    OPENCODE_SERVER_URL, which carries the project); anything else is left as it is."""
    args = list(argv)
    if not server_url or _has_option(args, sorted(PASS_THROUGH_FLAGS)):
        return args
    first, after_dashes = _split(args, VALUE_OPTIONS)
    if first is None or after_dashes or args[first] != "attach":
        return args
    url, _ = _split(args[first + 1 :], ATTACH_VALUE_OPTIONS)
    if url is not None:
        return args
    return [*args[: first + 1], server_url, *args[first + 1 :]]


def released_marker(socket_dir: str, session: str) -> str:
    """Present while `ptysup context release` has let session `session`'s shim follow `cd`."""
    return os.path.join(socket_dir, "released", session)


def _pinning(env: Mapping[str, str], socket_dir: str, cwd_project: str) -> str | None:
    """Why the shim leaves the project alone here (None: it pins)."""
    session = env.get("PTYSUP_SESSION")
    if session and os.path.exists(released_marker(socket_dir, session)):
        return "`ptysup context release` let this terminal follow `cd`"
    if env.get("PTYSUP_SHIM_PIN") == "outside-projects" and cwd_project != "global":
        return "PTYSUP_SHIM_PIN=outside-projects, and this directory is a project of its own"
    return None


def shim_dir_of(script: str) -> str:
    return os.path.dirname(os.path.realpath(script))


def option_value(argv: Sequence[str], names: Sequence[str]) -> str | None:
    """The value of the last of the options `names` before `--`, if given."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        if name in names:
            if eq:
                found = value
            elif i + 1 < len(argv):
                found = argv[i + 1]
    return found


def command_of(argv: Sequence[str], commands: frozenset[str]) -> str:
    """The subcommand `argv` runs; "" for the TUI (no subcommand, or a project path)."""
    first, after_dashes = _split(argv, VALUE_OPTIONS)
    if first is None or after_dashes or argv[first] not in commands:
        return ""
    return argv[first]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    from supervisor.opencode.probe import OpenCodeNotFound, find_opencode

    env = os.environ if env is None else env
    args = list(sys.argv[1:] if argv is None else argv)
    here_dir = shim_dir_of(sys.argv[0])
    debug = bool(env.get("PTYSUP_SHIM_DEBUG"))
    try:
        real = find_opencode(
            path=env.get("PATH", os.defpath),
            skip=[here_dir],
            binary=env.get("PTYSUP_OPENCODE_BIN") or None,
        )
    except OpenCodeNotFound as exc:
        print(
            f"opencode (ptysup shim): no real opencode to run: {exc}. This `opencode` is "
            "the ptysup shim; install OpenCode, or name it with PTYSUP_OPENCODE_BIN "
            "(the daemon's opencode_bin setting)",
            file=sys.stderr,
        )
        return 127
    if os.path.realpath(real) == os.path.realpath(sys.argv[0]):
        print(f"opencode (ptysup shim): {real} is this shim, not OpenCode", file=sys.stderr)
        return 127
    args = with_server_url(args, env.get("OPENCODE_SERVER_URL"))
    try:
        cwd = os.getcwd()
    except OSError:
        return _exec(real, args, env, None)
    pwd = workdir.logical(env.get("PWD"), cwd)
    if debug and env.get("PWD") != pwd:
        _say(f"PWD said {env.get('PWD')}, but this runs in {cwd}: PWD corrected to {pwd}")
    cache = env.get("PTYSUP_SHIM_CACHE") or os.path.join(os.path.dirname(here_dir), "cache")
    shim = _Shim(real, args, env, cwd, cache, os.path.dirname(here_dir))
    target, why = shim.target()
    if target is None:
        if debug:
            _say(f"{why}; ran as typed in {pwd}")
        return _exec(real, args, env, pwd)
    caps = shim.capabilities()
    if caps is None:
        return _exec(real, args, env, target, moved=True)
    decided = plan(
        args,
        cwd=cwd,
        anchor=target,
        commands=caps.commands,
        tui_project=caps.tui_project,
        run_dir=caps.run_dir,
        attach_dir=caps.attach_dir,
    )
    if debug:
        _say(
            f"{why}: {decided.why}: {decided.argv} in {decided.cwd or pwd}. "
            "`ptysup context release` lets this terminal follow `cd`; "
            "PTYSUP_SHIM_PIN=outside-projects pins only outside any project"
        )
    return _exec(real, decided.argv, env, decided.cwd or pwd, moved=decided.cwd is not None)


class _Shim:
    """What one run of the shim finds out, each at most once."""

    def __init__(
        self,
        real: str,
        args: list[str],
        env: Mapping[str, str],
        cwd: str,
        cache: str,
        socket_dir: str,
    ) -> None:
        self.real, self.args, self.env, self.cwd = real, args, env, cwd
        self.cache, self.socket_dir = cache, socket_dir
        self._caps: Capabilities | None = None
        self._memo: ProjectMemo | None = None

    def capabilities(self) -> Capabilities | None:
        from supervisor.opencode.probe import ProbeFailed, probe

        if self._caps is None:
            try:
                self._caps = probe(self.real, self.cache)
            except (ProbeFailed, OSError) as exc:
                _say(f"cannot tell what {self.real} supports: {exc}")
        return self._caps

    def project(self, directory: str) -> Project:
        from supervisor.opencode.project import ProjectMemo

        if self._memo is None:
            self._memo = ProjectMemo(size=MEMO_SIZE)
            self._memo.load(_read_json(os.path.join(self.cache, MEMO_FILE)))
        return self._memo.get(directory)

    def save(self) -> None:
        if self._memo is not None and self._memo.changed:
            _write_json(os.path.join(self.cache, MEMO_FILE), self._memo.dump())

    def target(self) -> tuple[str | None, str]:
        """The directory OpenCode must work in (None: where it is), and why."""
        try:
            return self._target()
        finally:
            self.save()

    def _target(self) -> tuple[str | None, str]:
        here = self.project(self.cwd)
        home, why = self._pinned(here)
        if _session_options(self.args):
            found = self._session_directory(home or here)
            if found is not None:
                return found
        return (home.directory if home is not None else None), why

    def _pinned(self, here: Project) -> tuple[Project | None, str]:
        """The terminal's project when OpenCode must be taken there from `here`, and why."""
        from supervisor.opencode.project import resolve_directory, within

        anchor = self.env.get("OPENCODE_DIRECTORY")
        if not anchor or not os.path.isdir(anchor):
            return None, "this terminal has no OpenCode project"
        home = self.project(resolve_directory(anchor))
        if within(home, here):
            return None, f"{self.cwd} is in the terminal's project {home.directory} ({home.id})"
        free = _pinning(self.env, self.socket_dir, here.id)
        if free is not None:
            return None, f"not pinned: {free} ({here.id})"
        return home, (
            f"pinned to the terminal's project {home.directory} ({home.id}), "
            f"not {self.cwd} ({here.id})"
        )

    def _session_directory(self, project: Project) -> tuple[str, str] | None:
        """The directory of the session `--session` names, or `--continue` continues."""
        import sqlite3

        from supervisor.opencode.sessions import (
            InvalidSessionId,
            SessionNotFound,
            find_session,
            list_sessions,
        )

        caps = self.capabilities()
        if caps is None or _has_option(self.args, ["--dir"]):
            return None
        command = command_of(self.args, caps.commands)
        wanted = option_value(self.args, SESSION_OPTIONS)
        try:
            if wanted is not None and command in SESSION_COMMANDS:
                record = find_session(wanted, env=self.env)
                why = f"session {wanted} belongs to {record.directory}"
            elif wanted is None and command in CONTINUE_COMMANDS:
                last = _last_session(list_sessions(project.id, env=self.env), project)
                if last is None:
                    return None
                record = last
                why = f"the last session of project {project.id} is {record.session_id}"
            else:
                return None
        except (InvalidSessionId, SessionNotFound, OSError, sqlite3.Error):
            return None
        if not os.path.isdir(record.directory) or os.path.samefile(record.directory, self.cwd):
            return None
        return record.directory, f"{why}, in {record.directory}"


def _last_session(sessions: Sequence[SessionRecord], project: Project) -> SessionRecord | None:
    """The session `--continue` means in `project`: the most recent one not a subagent's, in
    any of its directories (outside a project with commits: at or below its directory)."""
    from supervisor.opencode.project import GLOBAL

    top = (project.worktree or project.directory).rstrip("/") + "/"
    for record in sessions:
        if record.parent_id:
            continue
        if project.id != GLOBAL or (record.directory + "/").startswith(top):
            return record
    return None


def _session_options(args: Sequence[str]) -> bool:
    return _has_option(args, [*SESSION_OPTIONS, *CONTINUE_OPTIONS])


def _read_json(path: str) -> object:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json(path: str, value: object) -> None:
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".projects-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f)
        os.replace(tmp, path)
    except OSError:
        pass


def _say(text: str) -> None:
    print(f"opencode (ptysup shim): {text}", file=sys.stderr)


def _exec(
    real: str, args: list[str], env: Mapping[str, str], pwd: str | None, *, moved: bool = False
) -> int:
    environ = dict(env)
    if pwd is not None:
        if moved:
            os.chdir(pwd)
        environ["PWD"] = pwd
    try:
        os.execve(real, ["opencode", *args], environ)
    except OSError as exc:
        print(f"opencode (ptysup shim): cannot run {real}: {exc.strerror}", file=sys.stderr)
        return 126
    return 0  # pragma: no cover - execve does not return


def install(directory: str, python: str = sys.executable) -> str:
    """Write the shim as `directory/opencode` (atomically) beside the marker that tells
    every shim, of this daemon or another, to pass this directory over; return it."""
    from supervisor.opencode.locate import SHIM_MARKER

    os.makedirs(directory, mode=0o700, exist_ok=True)
    script = (
        f"#!{python}\nimport sys\nfrom supervisor.opencode.shim import main\nsys.exit(main())\n"
    )
    marker = "ptysup's opencode shim: not OpenCode; a search for OpenCode skips this directory\n"
    for name, text, mode in (
        (SHIM_MARKER, marker, stat.S_IRUSR | stat.S_IWUSR),
        (SHIM_NAME, script, stat.S_IRWXU),
    ):
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name.lstrip('.')}-")
        try:
            os.write(fd, text.encode())
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(directory, name))
    return directory
