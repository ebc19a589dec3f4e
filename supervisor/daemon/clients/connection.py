"""One client connection's bytes: read frames, hand each request to the dispatcher it was
given, write what the client's outbox holds. It knows no op and no daemon."""

import array
import contextlib
import itertools
import math
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from supervisor.daemon.clients.client import Client
from supervisor.protocol import CONFLICT, LIMIT, PROTOCOL_VERSION, UNSUPPORTED
from supervisor.protocol.messages import (
    Hello,
    Input,
    Request,
    RequestId,
    Violation,
    Written,
)
from supervisor.protocol.server import ServerConnection

RECV_SIZE = 64 * 1024  # larger buffers are mmap-ed and unmapped on every receive
EVENTS_PER_CHECKPOINT = 64
MAX_IN_FLIGHT = 64
MAX_CONTROL_BACKLOG = 4 * 1024 * 1024
MAX_PASSED = 4
"""Descriptors a client may pass with one message; more are closed by the kernel."""
UNCOUNTED_PARTIAL = 64 * 1024
"""Bytes of an unfinished frame each connection holds outside the shared budget."""
ANCILLARY_SIZE = socket.CMSG_SPACE(MAX_PASSED * array.array("i").itemsize)
RECV_FLAGS = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
ids = itertools.count(1)

Dispatch = Callable[[Request, Client, list[int]], Awaitable[None]]
"""Runs one request and sends its reply or error."""


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


class FrameBudget:
    """Bytes of unfinished frames held for all connections together, beyond the first
    UNCOUNTED_PARTIAL of each: a connection whose unfinished frame would take the total over
    the limit is closed, so that memory stays bounded however many connections stall."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def update(self, before: int, after: int) -> bool:
        """One connection's unfinished frame went from `before` to `after` bytes. False when
        that growth does not fit: the budget then no longer counts that connection's bytes
        (the caller closes it)."""
        old = max(0, before - UNCOUNTED_PARTIAL)
        new = max(0, after - UNCOUNTED_PARTIAL)
        if new > old and self.held - old + new > self.limit:
            self.held -= old
            return False
        self.held += new - old
        return True


class Connection:
    def __init__(
        self,
        sock: trio.socket.SocketType,
        client: Client,
        dispatch: Dispatch,
        hello: dict[str, Any],
        max_frame: int,
        *,
        hello_timeout: float = math.inf,
        budget: FrameBudget | None = None,
    ) -> None:
        self.sock = sock
        self.client = client
        self._dispatch = dispatch
        self._hello = hello
        self.protocol = ServerConnection(max_frame)
        self._hello_timeout = hello_timeout
        self._hello_by = trio.current_time() + hello_timeout
        self._budget = budget
        self._partial = 0
        self._in_flight: set[RequestId] = set()
        self._limiter = trio.Semaphore(MAX_IN_FLIGHT)
        client.outbox.fd = sock.fileno()

    async def serve(self) -> None:
        client = self.client
        client.send(self._hello)
        try:
            async with trio.open_nursery() as nursery:
                client.nursery = nursery
                nursery.start_soon(self._writer_then_cancel, nursery.cancel_scope)
                await self._reader(nursery)
                client.release_terminals()
                client.outbox.close_after_flush()
        except* (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            client.forget_all()
            if self._budget is not None:
                self._budget.update(self._partial, 0)
                self._partial = 0

    async def _writer_then_cancel(self, scope: trio.CancelScope) -> None:
        try:
            await self.client.outbox.run(self.sock)
        finally:
            scope.cancel()

    async def _reader(self, nursery: trio.Nursery) -> None:
        passed: list[int] = []
        try:
            while True:
                try:
                    received = await self._receive()
                except OSError:
                    return
                if received is None:
                    self.client.log.warning("no hello in time; closed", seconds=self._hello_timeout)
                    self.client.send_error(
                        None,
                        LIMIT,
                        f"no hello within {self._hello_timeout:g} s "
                        "(PTYSUP_HELLO_TIMEOUT); closing the connection",
                    )
                    return
                data, ancillary = received
                if ancillary:
                    passed = _descriptors(ancillary)
                if not data:
                    return
                if not await self._events(data, nursery, passed):
                    return
                _close_all(passed)  # descriptors no request in their message took
                if not self._within_budget():
                    return
        finally:
            _close_all(passed)

    async def _receive(self) -> tuple[bytes, list[tuple[int, int, bytes]]] | None:
        """The next bytes and ancillary data; None when the hello deadline passed first."""
        if self.protocol.peer_hello is not None:
            data, ancillary, _, _ = await self.sock.recvmsg(RECV_SIZE, ANCILLARY_SIZE, RECV_FLAGS)
            return data, ancillary
        with trio.move_on_at(self._hello_by):
            data, ancillary, _, _ = await self.sock.recvmsg(RECV_SIZE, ANCILLARY_SIZE, RECV_FLAGS)
            return data, ancillary
        return None

    def _within_budget(self) -> bool:
        """Count this connection's unfinished frame in the shared budget; False (an error
        sent) when it does not fit."""
        if self._budget is None:
            return True
        partial = self.protocol.buffered
        if self._budget.update(self._partial, partial):
            self._partial = partial
            return True
        self._partial = 0
        limit = self._budget.limit
        self.client.log.warning("unfinished frames over the budget; closed", held=partial)
        self.client.send_error(
            None,
            LIMIT,
            f"the {partial} bytes of this connection's unfinished frame do not fit in the "
            f"budget of {limit} bytes for the unfinished frames of all connections "
            "(PTYSUP_PARTIAL_FRAME_BUDGET); closing the connection",
        )
        return False

    async def _events(self, data: bytes, nursery: trio.Nursery, passed: list[int]) -> bool:
        """Act on what `data` completes; False when the connection is to close. A request
        that came with descriptors (the frame and they in one message) takes them."""
        client = self.client
        for count, event in enumerate(self.protocol.events(data), 1):
            if count % EVENTS_PER_CHECKPOINT == 0:
                await trio.lowlevel.checkpoint()  # one flood must not stall the others
            if isinstance(event, Input):
                await client.input(event.sub, event.data)
            elif isinstance(event, Written):
                client.written(event.sub, event.offset)
            elif isinstance(event, Request):
                await self._limiter.acquire()
                taken = passed[:]
                passed.clear()
                nursery.start_soon(self._run_request, event, taken)
            elif isinstance(event, Violation):
                if event.fatal:
                    client.log.warning("framing lost", error=event.message)
                    client.send_error(None, event.code, event.message + "; closing the connection")
                    return False
                client.send_error(event.id, event.code, event.message)
            elif isinstance(event, Hello) and not self._check_hello(event):
                return False
        await client.outbox.wait_control_below(MAX_CONTROL_BACKLOG)
        return True

    def _check_hello(self, hello: Hello) -> bool:
        if hello.protocol != PROTOCOL_VERSION:
            self.client.send_error(
                None,
                UNSUPPORTED,
                f"protocol {hello.protocol} is not supported; this daemon speaks "
                f"protocol {PROTOCOL_VERSION}",
            )
            return False
        return True

    async def _run_request(self, request: Request, passed: list[int]) -> None:
        try:
            if request.id in self._in_flight:
                self.client.send_error(
                    request.id, CONFLICT, f"request id {request.id!r} is in flight"
                )
                return
            self._in_flight.add(request.id)
            try:
                await self._dispatch(request, self.client, passed)
            finally:
                self._in_flight.discard(request.id)
        finally:
            _close_all(passed)
            self._limiter.release()
