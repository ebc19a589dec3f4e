"""`PWD`, the working directory a process is told, against the one it is in.

OpenCode's `run` takes its directory from `PWD` when it is set, and a program that starts
another with a working directory of its own leaves its own `PWD` behind. A shell keeps a
logical `PWD` (the path typed, symlinks and all) as long as it names the directory it is in;
these functions apply the same rule.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


def names_directory(path: str | None, directory: str) -> bool:
    """Whether `path` is an absolute path, free of `.` and `..`, naming `directory`."""
    if not path or not os.path.isabs(path):
        return False
    if any(part in (".", "..") for part in path.split("/")):
        return False
    try:
        return os.path.samefile(path, directory)
    except OSError:
        return False


def logical(pwd: str | None, directory: str) -> str:
    """What `PWD` should say in `directory`: `pwd` if it names it, else `directory`."""
    return pwd if pwd is not None and names_directory(pwd, directory) else directory


def for_spawn(requested: str) -> str:
    """The `PWD` of a child started in `requested`: its normalised form (a symlink kept) when
    that names the same directory, else the resolved path."""
    normal = os.path.normpath(requested)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    if names_directory(normal, requested):
        return normal
    try:
        return os.path.realpath(requested, strict=True)
    except OSError:
        return normal


def current(env: Mapping[str, str] | None = None) -> str:
    """This process's logical working directory: `$PWD` where it names the real one."""
    source = os.environ if env is None else env
    return logical(source.get("PWD"), os.getcwd())


def absolute(path: str, env: Mapping[str, str] | None = None) -> str:
    """`path` made absolute against the logical working directory, as a shell's `cd` does."""
    return os.path.normpath(os.path.join(current(env), path))
