"""Who is on the other end of a Unix socket."""

import os
import socket
import struct
import sys
from dataclasses import dataclass
from typing import Protocol


class _Socket(Protocol):
    def getsockopt(self, level: int, option: int, buflen: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int | None
    uid: int
    gid: int | None


def peer_of(sock: _Socket) -> Peer:
    if sys.platform == "linux":
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", creds)
        return Peer(pid or None, uid, gid)
    # macOS / BSD: LOCAL_PEERCRED gives a struct xucred; LOCAL_PEERPID the pid.
    sol_local, local_peercred, local_peerpid = 0, 0x001, 0x002
    raw = sock.getsockopt(sol_local, local_peercred, struct.calcsize("2ih16I"))
    _version, uid, ngroups, *groups = struct.unpack("2ih16I", raw)
    pid: int | None
    try:
        pid = struct.unpack("i", sock.getsockopt(sol_local, local_peerpid, 4))[0]
    except OSError:
        pid = None
    return Peer(pid, uid, groups[0] if ngroups else None)


def _parent_and_session(pid: int) -> tuple[int, int] | None:
    """(ppid, sid) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[1]), int(fields[3])
    except FileNotFoundError:
        return None
    except OSError:
        pass
    try:
        import subprocess

        out = subprocess.run(
            ["ps", "-o", "ppid=", "-p", str(pid)], capture_output=True, text=True, check=False
        ).stdout.strip()
        return (int(out), os.getsid(pid)) if out else None
    except (OSError, ValueError):
        return None


def lineage(pid: int, limit: int = 64) -> list[tuple[int, int]]:
    """(pid, sid) of `pid` and each of its ancestors, nearest first, up to init."""
    chain: list[tuple[int, int]] = []
    seen: set[int] = set()
    while pid > 1 and pid not in seen and len(chain) < limit:
        seen.add(pid)
        info = _parent_and_session(pid)
        if info is None:
            break
        ppid, sid = info
        chain.append((pid, sid))
        pid = ppid
    return chain
