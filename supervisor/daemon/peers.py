"""Who is on the other end of a Unix socket."""

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
