"""The end of a session's output: the drain deadline is for a grandchild that holds the
terminal; its clock stops while a lossless reader, the screen engine or a terminal the
byte plane writes holds the reader back (issue 24, defect 2)."""

import trio
import trio.testing

from supervisor.daemon.session.flow import Flow
from supervisor.daemon.session.reader import Reader

DEADLINE = 0.25


async def _room(size: int) -> int:
    return size


def reader() -> Reader:
    return Reader(
        None,  # type: ignore[arg-type]  # drain never touches the master
        Flow(),
        lambda data: None,
        lambda: 0,
        _room,
        lambda: 1 << 20,
    )


async def test_a_terminal_no_one_holds_back_has_the_deadline_to_end(autojump_clock):
    r = reader()
    began = trio.current_time()
    assert not await r.drain(DEADLINE)
    assert trio.current_time() - began == DEADLINE


async def test_the_end_that_comes_in_time_ends_the_wait_at_once(autojump_clock):
    r = reader()
    async with trio.open_nursery() as nursery:

        async def end_soon() -> None:
            await trio.sleep(0.1)
            r._drained()

        nursery.start_soon(end_soon)
        assert await r.drain(DEADLINE)
        assert trio.current_time() == 0.1


async def test_a_reader_held_back_for_long_still_gets_to_the_end(autojump_clock):
    r = reader()
    lagging = object()
    r.held_by(lagging, True)
    async with trio.open_nursery() as nursery:

        async def catch_up() -> None:
            await trio.sleep(30)  # a lossless reader that lags: far past the deadline
            r.held_by(lagging, False)
            await trio.sleep(0.01)  # then the reader reads the rest, up to EIO
            r._drained()

        nursery.start_soon(catch_up)
        assert await r.drain(DEADLINE)
        assert trio.current_time() == 30.01


async def test_the_deadline_counts_only_the_time_nothing_held_the_reader_back(autojump_clock):
    r = reader()
    async with trio.open_nursery() as nursery:

        async def hold_between() -> None:
            await trio.sleep(0.2)
            r.held_by("flow", True)
            await trio.sleep(5)
            r.held_by("flow", False)

        nursery.start_soon(hold_between)
        assert not await r.drain(DEADLINE)  # a grandchild holds the terminal: it never ends
        assert abs(trio.current_time() - 5.25) < 1e-9


async def test_every_holder_must_let_go_before_the_clock_runs_again(autojump_clock):
    r = reader()
    r.held_by("flow", True)
    r.held_by("screen", True)
    async with trio.open_nursery() as nursery:

        async def let_go() -> None:
            await trio.sleep(1)
            r.held_by("flow", False)
            await trio.sleep(1)
            r.held_by("screen", False)

        nursery.start_soon(let_go)
        assert not await r.drain(DEADLINE)
        assert abs(trio.current_time() - 2.25) < 1e-9
