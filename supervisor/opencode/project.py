"""OpenCode's project id for a directory, computed the way OpenCode 1.18.33 computes it.

The algorithm and where it lives in OpenCode's source are in docs/opencode.md.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from supervisor.opencode.remote import remote_project_id

GLOBAL = "global"
CACHE_FILE = "opencode"

Source = Literal["remote", "cache", "root-commit", "none"]
_Run = Callable[[list[str], str], "str | None"]


@dataclass(frozen=True)
class Project:
    """What OpenCode resolves for a directory.

    ``directory`` is OpenCode's ``Instance.directory``; ``worktree`` is its
    ``Instance.worktree``, the top level of the git worktree holding ``directory``
    (OpenCode says ``/`` outside git; this says None). ``source`` tells which rule gave the id.
    """

    id: str
    worktree: str | None
    directory: str
    vcs: str | None
    source: Source
    git_common_dir: str | None = None


def resolve_directory(path: str, *, cwd: str | None = None) -> str:
    """Absolute with symlinks resolved; a path that cannot be resolved is only made absolute."""
    if not os.path.isabs(path):
        path = os.path.join(resolve_directory(os.getcwd() if cwd is None else cwd), path)
    path = os.path.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    try:
        return os.path.realpath(path, strict=True)
    except OSError:
        return path


def clean_git_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) without any ``GIT_*`` variable."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not k.startswith("GIT_")}


def project_for(
    directory: str,
    *,
    git: str = "git",
    env: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> Project:
    """OpenCode's project for ``directory``; never raises for a missing git or a non-repo.

    ``env`` is the environment the OpenCode in question would run with: OpenCode hands its
    own environment to git, so ``GIT_DIR`` and the like in there count. By default it is
    this process's environment without ``GIT_*`` variables. At most four git commands run,
    usually two or three.
    """
    directory = resolve_directory(directory)
    git_env = clean_git_env() if env is None else dict(env)
    outside = Project(GLOBAL, None, directory, None, "none")

    dot_git = _find_dot_git(directory)
    if dot_git is None:
        return outside
    base = os.path.dirname(dot_git)

    def run(args: list[str], cwd: str) -> str | None:
        return _git(git, args, cwd, git_env, timeout)

    repo = _discover(run, base)
    if repo is None:
        return outside
    worktree, common = repo

    url = run(["remote", "get-url", "origin"], worktree)
    remote_id = remote_project_id(url) if url else None
    if remote_id is not None:
        return Project(remote_id, worktree, directory, "git", "remote", common)

    cached = read_cache(common)
    if cached is not None:
        return Project(cached, worktree, directory, "git", "cache", common)

    roots = (run(["rev-list", "--max-parents=0", "HEAD"], worktree) or "").split("\n")
    first = min((r.strip() for r in roots if r.strip()), default=None)
    if first is not None:
        return Project(first, worktree, directory, "git", "root-commit", common)
    return Project(GLOBAL, worktree, directory, "git", "none", common)


def within(home: Project, there: Project) -> bool:
    """Whether OpenCode in ``there`` works in the project of ``home``.

    Every directory outside a repository with commits is project ``global``; there only
    ``home``'s directory and the directories below it count (its repository, when it is one
    without commits).
    """
    if there.id != home.id:
        return False
    if home.id != GLOBAL:
        return True
    top = home.worktree or home.directory
    return there.directory == top or there.directory.startswith(top.rstrip("/") + "/")


State = tuple[object, ...]


def repository_state(directory: str) -> State:
    """A cheap fingerprint (no git run) of everything that decides ``directory``'s project id:
    which ``.git`` holds it, the ``HEAD`` and the branch it names, the packed refs, the
    config (its ``origin``) and OpenCode's cache file. A first commit, a new remote or a
    checkout changes it."""
    directory = resolve_directory(directory)
    dot_git = _find_dot_git(directory)
    if dot_git is None:
        return ("none",)
    git_dir = _git_dir_of(dot_git)
    common = git_dir
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as f:
            common = os.path.normpath(os.path.join(git_dir, f.read().strip()))
    except OSError:
        pass
    files = [
        os.path.join(git_dir, "HEAD"),
        os.path.join(common, "config"),
        os.path.join(common, CACHE_FILE),
        os.path.join(common, "packed-refs"),
    ]
    try:
        with open(files[0], encoding="utf-8", errors="replace") as f:
            head = f.read().strip()
    except OSError:
        head = ""
    if head.startswith("ref:"):
        ref = head[4:].strip()
        if not ref.startswith("/") and ".." not in ref.split("/"):
            files.append(os.path.join(common, ref))
    return (dot_git, head, *(_signature(f) for f in files))


def _git_dir_of(dot_git: str) -> str:
    """The git directory a ``.git`` entry names: itself, or a ``gitdir:`` file's target."""
    if os.path.isdir(dot_git):
        return dot_git
    try:
        with open(dot_git, encoding="utf-8", errors="replace") as f:
            text = f.read().strip()
    except OSError:
        return dot_git
    if not text.startswith("gitdir:"):
        return dot_git
    target = text[len("gitdir:") :].strip()
    return os.path.normpath(os.path.join(os.path.dirname(dot_git), target))


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ProjectMemo:
    """``project_for`` remembered per directory for as long as its repository's state (above)
    stays the same; at most ``size`` directories, the least recently asked dropped first."""

    def __init__(self, resolve: Callable[[str], Project] | None = None, *, size: int = 512) -> None:
        self._resolve = resolve or project_for
        self._size = size
        self._entries: dict[str, tuple[object, Project]] = {}
        self._lock = threading.Lock()
        self.changed = False
        """Whether an answer was computed since this memo was made or loaded."""

    def get(self, directory: str) -> Project:
        """Safe to call from several threads at once."""
        directory = resolve_directory(directory)
        state = repository_state(directory)
        with self._lock:
            hit = self._entries.pop(directory, None)
            if hit is not None and hit[0] == state:
                self._entries[directory] = hit
                return hit[1]
        project = self._resolve(directory)
        with self._lock:
            self._entries[directory] = (state, project)
            while len(self._entries) > self._size:
                del self._entries[next(iter(self._entries))]
            self.changed = True
        return project

    def dump(self) -> list[object]:
        """The entries as JSON values, for :meth:`load` in another process."""
        return [[d, list(state), dataclasses.asdict(p)] for d, (state, p) in self._entries.items()]

    def load(self, entries: object) -> None:
        """Entries from :meth:`dump`; anything malformed is left out."""
        if not isinstance(entries, list):
            return
        for entry in entries[-self._size :]:
            try:
                directory, state, fields = entry
                self._entries[str(directory)] = (_frozen(state), Project(**fields))
            except (TypeError, ValueError):
                continue


