"""One client connection: read frames, run requests, write replies and output."""

import array
import contextlib
import contextvars
import itertools
import os
import socket
from typing import TYPE_CHECKING, Any

import structlog
import trio

from supervisor.daemon.outbox import Outbox, Subscription
from supervisor.daemon.peers import Peer
from supervisor.daemon.session import ECHO_KEY, Session, SessionClosed
from supervisor.daemon.terminal import TerminalLink, open_terminal
from supervisor.protocol import (
    BAD_REQUEST,
    CONFLICT,
    INTERNAL,
    NOT_FOUND,
    PROTOCOL_VERSION,
    UNSUPPORTED,
    ProtocolError,
    encode_control,
)
from supervisor.protocol.messages import (
    Hello,
    Input,
    Request,
    RequestId,
    Violation,
    Written,
    error_message,
    event_message,
    result_message,
)
from supervisor.protocol.requests import parse_args
from supervisor.protocol.server import ServerConnection

if TYPE_CHECKING:
    from supervisor.daemon.server import Daemon

log = structlog.get_logger("supervisor.connection")

RECV_SIZE = 64 * 1024  # larger buffers are mmap-ed and unmapped on every receive
INPUT_QUEUE = 256
EVENTS_PER_CHECKPOINT = 64
MAX_IN_FLIGHT = 64
MAX_CONTROL_BACKLOG = 4 * 1024 * 1024
MAX_PASSED = 4
"""Descriptors a client may pass with one message; more are closed by the kernel."""
ANCILLARY_SIZE = socket.CMSG_SPACE(MAX_PASSED * array.array("i").itemsize)
RECV_FLAGS = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
_conn_ids = itertools.count(1)
_passed: contextvars.ContextVar[list[int]] = contextvars.ContextVar("passed")


def _descriptors(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if not RECV_FLAGS:  # no MSG_CMSG_CLOEXEC here: close them on exec by hand
        for fd in fds:
            os.set_inheritable(fd, False)
    return list(fds)


def _close_all(fds: list[int]) -> None:
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())


