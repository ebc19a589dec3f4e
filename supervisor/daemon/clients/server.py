"""Accepting connections: check who calls, then serve each with a connection of its own
and the one dispatcher."""

import contextlib
import os
from collections import Counter

import trio

from supervisor import logs
from supervisor.daemon.clients.client import Client
from supervisor.daemon.clients.connection import Connection, FrameBudget, ids
from supervisor.daemon.clients.dispatch import Dispatcher
from supervisor.daemon.clients.hub import Hub
from supervisor.daemon.system.peers import peer_of
from supervisor.protocol import FORBIDDEN, LIMIT, encode_control
from supervisor.protocol.messages import error_message
from supervisor.settings import Settings

log = logs.get_logger("supervisor.server")

RESERVED_CONNECTIONS = 8
"""The last connections of the limit, kept for a process that holds none yet (a `ptysup
stop` or `status`): one process filling the rest cannot lock everyone out."""


def reserved(limit: int) -> int:
    return min(RESERVED_CONNECTIONS, limit // 4)


def refusal(total: int, held: int, settings: Settings) -> str | None:
    """Why a new connection is refused when the daemon has `total` connections and its
    process `held` of them; None when it is admitted."""
    limit = settings.max_connections
    share = settings.max_connections_per_peer
    if total >= limit:
        return f"the daemon has {total} connections, its limit (PTYSUP_MAX_CONNECTIONS={limit})"
    if held >= share:
        return (
            f"this process has {held} connections to the daemon, its share "
            f"(PTYSUP_MAX_CONNECTIONS_PER_PEER={share})"
        )
    kept = reserved(limit)
    if held and total >= limit - kept:
        return (
            f"the daemon has {total} connections; the last {kept} of its limit "
            f"(PTYSUP_MAX_CONNECTIONS={limit}) are kept for processes that hold none"
        )
    return None


class Server:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.dispatch = Dispatcher(hub)
        self.frames = FrameBudget(hub.settings.partial_frame_budget)
        self.per_peer: Counter[int | None] = Counter()

    async def accept_loop(self, listener: trio.socket.SocketType, nursery: trio.Nursery) -> None:
        while True:
            try:
                sock, _ = await listener.accept()
            except OSError as exc:
                log.error("accept failed", error=str(exc))
                await trio.sleep(0.1)
                continue
            nursery.start_soon(self._connection, sock)

    async def _connection(self, sock: trio.socket.SocketType) -> None:
        hub = self.hub
        with sock:
            try:
                peer = peer_of(sock)
            except OSError as exc:
                log.warning("peer credentials unavailable; refused", error=str(exc))
                return
            if peer.uid != os.getuid():
                log.warning("refused a peer of another user", peer_uid=peer.uid, peer_pid=peer.pid)
                await _refuse(sock, FORBIDDEN, "this daemon serves only its own user")
                return
            settings = hub.settings
            why = refusal(len(hub.clients), self.per_peer[peer.pid], settings)
            if why is not None:
                log.warning("refused a connection over the limit", peer_pid=peer.pid, why=why)
                await _refuse(sock, LIMIT, why)
                return
            backlog = max(settings.subscriber_backlog, settings.ring_size)
            client = Client(next(ids), peer, hub.registry, backlog)
            connection = Connection(
                sock,
                client,
                self.dispatch,
                hub.hello(),
                settings.max_frame,
                hello_timeout=settings.hello_timeout,
                budget=self.frames,
            )
            hub.clients.add(client)
            self.per_peer[peer.pid] += 1
            try:
                await connection.serve()
            except Exception:
                log.exception("connection failed; closed it", conn=client.id, peer_pid=peer.pid)
            finally:
                hub.clients.discard(client)
                self.per_peer[peer.pid] -= 1
                if not self.per_peer[peer.pid]:
                    del self.per_peer[peer.pid]


async def _refuse(sock: trio.socket.SocketType, code: str, message: str) -> None:
    with trio.move_on_after(1.0):
        with contextlib.suppress(OSError):
            await sock.send(encode_control(error_message(None, code, message)))