def _frozen(value: object) -> object:
    """A JSON value with its lists turned back into tuples."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def read_cache(git_common_dir: str) -> str | None:
    """The id OpenCode cached in ``<git common dir>/opencode``, if any."""
    try:
        with open(
            os.path.join(git_common_dir, CACHE_FILE), encoding="utf-8", errors="replace"
        ) as f:
            value = f.read().strip()
    except OSError:
        return None
    return value or None


def _find_dot_git(directory: str) -> str | None:
    """The nearest ``.git`` (file or directory) at or above ``directory``.

    OpenCode checks every ancestor and gives the project up (``global``) when any check
    fails with something other than "not found".
    """
    found: str | None = None
    current = directory
    while True:
        candidate = os.path.join(current, ".git")
        try:
            os.stat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError:
            return None
        else:
            found = found or candidate
        parent = os.path.dirname(current)
        if parent == current:
            return found
        current = parent


def _discover(run: _Run, base: str) -> tuple[str, str] | None:
    """(worktree, git common dir) for the repository whose ``.git`` is in ``base``."""
    out = run(["rev-parse", "--show-toplevel", "--git-dir", "--git-common-dir"], base)
    lines = out.split("\n") if out is not None else []
    if len(lines) == 3:
        return _git_path(base, lines[0]), _git_path(base, lines[2])
    # --show-toplevel fails where there is no work tree; OpenCode then uses ``base``.
    out = run(["rev-parse", "--git-dir", "--git-common-dir"], base)
    lines = out.split("\n") if out is not None else []
    if len(lines) == 2:
        return base, _git_path(base, lines[1])
    return None


def _git_path(base: str, text: str) -> str:
    text = text.rstrip("\r\n")
    if not text:
        return base
    return os.path.normpath(text if os.path.isabs(text) else os.path.join(base, text))


def _git(git: str, args: list[str], cwd: str, env: Mapping[str, str], timeout: float) -> str | None:
    try:
        done = subprocess.run(
            [git, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace").rstrip("\r\n")
