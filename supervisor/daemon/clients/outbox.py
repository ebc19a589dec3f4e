"""What one connection is going to send, and the one writer of its socket.

Control frames (replies, events) queue in order. Output waits in each subscription's own
queue, as references to the bytes the reader produced; the outbox only keeps the order in
which subscriptions have something ready. Live output may go straight to the socket when
nothing else waits (a keystroke's echo, for one); everything else goes through the writer
task. Either way only the outbox writes to the socket, and what it has taken off the
queues but not yet sent is `_unsent`.

What sessions tell a client that does not read stays bounded: a redraw takes the place of
the one not yet sent, and events past MAX_EVENTS are counted and told as one `dropped`.
"""

import os
from collections import deque
from typing import Protocol

import trio

from supervisor.daemon.session.subscription import MAX_BUFFERS, MAX_EVENTS, Frame, Subscription
from supervisor.protocol.frames import encode_control
from supervisor.protocol.messages import event_message


class _Socket(Protocol):
    async def sendmsg(self, buffers: list[bytes | memoryview], /) -> int: ...


def _consume(buffers: list[bytes | memoryview], sent: int) -> None:
    while sent:
        first = len(buffers[0])
        if sent >= first:
            sent -= first
            buffers.pop(0)
        else:
            buffers[0] = memoryview(buffers[0])[sent:]
            sent = 0


class _Told:
    """A subscription's event or redraw in the control queue."""

    __slots__ = ("frame", "redraw", "sub_id")

    def __init__(self, frame: bytes, sub_id: int, redraw: bool) -> None:
        self.frame = frame
        self.sub_id = sub_id
        self.redraw = redraw


class Outbox:
    def __init__(self, client: str = "") -> None:
        self._control: deque[bytes | _Told] = deque()
        self.control_bytes = 0
        self._redraws: dict[int, _Told] = {}
        """Subscription id -> its redraw in the control queue."""
        self._events = 0
        """Subscriptions' events in the control queue."""
        self._dropped: dict[int, int] = {}
        """Subscription id -> its events left out since, for want of room."""
        self._ready: dict[int, Subscription] = {}
        self._unsent: list[bytes | memoryview] = []
        self._wakeup = trio.Event()
        self._drained = trio.Event()
        self.closing = False
        self.fd: int | None = None
        """The socket, for writing at once when nothing is queued; None: always queue."""
        self.client = client
        """Who this connection is, for events: "pid 1234" or "conn 7"."""

    @property
    def idle(self) -> bool:
        """Nothing queued (the writer may still be sending its last batch)."""
        return not self._control and not self._ready

    @property
    def settled(self) -> bool:
        """Nothing queued, and nothing taken that the socket has not yet accepted."""
        return self.idle and not self._unsent

    def control(self, frame: bytes) -> None:
        self._control.append(frame)
        self.control_bytes += len(frame)
        self._wakeup.set()

    def event(self, sub_id: int, frame: Frame) -> None:
        """An event of subscription `sub_id`, off its queue: past MAX_EVENTS queued here,
        counted instead, and told as one `dropped` notice once there is room (an end
        always goes)."""
        if self._events >= MAX_EVENTS and not frame.final:
            self._dropped[sub_id] = self._dropped.get(sub_id, 0) + 1
            return
        self._tell_dropped(sub_id)
        self._events += 1
        self._control.append(_Told(frame.frame, sub_id, redraw=False))
        self.control_bytes += len(frame.frame)
        self._wakeup.set()

    def redraw(self, sub_id: int, frame: bytes) -> None:
        """A redraw for subscription `sub_id`: it takes the place of the one queued for it,
        if that one is not sent yet."""
        queued = self._redraws.get(sub_id)
        if queued is not None:
            self.control_bytes += len(frame) - len(queued.frame)
            queued.frame = frame
            return
        told = self._redraws[sub_id] = _Told(frame, sub_id, redraw=True)
        self._control.append(told)
        self.control_bytes += len(frame)
        self._wakeup.set()

    def _tell_dropped(self, sub_id: int) -> None:
        lost = self._dropped.pop(sub_id, 0)
        if lost:
            self.control(encode_control(event_message("dropped", sub_id, events=lost)))

    def mark_ready(self, sub: Subscription, *, live: bool = False) -> None:
        """`sub` has frames to send; `live` ones (fresh output, not a replay, which must
        follow its subscription's reply) may go out at once when nothing else waits."""
        if live and self.fd is not None and not (self._unsent or self._control or self._ready):
            self._send_now(sub)
            return
        self._ready[sub.id] = sub
        self._wakeup.set()

    def _send_now(self, sub: Subscription) -> None:
        """Write straight to the socket, sparing a task switch on the output path. What the
        socket does not take goes first in the queue, for the writer."""
        assert self.fd is not None
        buffers: list[bytes | memoryview] = []
        done = sub.drain_into(buffers, MAX_BUFFERS)
        try:
            sent = os.writev(self.fd, buffers) if buffers else 0
        except OSError:
            sent = 0  # the writer meets the same error and ends the connection
        rest = b"".join(bytes(b) for b in buffers)[sent:] if sent < sum(map(len, buffers)) else b""
        if rest:
            self._control.appendleft(rest)
            self.control_bytes += len(rest)
        if not done:
            self._ready[sub.id] = sub
        if rest or not done:
            self._wakeup.set()

    def forget(self, sub: Subscription) -> None:
        """`sub` has nothing queued and its output goes elsewhere from now on."""
        self._ready.pop(sub.id, None)

    def close_after_flush(self) -> None:
        self.closing = True
        self._wakeup.set()

    async def wait_control_below(self, limit: int) -> None:
        while self.control_bytes > limit:
            self._drained = trio.Event()
            await self._drained.wait()

    async def run(self, sock: _Socket) -> None:
        """The writer: send everything queued, in order, until closed and empty."""
        while (buffers := await self.take()) is not None:
            self._unsent = buffers
            while buffers:
                _consume(buffers, await sock.sendmsg(buffers))

    async def take(self) -> list[bytes | memoryview] | None:
        """The next buffers to send, in order; None once closing and empty."""
        while True:
            buffers: list[bytes | memoryview] = []
            control = self._control
            while control and len(buffers) < MAX_BUFFERS:
                item = control.popleft()
                frame = item if isinstance(item, bytes) else item.frame
                if isinstance(item, _Told):
                    if item.redraw:
                        del self._redraws[item.sub_id]
                    else:
                        self._events -= 1
                self.control_bytes -= len(frame)
                buffers.append(frame)
            if self._dropped and self._events < MAX_EVENTS // 2:
                for sub_id in list(self._dropped):
                    self._tell_dropped(sub_id)
            # leave room for a header and its data, so each pass takes at least one item
            while self._ready and len(buffers) < MAX_BUFFERS - 1:
                sub_id = next(iter(self._ready))
                sub = self._ready[sub_id]
                del self._ready[sub_id]
                if not sub.drain_into(buffers, MAX_BUFFERS):
                    self._ready[sub_id] = sub  # to the back: the others go first next time
            if not control:
                self._drained.set()
            if buffers:
                return buffers
            if self.closing:
                return None
            self._wakeup = trio.Event()
            await self._wakeup.wait()
