"""A connection's outgoing frames: order, bounds, and what a slow subscriber is told."""

import fcntl
import os
from typing import Any

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.daemon.clients.outbox import Outbox
from supervisor.daemon.clients.route import Route
from supervisor.daemon.session.subscription import MAX_BUFFERS, MAX_EVENTS, Frame, Subscription
from supervisor.protocol.client import ClientConnection
from supervisor.protocol.frames import encode_control
from supervisor.protocol.messages import Event, Output, Result, result_message


def subscription(outbox: Outbox, sub_id: int = 1, backlog: int = 1 << 20) -> Subscription:
    sub = Subscription(sub_id, "s", backlog, follow=True, input=False)
    Route(sub, outbox)
    return sub


async def take_bytes(outbox: Outbox) -> bytes:
    buffers = await outbox.take()
    assert buffers is not None
    assert len(buffers) <= MAX_BUFFERS
    return b"".join(bytes(b) for b in buffers)


async def drain(outbox: Outbox) -> list[Any]:
    outbox.close_after_flush()
    client = ClientConnection()
    events = []
    while (buffers := await outbox.take()) is not None:
        events += client.receive_data(b"".join(bytes(b) for b in buffers))
    return events


def of_sub(events: list[Any], sub: int) -> list[Any]:
    return [e for e in events if isinstance(e, Output | Event) and e.sub == sub]


class Stream:
    """What a client knows about one subscription: bytes by offset, and the gaps it was told of."""

    def __init__(self, start: int = 0) -> None:
        self.next = start
        self.data = bytearray()
        self.skipped: list[tuple[int, int]] = []
        self.ended = False

    def see(self, event: Any) -> None:
        assert not self.ended, f"{event} after the end"
        if isinstance(event, Output):
            assert event.offset == self.next, (event.offset, self.next)
            self.data += event.data
            self.next += len(event.data)
        elif event.event == "skipped":
            start, stop = event.fields["from"], event.fields["to"]
            assert start == self.next, (start, self.next)
            assert stop > start
            self.skipped.append((start, stop))
            self.next = stop
        else:
            assert event.event == "end"
            self.ended = True


async def test_empty_take_waits_and_close_ends():
    outbox = Outbox()
    with trio.move_on_after(0.01) as scope:
        await outbox.take()
    assert scope.cancelled_caught
    outbox.close_after_flush()
    assert await outbox.take() is None


async def test_control_goes_before_output_within_a_take():
    outbox = Outbox()
    sub = subscription(outbox)
    sub.push(0, b"out")
    outbox.control(encode_control(result_message(1, {"sub": 1})))
    events = await drain(outbox)
    assert events == [Result(1, {"sub": 1}), Output(1, 0, b"out")]


async def test_control_bytes_are_counted():
    outbox = Outbox()
    frame = encode_control({"x": 1})
    outbox.control(frame)
    outbox.control(frame)
    assert outbox.control_bytes == 2 * len(frame)
    await take_bytes(outbox)
    assert outbox.control_bytes == 0
    with trio.fail_after(1):
        await outbox.wait_control_below(0)


async def test_wait_control_below_waits_for_a_take():
    outbox = Outbox()
    outbox.control(b"x" * 100)
    async with trio.open_nursery() as nursery:
        done = trio.Event()

        async def waiter() -> None:
            await outbox.wait_control_below(10)
            done.set()

        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        await take_bytes(outbox)
        with trio.fail_after(1):
            await done.wait()


async def test_a_take_is_bounded_and_the_rest_follows_in_order():
    outbox = Outbox()
    sub = subscription(outbox)
    for i in range(1000):
        sub.push(i, b"x")
    takes = []
    outbox.close_after_flush()
    while (buffers := await outbox.take()) is not None:
        assert len(buffers) <= MAX_BUFFERS
        takes.append(b"".join(bytes(b) for b in buffers))
    assert len(takes) > 1
    events = ClientConnection().receive_data(b"".join(takes))
    assert [e.offset for e in events] == list(range(1000))


async def test_each_subscription_keeps_offset_order():
    outbox = Outbox()
    subs = [subscription(outbox, i) for i in (1, 2, 3)]
    for n in range(50):
        for sub in subs:
            sub.push(n * sub.id, b"y" * sub.id)
    events = await drain(outbox)
    for sub in subs:
        assert [e.offset for e in of_sub(events, sub.id)] == [n * sub.id for n in range(50)]


async def test_a_subscriber_that_never_drains_is_skipped_forward_once():
    outbox = Outbox()
    backlog = 64 * 1024
    sub = subscription(outbox, backlog=backlog)
    pushed = b""
    for i in range(200):
        chunk = bytes([i]) * 1000
        sub.push(len(pushed), chunk)
        pushed += chunk
        assert sub._pending <= backlog
    sub.push_event("end", reason="exited", offset=len(pushed), exit_code=0, signal=None)
    events = of_sub(await drain(outbox), 1)
    skipped = [e for e in events if isinstance(e, Event) and e.event == "skipped"]
    assert len(skipped) == 1
    assert skipped[0].fields["from"] == 0
    assert events[0] == skipped[0]
    assert events[-1] == Event(
        "end", 1, {"reason": "exited", "offset": len(pushed), "exit_code": 0, "signal": None}
    )
    stream = Stream()
    for event in events:
        stream.see(event)
    assert stream.next == len(pushed)
    assert bytes(stream.data) == pushed[skipped[0].fields["to"] :]
    assert len(stream.data) <= backlog


