"""The daemon's state as a file, for handing it to a new image of itself (upgrade in place)
or to the next daemon after a crash.

Layout: the magic `PTYSUP-STATE\\n`, a u32 big-endian length, a JSON header of that length,
then every session's scrollback (and the input queued for it, if any), one after another,
as the header says. The header names
its format version; a reader refuses any version it does not know instead of guessing.
"""

import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field

from supervisor.daemon.session.snapshot import SessionState

MAGIC = b"PTYSUP-STATE\n"
FORMAT = 1
_LEN = struct.Struct(">I")


class StateError(Exception):
    pass


@dataclass
class DaemonState:
    socket: str
    next_id: int
    listen_fd: int | None
    lock_fd: int | None
    daemon_version: str
    owns_path: bool = True
    gateway_port: int | None = None
    sessions: list[SessionState] = field(default_factory=list)
    written_at: float = field(default_factory=time.time)


def dumps(state: DaemonState) -> bytes:
    blobs = []
    sessions = []
    for s in state.sessions:
        entry = {k: v for k, v in vars(s).items() if k not in ("scrollback", "input")}
        if not entry["followers"]:
            del entry["followers"]  # a reader from before it still reads the rest
        entry["scrollback_len"] = len(s.scrollback)
        blobs.append(s.scrollback)
        if s.input:  # only then: a reader from before it still reads the rest
            entry["input_len"] = len(s.input)
            blobs.append(s.input)
        sessions.append(entry)
    header = {
        "format": FORMAT,
        "daemon_version": state.daemon_version,
        "written_at": state.written_at,
        "socket": state.socket,
        "next_id": state.next_id,
        "listen_fd": state.listen_fd,
        "lock_fd": state.lock_fd,
        "owns_path": state.owns_path,
        "gateway_port": state.gateway_port,
        "sessions": sessions,
    }
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([MAGIC, _LEN.pack(len(encoded)), encoded, *blobs])


def loads(data: bytes) -> DaemonState:
    if not data.startswith(MAGIC):
        raise StateError("not a pty-supervisor state file")
    pos = len(MAGIC)
    try:
        (length,) = _LEN.unpack_from(data, pos)
        header = json.loads(data[pos + 4 : pos + 4 + length])
    except (struct.error, ValueError) as exc:
        raise StateError(f"the state file is damaged: {exc}") from None
    version = header.get("format")
    if version != FORMAT:
        raise StateError(
            f"state format {version!r} is not one this daemon reads (it reads {FORMAT}); "
            "refusing to guess"
        )
    pos += 4 + length
    sessions = []
    try:
        for entry in header["sessions"]:
            blobs = []
            for size in (entry.pop("scrollback_len"), entry.pop("input_len", 0)):
                blob = data[pos : pos + size]
                if len(blob) != size:
                    raise StateError("the state file is truncated")
                pos += size
                blobs.append(blob)
            sessions.append(SessionState(**entry, scrollback=blobs[0], input=blobs[1]))
        return DaemonState(
            socket=header["socket"],
            next_id=header["next_id"],
            listen_fd=header["listen_fd"],
            lock_fd=header["lock_fd"],
            daemon_version=header["daemon_version"],
            owns_path=header["owns_path"],
            gateway_port=header.get("gateway_port"),
            sessions=sessions,
            written_at=header["written_at"],
        )
    except (KeyError, TypeError) as exc:
        raise StateError(f"the state file is damaged: {exc!r}") from None


def write(state: DaemonState, directory: str, name: str = "state", *, durable: bool = True) -> str:
    """Write the state atomically as `directory/name` (0600); return its path. Not
    `durable`, it is not synced to the disk: for a reader that runs before any reboot."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(dumps(state))
            f.flush()
            if durable:
                os.fsync(f.fileno())
        path = os.path.join(directory, name)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read(path: str) -> DaemonState:
    try:
        with open(path, "rb") as f:
            return loads(f.read())
    except OSError as exc:
        raise StateError(f"cannot read the state file {path}: {exc.strerror}") from None
