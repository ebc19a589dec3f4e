"""A subscription's route to a terminal the daemon holds: its states and the order of the
bytes, with a real PTY as the client's terminal (the test reads its other end, as the
user's terminal emulator would)."""

import os
import time
import tty

import trio
import trio.testing

from supervisor.daemon.clients.outbox import Outbox
from supervisor.daemon.clients.route import SETTLE, Route, RouteState
from supervisor.daemon.session.subscription import Subscription
from supervisor.daemon.system.fd import OwnedFd
from supervisor.protocol.client import ClientConnection
from supervisor.protocol.messages import Output


class Screen:
    """The user's side of the terminal: reads what reaches it."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(slave, False)
        self.terminal = OwnedFd(slave)
        os.set_blocking(self.master, False)

    def read(self) -> bytes:
        out = b""
        while True:
            try:
                out += os.read(self.master, 65536)
            except (BlockingIOError, OSError):
                return out

    def close(self) -> None:
        self.terminal.close()
        os.close(self.master)


async def frames(outbox: Outbox) -> list[Output]:
    outbox.close_after_flush()
    client = ClientConnection()
    found = []
    while (buffers := await outbox.take()) is not None:
        found += [
            e
            for e in client.receive_data(b"".join(bytes(b) for b in buffers))
            if isinstance(e, Output)
        ]
    return found


async def test_a_terminal_route_starts_held_writes_direct_and_relays_a_flood():
    screen = Screen()
    outbox = Outbox()
    ended: list[str] = []
    sub = Subscription(1, "1", 1 << 24, follow=True, input=True)
    route = Route(sub, outbox, terminal=screen.terminal, start=100, on_end=ended.append)
    try:
        assert route.state is RouteState.HELD and sub.written == sub.sent == 100
        sub.push(100, b"early")  # before the first redraw is out: it waits
        assert screen.read() == b""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(route.run, b"[redraw]")
            await trio.testing.wait_all_tasks_blocked()
            assert route.state is RouteState.TERMINAL
            assert screen.read() == b"[redraw]early"
            sub.push(105, b"typed")
            assert screen.read() == b"typed" and sub.written == 110
            flood = b"f" * (1 << 20)
            sub.push(110, flood)  # far more than the terminal holds unread
            assert route.state is RouteState.RELAYED
            assert route.hold == sub.backlog
            direct = screen.read()
            nursery.cancel_scope.cancel()
        relayed = await frames(outbox)
        assert relayed and relayed[0].offset == 110 + len(direct)
        assert direct + b"".join(f.data for f in relayed) == flood
        assert not ended
    finally:
        screen.close()


async def test_back_to_the_terminal_only_when_the_client_wrote_all_and_the_flood_settled():
    screen = Screen()
    outbox = Outbox()
    sub = Subscription(1, "1", 1 << 24, follow=True, input=True)
    route = Route(sub, outbox, terminal=screen.terminal)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(route.run, None)
            await trio.testing.wait_all_tasks_blocked()
            sub.push(0, b"g" * (1 << 20))
            assert route.state is RouteState.RELAYED
            while outbox.idle is False:
                await outbox.take()
            route.written(sub.sent - 1)  # not all of them yet
            assert route.state is RouteState.RELAYED
            route.written(sub.sent)  # all, but the flood is too recent
            if time.monotonic() - route._relayed_at < SETTLE:
                assert route.state is RouteState.RELAYED
            await trio.sleep(SETTLE)
            route.written(sub.sent)
            assert route.state is RouteState.TERMINAL and sub.written == sub.sent
            screen.read()
            sub.push(1 << 20, b"after")
            assert screen.read() == b"after"
            nursery.cancel_scope.cancel()
    finally:
        screen.close()


async def test_letting_the_terminal_go_sends_the_rest_as_frames_then_closes():
    screen = Screen()
    outbox = Outbox()
    ended: list[str] = []
    sub = Subscription(1, "1", 1 << 24, follow=True, input=True)
    route = Route(sub, outbox, terminal=screen.terminal, on_end=ended.append)
    sub.push(0, b"queued while held")
    route.terminal_gone()
    assert route.state is RouteState.RELAYED and route.terminal is None and route.rdev is None
    sub.push_event("end", reason="exited", offset=17, exit_code=0, signal=None)
    assert not ended  # the terminal is gone already: the end goes to the client as a frame
    route.close()
    assert route.state is RouteState.CLOSED
    assert [f.data for f in await frames(outbox)] == [b"queued while held"]
    screen.close()


async def test_the_end_of_the_session_ends_the_link_once_the_output_is_out():
    screen = Screen()
    outbox = Outbox()
    ended: list[str] = []
    sub = Subscription(1, "1", 1 << 24, follow=True, input=True)
    route = Route(sub, outbox, terminal=screen.terminal, on_end=ended.append)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(route.run, None)
            await trio.testing.wait_all_tasks_blocked()
            sub.push(0, b"bye")
            sub.push_event("end", reason="exited", offset=3, exit_code=0, signal=None)
            assert ended == ["ended"] and screen.read() == b"bye"
            nursery.cancel_scope.cancel()
    finally:
        screen.close()


def test_a_plain_subscription_is_relayed_for_good():
    outbox = Outbox()
    sub = Subscription(1, "1", 1000, follow=True, input=False)
    route = Route(sub, outbox)
    assert route.state is RouteState.RELAYED and route.hold == 1000 and route.rdev is None
    route.written(10**9)
    assert route.state is RouteState.RELAYED


async def test_a_flood_handed_to_the_client_lets_the_child_go_at_once():
    """A lossless attach whose terminal fills up relays the rest through its client; the
    child, held back while the terminal lagged, must not wait for the patience to run out."""
    from supervisor.daemon.session.flow import PATIENCE, Flow

    screen = Screen()
    outbox = Outbox()
    sub = Subscription(1, "1", 1 << 24, follow=True, input=True, lossless=True, patient=True)
    route = Route(sub, outbox, terminal=screen.terminal)
    flow = Flow()
    flow.add(sub)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(route.run, None)
            await trio.testing.wait_all_tasks_blocked()
            route.state = RouteState.HELD  # as while a redraw is written: output waits
            sub.push(0, b"h" * (200 * 1024))
            assert flow.congested()
            start = trio.current_time()
            with trio.fail_after(PATIENCE / 2):
                async with trio.open_nursery() as waiting:
                    waiting.start_soon(flow.wait, lambda: 200 * 1024)
                    await trio.testing.wait_all_tasks_blocked()
                    route._wakeup.set()  # the route's task pours: the terminal fills up
            assert trio.current_time() - start < PATIENCE / 2
            assert route.state is RouteState.RELAYED and sub.lossless
            nursery.cancel_scope.cancel()
    finally:
        screen.close()
