"""What one connection is going to send, and a bound on it.

Control frames (replies, events) queue in order. Output for each subscription
queues in that subscription, as references to the bytes the reader produced;
when a subscriber falls more than its backlog behind, its oldest output is
dropped and it is told which offsets it missed. The PTY reader never waits here.
"""

import itertools
import os
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Protocol

import trio

from supervisor.protocol.frames import encode_control, output_header
from supervisor.protocol.messages import event_message

MAX_BUFFERS = 512
MAX_EVENTS = 10_000
_keys = itertools.count(1)


class Outbox:
    def __init__(self) -> None:
        self._control: deque[bytes] = deque()
        self.control_bytes = 0
        self._ready: dict[int, Subscription] = {}
        self._wakeup = trio.Event()
        self._drained = trio.Event()
        self.closing = False
        self.fd: int | None = None
        """The socket, for writing at once when nothing is queued; None: always queue."""
        self.sending = False
        """The writer holds buffers it has not finished sending."""
        self.client = ""
        """Who this connection is, for events: "pid 1234" or "conn 7"."""

    @property
    def idle(self) -> bool:
        """Nothing queued (the writer may still be sending its last batch)."""
        return not self._control and not self._ready

    def control(self, frame: bytes) -> None:
        self._control.append(frame)
        self.control_bytes += len(frame)
        self._wakeup.set()

    def mark_ready(self, sub: "Subscription", *, live: bool = False) -> None:
        """`sub` has frames to send; `live` ones (fresh output, not a replay, which must
        follow its subscription's reply) may go out at once when nothing else waits."""
        if live and self.fd is not None and not (self.sending or self._control or self._ready):
            self._send_now(sub)
            return
        self._ready[sub.id] = sub
        self._wakeup.set()

    def _send_now(self, sub: "Subscription") -> None:
        """Nothing else is queued or being sent: write straight to the socket, sparing a
        task switch on the output path (a keystroke's echo, for one). What the socket does
        not take goes first in the queue, for the writer."""
        buffers: list[bytes | memoryview] = []
        done = sub.drain_into(buffers, MAX_BUFFERS)
        try:
            sent = os.writev(self.fd, buffers) if buffers else 0  # type: ignore[arg-type]
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

    def forget(self, sub: "Subscription") -> None:
        """`sub` has nothing queued and its output goes elsewhere from now on."""
        self._ready.pop(sub.id, None)

    def close_after_flush(self) -> None:
        self.closing = True
        self._wakeup.set()

    async def wait_control_below(self, limit: int) -> None:
        while self.control_bytes > limit:
            self._drained = trio.Event()
            await self._drained.wait()

    async def take(self) -> list[bytes | memoryview] | None:
        """The next buffers to send, in order; None once closing and empty."""
        while True:
            buffers: list[bytes | memoryview] = []
            control = self._control
            while control and len(buffers) < MAX_BUFFERS:
                frame = control.popleft()
                self.control_bytes -= len(frame)
                buffers.append(frame)
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
                self.sending = True
                return buffers
            if self.closing:
                return None
            self._wakeup = trio.Event()
            await self._wakeup.wait()


class Poured(Enum):
    EMPTY = "empty"
    BLOCKED = "blocked"
    SKIPPED = "skipped"


class Sink(Protocol):
    """Where a subscription's output goes instead of the connection: the client's terminal."""

    rdev: int

    def ready(self) -> None: ...


