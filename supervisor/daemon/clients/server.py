"""Accepting connections: check who calls, then serve each with a connection of its own
and the one dispatcher."""

import contextlib
import os

import trio

from supervisor import logs
from supervisor.daemon.clients.client import Client
from supervisor.daemon.clients.connection import Connection, ids
from supervisor.daemon.clients.dispatch import Dispatcher
from supervisor.daemon.clients.hub import Hub
from supervisor.daemon.system.peers import peer_of
from supervisor.protocol import FORBIDDEN, LIMIT, encode_control
from supervisor.protocol.messages import error_message

log = logs.get_logger("supervisor.server")


class Server:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.dispatch = Dispatcher(hub)

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
            limit = hub.settings.max_connections
            if len(hub.clients) >= limit:
                log.warning("refused a connection over the limit", peer_pid=peer.pid)
                await _refuse(
                    sock,
                    LIMIT,
                    f"the daemon has {len(hub.clients)} connections, its limit "
                    f"(PTYSUP_MAX_CONNECTIONS={limit})",
                )
                return
            backlog = max(hub.settings.subscriber_backlog, hub.settings.ring_size)
            client = Client(next(ids), peer, hub.registry, backlog)
            connection = Connection(
                sock, client, self.dispatch, hub.hello(), hub.settings.max_frame
            )
            hub.clients.add(client)
            try:
                await connection.serve()
            except Exception:
                log.exception("connection failed; closed it", conn=client.id, peer_pid=peer.pid)
            finally:
                hub.clients.discard(client)


async def _refuse(sock: trio.socket.SocketType, code: str, message: str) -> None:
    with trio.move_on_after(1.0):
        with contextlib.suppress(OSError):
            await sock.send(encode_control(error_message(None, code, message)))
