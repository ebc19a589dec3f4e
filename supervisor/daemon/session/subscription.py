"""One client's view of one session's output: a bounded queue that follows the ring.

The session pushes output and events in; whoever carries them out (the connection's
socket, or a terminal the daemon holds) takes them off through `drain_into` or `pour`.
Where they go is the subscription's `destination`, which the subscription only tells
when it has something queued.
"""

import itertools
import os
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import NamedTuple, Protocol

from supervisor.protocol.frames import encode_control, output_header
from supervisor.protocol.messages import event_message

MAX_BUFFERS = 512
MAX_EVENTS = 10_000
_keys = itertools.count(1)


class Output(NamedTuple):
    offset: int
    data: bytes


class Frame(NamedTuple):
    """A control frame (an event), already encoded."""

    frame: bytes
    final: bool = False
    """The subscription's end: never dropped on the way."""


class Skipped(NamedTuple):
    """Output from `start` to `stop` was dropped: the subscriber fell too far behind."""

    start: int
    stop: int


Item = Output | Frame | Skipped


class Poured(Enum):
    EMPTY = "empty"
    BLOCKED = "blocked"
    SKIPPED = "skipped"


class Destination(Protocol):
    """Where a subscription's items go; told when there is something to take."""

    hold: int
    """How far behind the subscriber may fall before a lossless one holds the child back."""

    def ready(self, live: bool) -> None: ...

    def refit(self) -> None:
        """The session's or the client's window size changed."""


