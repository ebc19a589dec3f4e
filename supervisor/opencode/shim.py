"""The `opencode` on every supervised child's PATH.

When the current directory is outside the project the terminal was opened for
(OPENCODE_DIRECTORY), it runs the real `opencode` anchored in that project: the TUI gets it
as its positional project, `run` and `attach` get `--dir`, every other subcommand runs with
it as the working directory. `--session` and `run --continue` go to the session's own
directory wherever they are typed. Explicit user choices win, and inside the same project
nothing changes but a stale `PWD`, which is corrected in every case. The real binary
replaces this process (exec), so stdin, stdout, the terminal and the exit status are the
real one's.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from supervisor import workdir
from supervisor.opencode.cmdline import (
    CONTINUE_COMMANDS,
    SESSION_COMMANDS,
    SESSION_OPTIONS,
    asks_for_session,
    command_of,
    has_option,
    option_value,
    plan,
    with_server_url,
)

if TYPE_CHECKING:
    from supervisor.opencode.probe import Capabilities
    from supervisor.opencode.project import Project, ProjectMemo
    from supervisor.opencode.sessions import SessionRecord

SHIM_NAME = "opencode"
MEMO_FILE = "projects.json"
MEMO_SIZE = 64


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
        if asks_for_session(self.args):
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
        if caps is None or has_option(self.args, ["--dir"]):
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