async def test_the_end_event_survives_skipping():
    outbox = Outbox()
    sub = subscription(outbox, backlog=100)
    sub.push(0, b"a" * 60)
    sub.push_event("end", reason="complete", offset=60)
    sub.push(60, b"b" * 60)
    events = of_sub(await drain(outbox), 1)
    assert [e.event for e in events if isinstance(e, Event)] == ["skipped", "end"]


async def test_one_push_larger_than_the_backlog_is_skipped_whole():
    outbox = Outbox()
    sub = subscription(outbox, backlog=100)
    sub.push(0, b"z" * 500)
    assert sub._pending == 0
    assert of_sub(await drain(outbox), 1) == [Event("skipped", 1, {"from": 0, "to": 500})]


async def test_a_slow_subscriber_does_not_hold_back_another():
    outbox = Outbox()
    slow = subscription(outbox, 1, backlog=1000)
    fast = subscription(outbox, 2, backlog=1 << 20)
    for i in range(20):
        slow.push(i * 200, b"s" * 200)
        fast.push(i * 200, b"f" * 200)
    events = await drain(outbox)
    assert b"".join(e.data for e in of_sub(events, 2)) == b"f" * 4000
    assert any(isinstance(e, Event) and e.event == "skipped" for e in of_sub(events, 1))


ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 3000)),
        st.tuples(st.just("take"), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(ops, st.sampled_from([1, 100, 1000, 4096]), st.integers(0, 2**40))
def test_a_client_never_misses_or_repeats_a_byte_without_being_told(script, backlog, base):
    async def main() -> None:
        outbox = Outbox()
        sub = subscription(outbox, 7, backlog=backlog)
        client = ClientConnection()
        stream = Stream(base)
        pushed = bytearray()

        def receive(data: bytes) -> None:
            for event in client.receive_data(data):
                stream.see(event)

        for op, size in script:
            if op == "push":
                chunk = bytes((base + len(pushed) + i) % 256 for i in range(size))
                sub.push(base + len(pushed), chunk)
                pushed += chunk
                assert sub._pending <= backlog
            elif outbox._ready:
                receive(await take_bytes(outbox))
        sub.push_event("end", reason="complete", offset=base + len(pushed))
        outbox.close_after_flush()
        while (buffers := await outbox.take()) is not None:
            receive(b"".join(bytes(b) for b in buffers))
        assert stream.ended
        assert stream.next == base + len(pushed)
        expected = bytearray(pushed)
        for start, stop in reversed(stream.skipped):
            del expected[start - base : stop - base]
        assert stream.data == expected

    trio.run(main)


async def test_busy_subscriptions_take_turns():
    outbox = Outbox()
    busy = subscription(outbox, 1)
    quiet = subscription(outbox, 2)
    offset = 0
    for _ in range(MAX_BUFFERS):
        busy.push(offset, b"b")
        offset += 1
    quiet.push(0, b"q")
    client = ClientConnection()
    seen = []
    for _ in range(3):
        seen += client.receive_data(await take_bytes(outbox))
        for _ in range(MAX_BUFFERS):
            busy.push(offset, b"b")
            offset += 1
    assert Output(2, 0, b"q") in seen


async def test_take_always_makes_progress_when_a_batch_is_nearly_full():
    outbox = Outbox()
    sub = subscription(outbox, 1, backlog=1 << 30)
    outbox.control(encode_control({"type": "result", "id": 1, "result": {}}))
    for i in range(400):
        sub.push(i, b"x")
    batches = []
    with trio.fail_after(5):
        while len(batches) < 3:
            batch = await outbox.take()
            assert batch is not None
            batches.append(batch)
            if outbox.idle:
                break
    assert sum(len(b) for b in batches) == 1 + 2 * 400


class PipeSink:
    """A terminal stand-in: a pipe with a small buffer, read by the test."""

    def __init__(self, sub: Subscription, outbox: Outbox, size: int = 4096) -> None:
        self.read_end, self.fd = os.pipe()
        fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, size)
        os.set_blocking(self.fd, False)
        self.sub = sub
        self.outbox = outbox
        self.hold = sub.backlog
        self.results: list[str] = []

    def ready(self, live: bool = False) -> None:
        self.results.append(self.sub.pour(self.fd, self.tell).value)

    def tell(self, frame: Frame) -> None:
        self.outbox.event(self.sub.id, frame)

    def drain(self) -> bytes:
        os.set_blocking(self.read_end, False)
        out = b""
        while True:
            try:
                out += os.read(self.read_end, 65536)
            except BlockingIOError:
                return out

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.fd)