class Subscription:
    __slots__ = (
        "_dropped_events",
        "_items",
        "_pending",
        "backlog",
        "client",
        "cols",
        "destination",
        "ended",
        "floor",
        "follow",
        "id",
        "input",
        "key",
        "lossless",
        "native",
        "on_drained",
        "on_role",
        "patient",
        "rows",
        "sent",
        "session_id",
        "written",
    )

    def __init__(
        self,
        sub_id: int,
        session_id: str,
        backlog: int,
        *,
        follow: bool,
        input: bool,
        lossless: bool = False,
        patient: bool = False,
        client: str = "",
    ) -> None:
        self.id = sub_id
        self.key = next(_keys)
        """Unique in the daemon (`id` is unique on its connection only)."""
        self.session_id = session_id
        self.client = client
        """Who subscribed, for events: "pid 1234" or "conn 7"."""
        self.backlog = backlog
        self.follow = follow
        self.input = input
        self.lossless = lossless
        """Never skipped: the session stops reading its terminal while this one lags."""
        self.patient = patient
        """Lossless only for a while (an attached terminal): see Flow.lose_patience."""
        self.on_drained: Callable[[], None] | None = None
        self.on_role: Callable[[], None] | None = None
        """Told when this one becomes or stops being its session's controller."""
        self.destination: Destination | None = None
        self._items: deque[Item] = deque()
        self._pending = 0
        self._dropped_events = 0
        self.ended = False
        self.cols: int | None = None
        self.rows: int | None = None
        self.written = 0
        """The offset at which the output written to a terminal by `pour` ends."""
        self.sent = 0
        """The offset at which the output put in frames by `drain_into` ends."""
        self.native = False
        """The byte plane writes this one's output to its terminal: none is queued here."""
        self.floor = 0
        """Output before this offset was written by the byte plane: never queued again."""

    # -- in -----------------------------------------------------------------------

    def _ready(self, live: bool = False) -> None:
        if self.destination is not None:
            self.destination.ready(live)

    def push(self, offset: int, data: bytes, *, live: bool = False) -> None:
        if offset < self.floor and data:
            data = data[self.floor - offset :]
            offset = self.floor
        if data and not self.native:
            self._items.append(Output(offset, data))
            self._pending += len(data)
        if self._pending > self.backlog and not self.lossless:
            self._skip_forward()
        if self._items:
            self._ready(live)

    def push_event(self, event: str, **fields: object) -> None:
        if event == "end":
            self.ended = True
        if len(self._items) >= MAX_EVENTS and event != "end":
            self._dropped_events += 1
            return
        if self._dropped_events:
            lost = self._dropped_events
            self._dropped_events = 0
            self._items.append(
                Frame(encode_control(event_message("dropped", self.id, events=lost)))
            )
        frame = encode_control(event_message(event, self.id, **fields))
        self._items.append(Frame(frame, event == "end"))
        self._ready()

    def _skip_forward(self) -> None:
        items = self._items
        kept: deque[Item] = deque()
        lost_from: int | None = None
        lost_to = 0
        target = self.backlog // 2
        while items and self._pending > target:
            item = items.popleft()
            if isinstance(item, Output):
                self._pending -= len(item.data)
                if lost_from is None:
                    lost_from = item.offset
                lost_to = item.offset + len(item.data)
            elif isinstance(item, Skipped):
                lost_from = item.start if lost_from is None else min(lost_from, item.start)
                lost_to = max(lost_to, item.stop)
            else:
                kept.append(item)
        if lost_from is not None:
            kept.appendleft(Skipped(lost_from, lost_to))
        kept.extend(items)
        self._items = kept

    # -- flow ---------------------------------------------------------------------

    @property
    def hold(self) -> int:
        return self.destination.hold if self.destination is not None else self.backlog

    @property
    def congested(self) -> bool:
        return self._pending > self.hold

    def stop_holding(self) -> None:
        """No longer lossless: from now on this subscriber is skipped forward when it lags."""
        self.lossless = False
        self.on_drained = None

    def _check_drained(self, was_congested: bool) -> None:
        if was_congested and self._pending <= self.hold // 2 and self.on_drained:
            self.on_drained()

    # -- out ----------------------------------------------------------------------

    def hold_raised(self) -> None:
        """The destination lets this one fall further behind now: if that leaves it no
        longer congested, whoever waits for it to drain need wait no more."""
        if self.on_drained is not None and not self.congested:
            self.on_drained()

    def relayed(self) -> None:
        """From here on the output goes by frames: they start where the terminal's ended."""
        self.sent = max(self.sent, self.written)

    def direct(self) -> None:
        """From here on the output goes to the terminal: it starts where the frames ended."""
        self.written = self.sent

    def start_at(self, offset: int) -> None:
        """Output before `offset` is not this subscriber's (an attach that redraws first)."""
        self.written = self.sent = offset

    def take_back(self, written: int, rest: tuple[int, bytes]) -> None:
        """The byte plane stopped at `written`: `rest` (the output handed on since, from
        where) goes first in the queue."""
        self.native = False
        self.floor = max(self.floor, written)
        self.written = self.sent = max(self.written, written)
        offset, data = rest
        data = data[max(0, written - offset) :]
        if data:
            self._items.appendleft(Output(max(offset, written), data))
            self._pending += len(data)
        if offset > written:  # the ring no longer holds where it stopped
            self._items.appendleft(Skipped(written, offset))

    def drain_into(self, buffers: list[bytes | memoryview], limit: int) -> bool:
        """Move queued items into `buffers` as frames for the socket; True when nothing is
        left."""
        items = self._items
        was_congested = self._pending > self.hold // 2
        while items and len(buffers) < limit - 1:
            item = items.popleft()
            if isinstance(item, Output):
                self._pending -= len(item.data)
                buffers.append(output_header(self.id, item.offset, len(item.data)))
                buffers.append(item.data)
                self.sent = item.offset + len(item.data)
            elif isinstance(item, Frame):
                buffers.append(item.frame)
            else:
                buffers.append(
                    encode_control(
                        event_message("skipped", self.id, **{"from": item.start, "to": item.stop})
                    )
                )
        self._check_drained(was_congested)
        return not items

    def pour(self, fd: int, control: Callable[[Frame], None]) -> Poured:
        """Write queued output to the terminal `fd` until it would block; hand control
        frames to `control`. Stops at a skipped range, which it takes off the queue (the
        caller redraws the screen)."""
        items = self._items
        was_congested = self._pending > self.hold // 2
        result = Poured.EMPTY
        while items:
            item = items[0]
            if isinstance(item, Output):
                run: list[bytes] = []
                size = 0
                for queued in items:
                    if not isinstance(queued, Output) or len(run) == MAX_BUFFERS:
                        break
                    run.append(queued.data)
                    size += len(queued.data)
                try:
                    n = os.write(fd, run[0]) if len(run) == 1 else os.writev(fd, run)
                except BlockingIOError:
                    result = Poured.BLOCKED
                    break
                self._pending -= n
                full = n < size
                while n:
                    offset, data = items[0]  # type: ignore[misc]
                    if n < len(data):
                        items[0] = Output(offset + n, data[n:])
                        self.written = offset + n
                        break
                    items.popleft()
                    n -= len(data)
                    self.written = offset + len(data)
                if full:
                    result = Poured.BLOCKED
                    break
            elif isinstance(item, Frame):
                items.popleft()
                control(item)
            else:
                items.popleft()
                result = Poured.SKIPPED
                break
        self._check_drained(was_congested)
        return result

    def drop_output(self, control: Callable[[Frame], None] | None = None) -> None:
        """Drop every output item queued (a redraw shows it instead). Control frames go on
        to `control`, in order; without it they stay queued, for after the redraw."""
        kept: deque[Item] = deque()
        for item in self._items:
            if isinstance(item, Output):
                self._pending -= len(item.data)
                self.written = item.offset + len(item.data)
            elif isinstance(item, Frame):
                if control is None:
                    kept.append(item)
                else:
                    control(item)
        self._items = kept

    def refit(self) -> None:
        if self.destination is not None:
            self.destination.refit()

    def discard_before(self, offset: int) -> None:
        """Drop queued output before `offset` (a redraw showed it)."""
        items = self._items
        while items and isinstance(items[0], Output):
            start, data = items[0]
            if start + len(data) <= offset:
                items.popleft()
                self._pending -= len(data)
            elif start < offset:
                items[0] = Output(offset, data[offset - start :])
                self._pending -= offset - start
                break
            else:
                break
        self.written = max(self.written, offset)

    @property
    def queued(self) -> bool:
        return bool(self._items)
