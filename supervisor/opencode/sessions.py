"""OpenCode's own record of its sessions: which project and directory a session belongs to.

Read-only over OpenCode's SQLite store and the older JSON tree; see docs/opencode.md.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass

SESSION_ID = re.compile(r"ses[A-Za-z0-9_-]{1,128}")
BUSY_TIMEOUT = 2.0
MAX_JSON_BYTES = 1 << 20

_COLUMNS = "id, project_id, directory, title, parent_id, time_updated"


@dataclass(frozen=True)
class SessionRecord:
    """One session as OpenCode stored it.

    ``directory`` is where the session was started (OpenCode's ``Instance.directory``,
    symlinks resolved); ``store`` the database or JSON file it was read from;
    ``time_updated`` is in milliseconds since the epoch.
    """

    session_id: str
    project_id: str
    directory: str
    title: str
    store: str
    parent_id: str | None = None
    time_updated: int | None = None


class InvalidSessionId(ValueError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"not an OpenCode session id: {session_id!r}")
        self.session_id = session_id


class SessionNotFound(LookupError):
    def __init__(self, session_id: str, searched: list[str]) -> None:
        places = "; ".join(searched) if searched else "nothing"
        super().__init__(f"OpenCode session {session_id} not found; searched {places}")
        self.session_id = session_id
        self.searched = searched


def data_dir(env: Mapping[str, str] | None = None) -> str:
    """``$XDG_DATA_HOME/opencode``, the XDG default under the home directory otherwise."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or os.path.join(_home(env), ".local", "share")
    return os.path.join(base, "opencode")


def database_paths(env: Mapping[str, str] | None = None) -> list[str]:
    """The SQLite files OpenCode may keep sessions in, most likely first (may not exist).

    ``$OPENCODE_DB`` when set (relative to the data directory); otherwise ``opencode.db``,
    then the per-channel ``opencode-<channel>.db`` files of non-release builds.
    """
    env = os.environ if env is None else env
    data = data_dir(env)
    chosen = env.get("OPENCODE_DB")
    if chosen:
        if chosen == ":memory:":
            return []
        return [os.path.normpath(os.path.join(data, chosen))]
    channels = sorted(glob.glob(os.path.join(glob.escape(data), "opencode-*.db")))
    return [os.path.join(data, "opencode.db"), *channels]


def legacy_session_dir(env: Mapping[str, str] | None = None) -> str:
    """``<data>/storage/session``, where OpenCode 1.1 and older kept
    ``<project id>/<session id>.json``."""
    return os.path.join(data_dir(env), "storage", "session")


def find_session(session_id: str, *, env: Mapping[str, str] | None = None) -> SessionRecord:
    """The session's record from the first store that has it."""
    if not SESSION_ID.fullmatch(session_id):
        raise InvalidSessionId(session_id)
    searched: list[str] = []
    for path in database_paths(env):
        if not os.path.isfile(path):
            searched.append(f"{path} (missing)")
            continue
        try:
            with _open_readonly(path) as conn:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM session WHERE id = ?", (session_id,)
                ).fetchone()
        except sqlite3.Error as e:
            searched.append(f"{path} (unreadable: {e})")
            continue
        if row is not None:
            return _from_row(row, path)
        searched.append(path)
    legacy = legacy_session_dir(env)
    for path in _legacy_candidates(legacy, session_id):
        record = _read_legacy(path)
        if record is not None and record.session_id == session_id:
            return record
    searched.append(os.path.join(legacy, "*", f"{session_id}.json"))
    raise SessionNotFound(session_id, searched)


def list_sessions(
    project_id: str | None = None, *, env: Mapping[str, str] | None = None
) -> list[SessionRecord]:
    """Every session OpenCode knows of (of one project if given), most recent first.

    A session in several stores is listed once, from the first store. Unreadable stores
    are skipped.
    """
    found: dict[str, SessionRecord] = {}
    query = f"SELECT {_COLUMNS} FROM session"
    params: tuple[str, ...] = ()
    if project_id is not None:
        query += " WHERE project_id = ?"
        params = (project_id,)
    for path in database_paths(env):
        if not os.path.isfile(path):
            continue
        try:
            with _open_readonly(path) as conn:
                rows = conn.execute(query, params).fetchall()
        except sqlite3.Error:
            continue
        for row in rows:
            found.setdefault(row[0], _from_row(row, path))
    legacy = legacy_session_dir(env)
    projects = [project_id] if project_id is not None else _subdirs(legacy)
    for project in projects:
        if "/" in project or project in ("", ".", ".."):
            continue
        pattern = os.path.join(glob.escape(legacy), glob.escape(project), "*.json")
        for path in sorted(glob.glob(pattern)):
            record = _read_legacy(path)
            if record is not None and SESSION_ID.fullmatch(record.session_id):
                found.setdefault(record.session_id, record)
    return sorted(found.values(), key=lambda r: r.time_updated or 0, reverse=True)


def _open_readonly(path: str) -> closing[sqlite3.Connection]:
    """A connection that cannot write, create the file, or leave files behind.

    With no ``-wal`` file no connection holds the database in WAL mode, so it is opened as
    immutable; a plain read-only open would create ``-wal`` and ``-shm`` files next to it.
    """
    mode = "ro" if os.path.exists(path + "-wal") else "ro&immutable=1"
    uri = f"file:{urllib.parse.quote(path)}?mode={mode}"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error:
        conn.close()
        raise
    return closing(conn)


def _from_row(row: tuple[object, ...], store: str) -> SessionRecord:
    session_id, project_id, directory, title, parent_id, updated = row
    return SessionRecord(
        session_id=str(session_id),
        project_id=str(project_id),
        directory=str(directory),
        title="" if title is None else str(title),
        store=store,
        parent_id=None if parent_id is None else str(parent_id),
        time_updated=updated if isinstance(updated, int) else None,
    )


def _legacy_candidates(legacy: str, session_id: str) -> Iterator[str]:
    for project in _subdirs(legacy):
        path = os.path.join(legacy, project, f"{session_id}.json")
        if os.path.isfile(path):
            yield path


def _read_legacy(path: str) -> SessionRecord | None:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(MAX_JSON_BYTES))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    session_id, project_id, directory = data.get("id"), data.get("projectID"), data.get("directory")
    if not (isinstance(session_id, str) and isinstance(project_id, str)):
        return None
    if not isinstance(directory, str):
        return None
    title = data.get("title")
    parent = data.get("parentID")
    time = data.get("time")
    updated = time.get("updated") if isinstance(time, dict) else None
    return SessionRecord(
        session_id=session_id,
        project_id=project_id,
        directory=directory,
        title=title if isinstance(title, str) else "",
        store=path,
        parent_id=parent if isinstance(parent, str) else None,
        time_updated=updated if isinstance(updated, int) else None,
    )


def _subdirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return sorted(e.name for e in entries if e.is_dir())
    except OSError:
        return []


def _home(env: Mapping[str, str]) -> str:
    home = env.get("HOME")
    if home:
        return home
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return os.path.expanduser("~")
