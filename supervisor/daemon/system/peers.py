"""Who is on the other end of a Unix socket."""

import socket
import struct
import sys
from dataclasses import dataclass
from typing import Protocol

from supervisor import procfs


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


def lineage(pid: int, limit: int = 64) -> list[tuple[int, int]]:
    """(pid, sid) of `pid` and each of its ancestors, nearest first, up to init."""
    chain: list[tuple[int, int]] = []
    seen: set[int] = set()
    while pid > 1 and pid not in seen and len(chain) < limit:
        seen.add(pid)
        try:
            info = procfs.stat(pid)
        except OSError:
            info = None
        if info is None:
            break
        chain.append((pid, info.sid))
        pid = info.ppid
    return chain