class Subscription:
    """One client's view of one session's output: follows the ring from an offset."""

    __slots__ = (
        "_dropped_events",
        "_items",
        "_pending",
        "backlog",
        "cols",
        "ended",
        "follow",
        "hold",
        "id",
        "input",
        "key",
        "lossless",
        "on_drained",
        "outbox",
        "patient",
        "rows",
        "sent",
        "session_id",
        "sink",
        "terminal",
        "written",
    )

    def __init__(
        self,
        sub_id: int,
        session_id: str,
        outbox: Outbox,
        backlog: int,
        *,
        follow: bool,
        input: bool,
        lossless: bool = False,
    ) -> None:
        self.id = sub_id
        self.lossless = lossless
        """Never skipped: the session stops reading its terminal while this one lags."""
        self.patient = False
        """Lossless only for a while (an attached terminal): see Session._lose_patience."""
        self.on_drained: Callable[[], None] | None = None
        self.session_id = session_id
        self.outbox = outbox
        self.backlog = backlog
        self.hold = backlog
        """Lossless: how far behind this one may fall before the session waits for it."""
        self.follow = follow
        self.input = input
        # Items: (offset, data) for output, (-1, frame) for a prepared control frame,
        # (-2, (start, stop)) for a skipped range.
        self._items: deque[tuple[int, object]] = deque()
        self._pending = 0
        self._dropped_events = 0
        self.ended = False
        self.key = next(_keys)
        """Unique in the daemon (`id` is unique on its connection only)."""
        self.cols: int | None = None
        self.rows: int | None = None
        self.terminal: Sink | None = None
        """The client's terminal, held by the daemon (see daemon.terminal)."""
        self.sink: Sink | None = None
        """Set (to `terminal`): output goes to the terminal, control frames to the connection."""
        self.written = 0
        """With a sink: the offset at which the output written to the terminal ends."""
        self.sent = 0
        """The offset at which the output put in frames for the connection ends."""

    def _ready(self, *, live: bool = False) -> None:
        if self.sink is not None:
            self.sink.ready()
        else:
            self.outbox.mark_ready(self, live=live)

    def push(self, offset: int, data: bytes, *, live: bool = False) -> None:
        if data:
            self._items.append((offset, data))
            self._pending += len(data)
        if self._pending > self.backlog and not self.lossless:
            self._skip_forward()
        if self._items:
            self._ready(live=live)

    @property
    def congested(self) -> bool:
        return self._pending > self.hold

    def push_event(self, event: str, **fields: object) -> None:
        if event == "end":
            self.ended = True
        if len(self._items) >= MAX_EVENTS and event != "end":
            self._dropped_events += 1
            return
        if self._dropped_events:
            lost = self._dropped_events
            self._dropped_events = 0
            self._items.append((-1, encode_control(event_message("dropped", self.id, events=lost))))
        self._items.append((-1, encode_control(event_message(event, self.id, **fields))))
        self._ready()
        if event == "end" and self.terminal is not None and self.sink is None:
            self.terminal.ready()

    def _skip_forward(self) -> None:
        items = self._items
        kept: deque[tuple[int, object]] = deque()
        lost_from: int | None = None
        lost_to = 0
        target = self.backlog // 2
        while items and self._pending > target:
            kind, value = items.popleft()
            if kind >= 0:
                data = value
                assert isinstance(data, bytes)
                self._pending -= len(data)
                if lost_from is None:
                    lost_from = kind
                lost_to = kind + len(data)
            elif kind == -2:
                start, stop = value  # type: ignore[misc]
                lost_from = start if lost_from is None else min(lost_from, start)
                lost_to = max(lost_to, stop)
            else:
                kept.append((kind, value))
        if lost_from is not None:
            kept.appendleft((-2, (lost_from, lost_to)))
        kept.extend(items)
        self._items = kept

    def drain_into(self, buffers: list[bytes | memoryview], limit: int) -> bool:
        """Move queued frames into `buffers`; True when nothing is left."""
        items = self._items
        was_congested = self._pending > self.hold // 2
        while items and len(buffers) < limit - 1:
            kind, value = items.popleft()
            if kind >= 0:
                data = value
                assert isinstance(data, bytes)
                self._pending -= len(data)
                buffers.append(output_header(self.id, kind, len(data)))
                buffers.append(data)
                self.sent = kind + len(data)
            elif kind == -1:
                assert isinstance(value, bytes)
                buffers.append(value)
            else:
                start, stop = value  # type: ignore[misc]
                buffers.append(
                    encode_control(event_message("skipped", self.id, **{"from": start, "to": stop}))
                )
        if was_congested and self._pending <= self.hold // 2 and self.on_drained:
            self.on_drained()
        return not items

    def pour(self, fd: int) -> Poured:
        """With a sink: write queued output to the terminal `fd` until it would block; send
        control frames on to the connection. Stops at a skipped range, which it takes off
        the queue (the caller redraws the screen)."""
        items = self._items
        was_congested = self._pending > self.hold // 2
        result = Poured.EMPTY
        while items:
            kind, value = items[0]
            if kind >= 0:
                run: list[bytes] = []
                size = 0
                for kind, data in items:
                    if kind < 0 or len(run) == MAX_BUFFERS:
                        break
                    run.append(data)  # type: ignore[arg-type]
                    size += len(data)  # type: ignore[arg-type]
                try:
                    n = os.write(fd, run[0]) if len(run) == 1 else os.writev(fd, run)
                except BlockingIOError:
                    result = Poured.BLOCKED
                    break
                self._pending -= n
                full = n < size
                while n:
                    kind, data = items[0]
                    assert isinstance(data, bytes)
                    if n < len(data):
                        items[0] = (kind + n, data[n:])
                        self.written = kind + n
                        break
                    items.popleft()
                    n -= len(data)
                    self.written = kind + len(data)
                if full:
                    result = Poured.BLOCKED
                    break
            elif kind == -1:
                assert isinstance(value, bytes)
                items.popleft()
                self.outbox.control(value)
            else:
                items.popleft()
                result = Poured.SKIPPED
                break
        if was_congested and self._pending <= self.hold // 2 and self.on_drained:
            self.on_drained()
        return result

    def discard_before(self, offset: int) -> None:
        """Drop queued output before `offset` (a redraw showed it)."""
        items = self._items
        while items and items[0][0] >= 0:
            start, data = items[0]
            assert isinstance(data, bytes)
            if start + len(data) <= offset:
                items.popleft()
                self._pending -= len(data)
            elif start < offset:
                items[0] = (offset, data[offset - start :])
                self._pending -= offset - start
                break
            else:
                break
        self.written = max(self.written, offset)

    @property
    def queued(self) -> bool:
        return bool(self._items)
