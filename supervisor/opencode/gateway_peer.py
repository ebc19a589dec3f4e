"""Which user owns the other end of a loopback TCP connection the gateway accepted.

Linux keeps the owner uid of every TCP socket. The gateway asks the kernel for the client's
socket (the one whose local address is our peer's and whose remote address is ours) through
``NETLINK_SOCK_DIAG``, one exact lookup per connection; where that is not available it reads
the same row from ``/proc/net/tcp`` (``tcp6`` for IPv6). A client that has closed its socket
leaves an orphan or time-wait socket that Linux reports as uid 0 with inode 0: that owner is
unknown, not root. Other platforms (macOS) offer no way, and ``SUPPORTED`` is False there:
docs/gateway.md says what that leaves open.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys

import trio

SUPPORTED = sys.platform.startswith("linux")

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLMSG_ERROR = 2
_NLM_F_REQUEST = 1
_ALL_STATES = 0xFFFFFFFF
_NO_COOKIE = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")
_REQUEST = struct.Struct("=BBBBI")
_UID_OFFSET = _HEADER.size + 4 + 48 + 12
_INODE_OFFSET = _UID_OFFSET + 4
_PROC_READERS = trio.CapacityLimiter(2)

Address = tuple[str, int]


class _State:
    netlink_works = False


_state = _State()


async def peer_uid(sock: trio.socket.SocketType) -> int | None:
    """The uid owning the client end of ``sock``, or None when it cannot be told (the client
    is gone, or the platform keeps no owner)."""
    if not SUPPORTED or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        peer: Address = sock.getpeername()[:2]
        ours: Address = sock.getsockname()[:2]
    except OSError:
        return None
    try:
        uid = _netlink_uid(sock.family, peer, ours)
        _state.netlink_works = True
        return uid
    except OSError as exc:
        if _state.netlink_works and exc.errno == errno.ENOENT:
            return None
    return await trio.to_thread.run_sync(_proc_uid, sock.family, peer, ours, limiter=_PROC_READERS)


def _netlink_uid(family: int, peer: Address, ours: Address) -> int | None:
    """``inet_diag`` for the one socket at ``peer`` connected to ``ours``: its owner, None
    when no process holds it any more (orphan, time-wait), OSError when there is none."""
    body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, _ALL_STATES) + _sock_id(
        family, peer, ours
    )
    message = _HEADER.pack(_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.sendto(message + body, (0, 0))
        reply = nl.recv(4096, socket.MSG_DONTWAIT)
    length, kind = struct.unpack_from("=IH", reply)
    if kind == _NLMSG_ERROR and len(reply) >= _HEADER.size + 4:
        code = -struct.unpack_from("=i", reply, _HEADER.size)[0]
        raise OSError(code, "sock_diag: " + errno.errorcode.get(code, str(code)))
    if kind != _SOCK_DIAG_BY_FAMILY or length < _INODE_OFFSET + 4 or len(reply) < length:
        raise OSError(errno.EPROTO, "sock_diag: unexpected reply")
    uid, inode = struct.unpack_from("=II", reply, _UID_OFFSET)
    return int(uid) if inode else None


def _sock_id(family: int, source: Address, destination: Address) -> bytes:
    ports = struct.pack("!HH", source[1], destination[1])
    addresses = b"".join(
        socket.inet_pton(family, host).ljust(16, b"\0") for host, _ in (source, destination)
    )
    return ports + addresses + struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)


def _proc_uid(family: int, peer: Address, ours: Address) -> int | None:
    """The ``uid`` column of the ``/proc/net/tcp[6]`` row for the client's socket."""
    local, remote = _proc_address(family, peer), _proc_address(family, ours)
    table = "/proc/net/tcp6" if family == socket.AF_INET6 else "/proc/net/tcp"
    try:
        with open(table, encoding="ascii") as rows:
            next(rows, None)
            for row in rows:
                fields = row.split()
                if len(fields) > 9 and fields[1] == local and fields[2] == remote:
                    return int(fields[7]) if int(fields[9]) else None
    except (OSError, ValueError):
        return None
    return None


def _proc_address(family: int, address: Address) -> str:
    """An address as ``/proc/net/tcp`` prints it: 32-bit words in host order, then the port."""
    packed = socket.inet_pton(family, address[0])
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{word:08X}" for word in words) + f":{address[1]:04X}"
