"""What the daemon knows of one connection: who it is, its subscriptions, the terminals it
handed over, and the input it is still writing. Requests reach it through a `Call`."""

import contextlib
import itertools
from typing import Any

import trio

from supervisor import logs
from supervisor.daemon.clients.outbox import Outbox
from supervisor.daemon.clients.route import Route
from supervisor.daemon.clients.terminal import TerminalLink
from supervisor.daemon.registry import Registry
from supervisor.daemon.session.session import Session
from supervisor.daemon.session.subscription import Subscription
from supervisor.daemon.session.writer import ECHO_KEY, SessionClosed
from supervisor.daemon.system.fd import OwnedFd
from supervisor.daemon.system.peers import Peer
from supervisor.protocol import CONFLICT, NOT_FOUND, ProtocolError, encode_control
from supervisor.protocol.messages import RequestId, error_message, event_message

log = logs.get_logger("supervisor.client")

INPUT_QUEUE = 256


class Client:
    def __init__(self, conn_id: int, peer: Peer, registry: Registry, backlog: int) -> None:
        self.id = conn_id
        self.peer = peer
        self.registry = registry
        self.backlog = backlog
        self.outbox = Outbox(f"pid {peer.pid}" if peer.pid else f"conn {conn_id}")
        self.subscriptions: dict[int, Subscription] = {}
        self.routes: dict[int, Route] = {}
        self.terminals: dict[int, TerminalLink] = {}
        self.nursery: trio.Nursery | None = None
        self._sub_ids = itertools.count(1)
        self._input_queues: dict[int, trio.MemorySendChannel[bytes]] = {}
        self._input_waiting: dict[int, tuple[str, trio.MemoryReceiveChannel[bytes]]] = {}
        """Each input pump's queue, to hand what it holds to the next image (upgrade)."""
        self.log = log.bind(conn=conn_id, peer_pid=peer.pid)

    # -- sending --------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.control(encode_control(message))

    def send_error(self, request_id: RequestId | None, code: str, message: str) -> None:
        self.send(error_message(request_id, code, message))

    # -- subscriptions ----------------------------------------------------------------

    def new_subscription(
        self,
        session_id: str,
        *,
        follow: bool,
        input: bool,
        lossless: bool = False,
        patient: bool = False,
    ) -> Subscription:
        for old in [s for s in self.subscriptions.values() if s.ended]:
            self.routes.pop(old.id, None)
            del self.subscriptions[old.id]
        sub = Subscription(
            next(self._sub_ids),
            session_id,
            self.backlog,
            follow=follow,
            input=input,
            lossless=lossless,
            patient=patient,
            client=self.outbox.client,
        )
        self.subscriptions[sub.id] = sub
        self.routes[sub.id] = Route(sub, self.outbox)
        return sub

    def drop_subscription(self, sub_id: int) -> Subscription:
        sub = self.subscriptions.pop(sub_id, None)
        if sub is None:
            raise ProtocolError(NOT_FOUND, f"no subscription {sub_id} on this connection")
        link = self.terminals.pop(sub_id, None)
        if link is not None:
            link.close()
        route = self.routes.pop(sub_id, None)
        if route is not None:
            route.close()
        self.registry.event_subs.pop(sub.key, None)
        session = self.registry.sessions.get(sub.session_id)
        if session is not None:
            session.unsubscribe(sub)
        return sub

    def release_terminals(self) -> None:
        """The client is gone (its end of the socket closed): stop reading and writing the
        terminals it handed over at once, and give them back as they were before — a client
        killed outright cannot."""
        for sub_id, link in list(self.terminals.items()):
            del self.terminals[sub_id]
            link.give_back()
            link.close()

    def forget_all(self) -> None:
        self.outbox.fd = None
        for sub_id in list(self.subscriptions):
            self.drop_subscription(sub_id)

    # -- the client's own terminal ----------------------------------------------------

    def link_terminal(
        self,
        terminal: OwnedFd,
        sub: Subscription,
        session: Session,
        *,
        detach_key: int | None,
        read_only: bool,
        first: bytes | None,
        start: int,
        keys: bool,
    ) -> None:
        """`sub`'s output from `start` on goes to `terminal` (after `first`); with `keys`,
        its keys come from it. Call it before the subscription's first output."""
        link = TerminalLink(
            terminal,
            sub,
            session,
            self.outbox,
            self.deliver_input,
            detach_key=detach_key,
            read_only=read_only,
            on_end=self._terminal_ended,
            start=start,
            keys=keys,
            input_idle=lambda s: s.id not in self._input_queues,
        )
        self.terminals[sub.id] = link
        self.routes[sub.id] = link.route
        assert self.nursery is not None
        self.nursery.start_soon(link.run, first)

    def fit_relayed(self, sub: Subscription, session: Session) -> None:
        """`sub` is an attach relayed over the socket: at another size than the session's,
        it gets fitted redraws instead of bytes."""
        route = self.routes.get(sub.id)
        if route is not None and self.nursery is not None:
            route.fit_relayed(session, self.nursery.start_soon)

    def written(self, sub_id: int, offset: int) -> None:
        link = self.terminals.get(sub_id)
        if link is not None:  # a late note, after the terminal was let go: no matter
            link.route.written(offset)

    def _terminal_ended(self, link: TerminalLink, why: str) -> None:
        sub = link.sub
        if self.terminals.get(sub.id) is link:
            del self.terminals[sub.id]
        if why == "ended":
            return
        if sub.id in self.subscriptions:
            self.drop_subscription(sub.id)
        self.send(event_message(why, sub.id))

    def relay_terminals(self) -> None:
        """Give the attached terminals back to their clients (the daemon is about to be
        replaced): the output not yet written goes as frames, after an event that says
        where the output written to the terminal ends."""
        for sub_id, link in list(self.terminals.items()):
            del self.terminals[sub_id]
            link.close()
            self.send(event_message("relayed", sub_id, offset=link.sub.written))

    # -- input ------------------------------------------------------------------------

    async def input(self, sub_id: int, data: bytes) -> None:
        sub = self.subscriptions.get(sub_id)
        if sub is None or not sub.input:
            self.send(
                error_message(
                    None, NOT_FOUND, f"no subscription {sub_id} with input here", sub=sub_id
                )
            )
            return
        await self.deliver_input(sub, data)

    async def deliver_input(self, sub: Subscription, data: bytes) -> None:
        """Keys for `sub`'s session, from the socket or from the client's terminal."""
        attached = self.registry.sessions.get(sub.session_id)
        if attached is not None and attached.roles.observes(sub):
            return  # an observer's keystrokes are dropped
        queue = self._input_queues.get(sub.id)
        if queue is None:
            try:
                session = self.registry.lookup(sub.session_id)
                written = session.writer.try_write(data)
            except (ProtocolError, SessionClosed) as exc:
                self.send(error_message(None, CONFLICT, str(exc), sub=sub.id))
                return
            if written == len(data):
                if written <= ECHO_KEY:
                    session.reader.catch_echo()
                return
            queue = self._start_input_pump(sub, session)
            data = data[written:]
        try:
            queue.send_nowait(data)
        except trio.WouldBlock:
            await queue.send(data)  # only a client typing far ahead of the child waits here
        except trio.ClosedResourceError:
            pass

    def take_queued_input(self) -> dict[str, list[bytes]]:
        """Session id -> the input queued here and not yet given to its writer, in order,
        taken out (the daemon is about to hand its state to a new image). A send waiting for
        room in a queue gives its data to the queue as the queue is emptied."""
        taken: dict[str, list[bytes]] = {}
        for session_id, receive in self._input_waiting.values():
            parts = taken.setdefault(session_id, [])
            with contextlib.suppress(trio.WouldBlock, trio.EndOfChannel):
                while True:
                    parts.append(receive.receive_nowait())
        return taken

    def _start_input_pump(
        self, sub: Subscription, session: Session
    ) -> trio.MemorySendChannel[bytes]:
        send, receive = trio.open_memory_channel[bytes](INPUT_QUEUE)
        self._input_queues[sub.id] = send
        self._input_waiting[sub.id] = (session.id, receive)
        assert self.nursery is not None
        self.nursery.start_soon(self._input_pump, sub, session, send, receive)
        return send

    async def _input_pump(
        self,
        sub: Subscription,
        session: Session,
        send: trio.MemorySendChannel[bytes],
        receive: trio.MemoryReceiveChannel[bytes],
    ) -> None:
        """Input the terminal could not take at once, written as it makes room, in order."""

        def stop() -> None:
            self._input_queues.pop(sub.id, None)
            self._input_waiting.pop(sub.id, None)
            send.close()
            if (link := self.terminals.get(sub.id)) is not None:
                link.place_keys()

        async with receive:
            while True:
                try:
                    data = receive.receive_nowait()
                except trio.WouldBlock:
                    stop()
                    return
                try:
                    await session.writer.write(data)
                except SessionClosed as exc:
                    self.send(error_message(None, CONFLICT, str(exc), sub=sub.id))
                    stop()
                    return
