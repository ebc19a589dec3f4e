"""Finding the real `opencode` and what the probe learnt of it before, cheaply: the CLI's
`status` and the shim use this without loading the probe itself."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

CACHE_NAME = "opencode-capabilities.json"
CACHE_FORMAT = 1
SHIM_MARKER = ".ptysup-shim"
"""A file beside the `opencode` of every ptysup shim directory: whoever looks for the real
OpenCode passes such a directory over, whichever daemon wrote it."""
_SHIM_SIGNATURE = b"supervisor.opencode.shim"
_HEAD = 512

__all__ = [
    "CACHE_FORMAT",
    "CACHE_NAME",
    "SHIM_MARKER",
    "OpenCodeNotFound",
    "cache_key",
    "find_opencode",
    "is_shim",
]


class OpenCodeNotFound(LookupError):
    pass


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def is_shim(path: str) -> bool:
    """Whether ``path`` is a ptysup shim: it lies in a marked directory (as named, or once
    its links are resolved), or it is a script that runs the shim (one from before the
    marker, or a copy)."""
    real = os.path.realpath(path)
    for directory in {os.path.dirname(os.path.abspath(path)), os.path.dirname(real)}:
        if os.path.lexists(os.path.join(directory, SHIM_MARKER)):
            return True
    try:
        with open(real, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return False
    return head.startswith(b"#!") and _SHIM_SIGNATURE in head


def find_opencode(
    *,
    path: str | None = None,
    skip: Iterable[str] = (),
    binary: str | None = None,
) -> str:
    """The real ``opencode``, as an absolute path: ``binary`` if given (a bare name is
    looked up like ``opencode``), else the first ``opencode`` on ``path`` that is not a
    ptysup shim (`is_shim`) and not in ``skip``.

    ``path`` defaults to ``$PATH``. ``skip`` holds directories or files; an entry on
    ``path`` that is, or resolves into, one of them is passed over. A relative entry of
    ``path`` (an empty one is ``.``) means what it means to a shell typing ``opencode``
    here: it is taken relative to the current directory now, so the path returned still
    names the same file after a ``chdir`` (the shim's move into the project).
    """
    if binary is not None and os.sep in binary:
        if not _is_executable(binary):
            raise OpenCodeNotFound(f"{binary} is not an executable file")
        if is_shim(binary):
            raise OpenCodeNotFound(f"{binary} is a ptysup shim, not OpenCode")
        return os.path.abspath(binary)
    name = binary or "opencode"
    search = os.environ.get("PATH", os.defpath) if path is None else path
    skipped = {os.path.realpath(s) for s in skip}
    try:
        cwd: str | None = os.getcwd()
    except OSError:
        cwd = None
    looked: list[str] = []
    for entry in search.split(os.pathsep):
        if os.path.isabs(entry):
            directory = entry
        elif cwd is None:
            looked.append(f"{entry or '.'} (relative, and the current directory is gone)")
            continue
        else:
            directory = cwd if entry in ("", os.curdir) else os.path.join(cwd, entry)
        candidate = os.path.join(directory, name)
        looked.append(candidate)
        if not _is_executable(candidate):
            continue
        real = os.path.realpath(candidate)
        if os.path.realpath(directory) in skipped or real in skipped:
            continue
        if os.path.dirname(real) in skipped or is_shim(candidate):
            continue
        return candidate
    raise OpenCodeNotFound(f"no {name} found; looked at {', '.join(looked) or 'nothing'}")


def cache_key(binary: str) -> tuple[str, str]:
    """The binary's real path, and the key of its entry in the probe's cache: its real
    path, mtime and size, so that an upgrade of it is probed again."""
    real = os.path.realpath(binary)
    st = os.stat(real)
    return real, f"{real}\0{st.st_mtime_ns}\0{st.st_size}"


def load_cache(path: str) -> dict[str, Mapping[str, object]]:
    try:
        with open(path, encoding="utf-8") as f:
            import json

            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, dict)}


def cached_version(binary: str, cache_dir: str) -> str | None:
    """The version the probe found for `binary`, if its cache still holds it."""
    try:
        _, key = cache_key(binary)
    except OSError:
        return None
    entry = load_cache(os.path.join(cache_dir, CACHE_NAME)).get(key)
    version = entry.get("version") if entry else None
    return version if isinstance(version, str) else None