async def test_pour_writes_what_the_terminal_takes_and_passes_control_frames_on():
    outbox = Outbox()
    sub = subscription(outbox)
    sink = PipeSink(sub, outbox)
    sub.destination = sink
    try:
        sub.push(0, b"a" * 1000)
        sub.push_event("role", role="controller", session="1")
        sub.push(1000, b"b" * 10_000)  # more than the pipe holds: a partial write
        assert sink.results == ["empty", "empty", "blocked"]
        taken = sink.drain()
        assert taken == b"a" * 1000 + b"b" * (len(taken) - 1000)
        assert sub.written == len(taken)
        assert sub.queued
        events = ClientConnection().receive_data(await take_bytes(outbox))
        assert [e.event for e in events if isinstance(e, Event)] == ["role"]
        sink.ready()
        sink.drain()
        while sink.results[-1] == "blocked":
            sink.ready()
            sink.drain()
        assert sub.written == 11_000 and not sub.queued
    finally:
        sink.close()


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=40),
    relay_at=st.sets(st.integers(min_value=0, max_value=39)),
)
@settings(max_examples=60, deadline=None)
def test_direct_and_relayed_output_together_is_every_byte_once_in_order(sizes, relay_at):
    """Output written to the terminal directly until it blocks, the rest sent as frames
    (as a held terminal does): put together by offset, nothing is missing or repeated."""

    async def main() -> None:
        outbox = Outbox()
        sub = subscription(outbox)
        sink = PipeSink(sub, outbox)
        sub.destination = sink
        terminal = bytearray()
        offset = 0
        sent: list[Output] = []
        try:
            for i, size in enumerate(sizes):
                data = bytes([65 + i % 26]) * size
                sub.push(offset, data)
                offset += size
                terminal += sink.drain()
                if i in relay_at and sub.destination is sink:
                    Route(sub, outbox)  # as Route._relay: what is left goes as frames
                    if sub.queued:
                        outbox.mark_ready(sub)
            outbox.close_after_flush()
            client = ClientConnection()
            while (buffers := await outbox.take()) is not None:
                received = client.receive_data(b"".join(bytes(b) for b in buffers))
                sent += [e for e in received if isinstance(e, Output)]
        finally:
            sink.close()
        expected = b"".join(bytes([65 + i % 26]) * s for i, s in enumerate(sizes))
        assert bytes(terminal) == expected[: len(terminal)]
        position = len(terminal)
        for frame in sent:
            assert frame.offset == position
            position += len(frame.data)
        assert position == len(expected) or (sub.destination is sink and sub.queued)

    trio.run(main)


async def drain_open(outbox: Outbox) -> list[Any]:
    client = ClientConnection()
    events = []
    while not outbox.idle:
        events += client.receive_data(await take_bytes(outbox))
    return events


def redraw_frame(sub_id: int, n: int) -> bytes:
    return encode_control({"type": "event", "event": "redraw", "sub": sub_id, "ansi": str(n)})


async def test_a_redraw_takes_the_place_of_the_one_not_yet_sent():
    outbox = Outbox()
    outbox.control(encode_control(result_message(1, {})))
    for n in range(1000):  # a client that reads nothing: one redraw queued, the latest
        outbox.redraw(7, redraw_frame(7, n))
        outbox.redraw(8, redraw_frame(8, n))
    outbox.control(encode_control(result_message(2, {})))
    assert outbox.control_bytes == sum(
        len(f)
        for f in (
            encode_control(result_message(1, {})),
            redraw_frame(7, 999),
            redraw_frame(8, 999),
            encode_control(result_message(2, {})),
        )
    )
    events = await drain_open(outbox)
    assert [(type(e).__name__, getattr(e, "sub", None)) for e in events] == [
        ("Result", None),
        ("Event", 7),
        ("Event", 8),
        ("Result", None),
    ]
    assert [e.fields["ansi"] for e in events if isinstance(e, Event)] == ["999", "999"]
    outbox.redraw(7, redraw_frame(7, 1000))  # the last one went: this one is queued anew
    assert [e.fields["ansi"] for e in await drain(outbox)] == ["1000"]
    assert outbox.control_bytes == 0


async def test_events_past_the_bound_are_told_as_one_dropped_notice_and_the_end_goes():
    outbox = Outbox()
    for _ in range(MAX_EVENTS + 500):
        outbox.event(3, Frame(encode_control({"type": "event", "event": "role", "sub": 3})))
    outbox.event(3, Frame(encode_control({"type": "event", "event": "end", "sub": 3}), True))
    assert outbox.control_bytes < 2 * MAX_EVENTS * 64
    events = await drain(outbox)
    names = [e.event for e in events]
    assert names.count("role") == MAX_EVENTS
    assert names[-2:] == ["dropped", "end"]
    assert events[-2].fields["events"] == 500


async def test_a_dropped_notice_goes_out_once_there_is_room_even_with_no_event_after():
    outbox = Outbox()
    role = Frame(encode_control({"type": "event", "event": "role", "sub": 4}))
    for _ in range(MAX_EVENTS + 3):
        outbox.event(4, role)
    events = await drain(outbox)
    assert [e.event for e in events][-1] == "dropped"
    assert events[-1].fields["events"] == 3
    assert len(events) == MAX_EVENTS + 1