class Connection:
    def __init__(self, daemon: "Daemon", sock: trio.socket.SocketType, peer: Peer) -> None:
        self.id = next(_conn_ids)
        self.daemon = daemon
        self.sock = sock
        self.peer = peer
        self.outbox = Outbox()
        self.outbox.client = f"pid {peer.pid}" if peer.pid else f"conn {self.id}"
        self.outbox.fd = sock.fileno()
        self.protocol = ServerConnection(daemon.settings.max_frame)
        self.subscriptions: dict[int, Subscription] = {}
        self._sub_ids = itertools.count(1)
        self._in_flight: set[RequestId] = set()
        self._limiter = trio.Semaphore(MAX_IN_FLIGHT)
        self._nursery: trio.Nursery | None = None
        self._input_queues: dict[int, trio.MemorySendChannel[bytes]] = {}
        self.terminals: dict[int, TerminalLink] = {}
        self.log = log.bind(conn=self.id, peer_pid=peer.pid)

    # -- sending --------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.control(encode_control(message))

    def send_error(self, request_id: RequestId | None, code: str, message: str) -> None:
        self.send(error_message(request_id, code, message))

    async def _writer(self) -> None:
        sock = self.sock
        while (buffers := await self.outbox.take()) is not None:
            while buffers:
                sent = await sock.sendmsg(buffers)
                while sent:
                    first = len(buffers[0])
                    if sent >= first:
                        sent -= first
                        buffers.pop(0)
                    else:
                        buffers[0] = memoryview(buffers[0])[sent:]
                        sent = 0
            self.outbox.sending = False

    # -- receiving ------------------------------------------------------------

    async def serve(self) -> None:
        self.send(self.daemon.hello())
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._writer_then_cancel, nursery.cancel_scope)
                await self._reader(nursery)
                self.outbox.close_after_flush()
        except* (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._forget_subscriptions()

    async def _writer_then_cancel(self, scope: trio.CancelScope) -> None:
        try:
            await self._writer()
        finally:
            scope.cancel()

    async def _reader(self, nursery: trio.Nursery) -> None:
        passed: list[int] = []
        try:
            while True:
                try:
                    data, ancillary, _, _ = await self.sock.recvmsg(
                        RECV_SIZE, ANCILLARY_SIZE, RECV_FLAGS
                    )
                except OSError:
                    return
                if ancillary:
                    passed = _descriptors(ancillary)
                if not data:
                    return
                if not await self._events(data, nursery, passed):
                    return
                _close_all(passed)  # descriptors no request in their message took
        finally:
            _close_all(passed)

    async def _events(self, data: bytes, nursery: trio.Nursery, passed: list[int]) -> bool:
        """Act on what `data` completes; False when the connection is to close. A request
        that came with descriptors (the frame and they in one message) takes them."""
        for count, event in enumerate(self.protocol.events(data), 1):
            if count % EVENTS_PER_CHECKPOINT == 0:
                await trio.lowlevel.checkpoint()  # one flood must not stall the others
            if isinstance(event, Input):
                await self._input(event)
            elif isinstance(event, Written):
                link = self.terminals.get(event.sub)
                if link is not None:  # a late note, after the terminal was let go: no matter
                    link.written(event.offset)
            elif isinstance(event, Request):
                await self._limiter.acquire()
                taken = passed[:]
                passed.clear()
                nursery.start_soon(self._run_request, event, taken)
            elif isinstance(event, Violation):
                if event.fatal:
                    self.log.warning("framing lost", error=event.message)
                    self.send_error(None, event.code, event.message + "; closing the connection")
                    return False
                self.send_error(event.id, event.code, event.message)
            elif isinstance(event, Hello) and not self._hello(event):
                return False
        await self.outbox.wait_control_below(MAX_CONTROL_BACKLOG)
        return True

    def _hello(self, hello: Hello) -> bool:
        if hello.protocol != PROTOCOL_VERSION:
            self.send_error(
                None,
                UNSUPPORTED,
                f"protocol {hello.protocol} is not supported; this daemon speaks "
                f"protocol {PROTOCOL_VERSION}",
            )
            return False
        return True

    async def _input(self, event: Input) -> None:
        sub = self.subscriptions.get(event.sub)
        if sub is None or not sub.input:
            self.send(
                error_message(
                    None, NOT_FOUND, f"no subscription {event.sub} with input here", sub=event.sub
                )
            )
            return
        await self.deliver_input(sub, event.data)

    async def deliver_input(self, sub: Subscription, data: bytes) -> None:
        """Keys for `sub`'s session, from the socket or from the client's terminal."""
        attached = self.daemon.registry.sessions.get(sub.session_id)
        if attached is not None and sub in attached.attached and attached.controller is not sub:
            return  # an observer's keystrokes are dropped
        queue = self._input_queues.get(sub.id)
        if queue is None:
            try:
                session = self.daemon.registry.lookup(sub.session_id)
                written = session.try_write(data)
            except (ProtocolError, SessionClosed) as exc:
                self.send(error_message(None, CONFLICT, str(exc), sub=sub.id))
                return
            if written == len(data):
                if written <= ECHO_KEY:
                    session.catch_echo()
                return
            queue = self._start_input_pump(sub, session)
            data = data[written:]
        try:
            queue.send_nowait(data)
        except trio.WouldBlock:
            await queue.send(data)  # only a client typing far ahead of the child waits here
        except trio.ClosedResourceError:
            pass

    def _start_input_pump(
        self, sub: Subscription, session: Session
    ) -> trio.MemorySendChannel[bytes]:
        send, receive = trio.open_memory_channel[bytes](INPUT_QUEUE)
        self._input_queues[sub.id] = send
        assert self._nursery is not None
        self._nursery.start_soon(self._input_pump, sub, session, send, receive)
        return send

    async def _input_pump(
        self,
        sub: Subscription,
        session: Session,
        send: trio.MemorySendChannel[bytes],
        receive: trio.MemoryReceiveChannel[bytes],
    ) -> None:
        """Input the terminal could not take at once, written as it makes room, in order."""
        async with receive:
            while True:
                try:
                    data = receive.receive_nowait()
                except trio.WouldBlock:
                    del self._input_queues[sub.id]
                    send.close()
                    return
                try:
                    await session.write(data)
                except SessionClosed as exc:
                    self.send(error_message(None, CONFLICT, str(exc), sub=sub.id))
                    del self._input_queues[sub.id]
                    send.close()
                    return

    async def _run_request(self, request: Request, passed: list[int]) -> None:
        _passed.set(passed)
        try:
            if request.id in self._in_flight:
                self.send_error(request.id, CONFLICT, f"request id {request.id!r} is in flight")
                return
            self._in_flight.add(request.id)
            try:
                args = parse_args(request.op, request.args, self.daemon.ops)
                result = await self.daemon.handle(self, request.op, args)
            except ProtocolError as exc:
                self.send_error(request.id, exc.code, exc.message)
            except SessionClosed as exc:
                self.send_error(request.id, CONFLICT, str(exc))
            except Exception as exc:
                self.log.exception("request failed", op=request.op)
                self.send_error(request.id, INTERNAL, f"{request.op}: {type(exc).__name__}: {exc}")
            else:
                self.send(result_message(request.id, result))
            finally:
                self._in_flight.discard(request.id)
        finally:
            _close_all(passed)
            self._limiter.release()

    # -- the client's own terminal ---------------------------------------------------

    def passed_terminal(self) -> int:
        """The terminal that came with the current request, opened for the daemon's use."""
        passed = _passed.get([])
        if len(passed) != 1:
            raise ProtocolError(
                BAD_REQUEST,
                f"terminal: the request must come with one descriptor (it came with {len(passed)})",
            )
        return open_terminal(passed[0])

    def link_terminal(
        self,
        fd: int,
        sub: Subscription,
        session: Session,
        *,
        detach_key: int | None,
        read_only: bool,
        first: bytes | None,
        start: int,
        keys: bool,
    ) -> None:
        """`sub`'s output from `start` on goes to the terminal `fd` (after `first`); with
        `keys`, its keys come from it. Call it before the subscription's first output."""
        link = TerminalLink(
            fd,
            sub,
            session,
            self.deliver_input,
            detach_key=detach_key,
            read_only=read_only,
            on_end=self._terminal_ended,
            start=start,
            keys=keys,
        )
        self.terminals[sub.id] = link
        assert self._nursery is not None
        self._nursery.start_soon(link.run, first)

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

    # -- subscriptions ----------------------------------------------------------

    def new_subscription(
        self, session_id: str, *, follow: bool, input: bool, lossless: bool = False
    ) -> Subscription:
        for old in [s for s in self.subscriptions.values() if s.ended]:
            del self.subscriptions[old.id]
        sub_id = next(self._sub_ids)
        backlog = max(self.daemon.settings.subscriber_backlog, self.daemon.settings.ring_size)
        sub = Subscription(
            sub_id, session_id, self.outbox, backlog, follow=follow, input=input, lossless=lossless
        )
        self.subscriptions[sub_id] = sub
        return sub

    def drop_subscription(self, sub_id: int) -> Subscription:
        sub = self.subscriptions.pop(sub_id, None)
        if sub is None:
            raise ProtocolError(NOT_FOUND, f"no subscription {sub_id} on this connection")
        link = self.terminals.pop(sub_id, None)
        if link is not None:
            link.close()
        self.daemon.registry.event_subs.pop(sub.key, None)
        session = self.daemon.registry.sessions.get(sub.session_id)
        if session is not None:
            session.unsubscribe(sub)
        return sub

    def _forget_subscriptions(self) -> None:
        self.outbox.fd = None
        for sub_id in list(self.subscriptions):
            self.drop_subscription(sub_id)
