"""What an upgrade in place hands the new image besides the ring (issue 24, defect 6): the
input queued for a child goes in the state and is written first, in order."""

import os

import trio
import trio.testing

from supervisor.daemon.lifecycle import state
from supervisor.daemon.session.snapshot import SessionState
from supervisor.daemon.session.writer import Writer
from supervisor.daemon.system.fd import OwnedFd


def session_state(sid: str, scrollback: bytes, queued: bytes) -> SessionState:
    return SessionState(
        id=sid, name=None, argv=["sh"], cwd="/", pid=1, tty="/dev/pts/0", master=None,
        cols=80, rows=24, created_at=0.0, exited_at=None, exit_code=None, signal=None,
        state="running", title=None, context=None, ring_end=len(scrollback),
        scrollback=scrollback, input=queued,
    )  # fmt: skip


def test_the_state_carries_each_sessions_queued_input() -> None:
    saved = state.DaemonState(
        socket="/s", next_id=3, listen_fd=None, lock_fd=None, daemon_version="0",
        sessions=[session_state("1", b"out-1", b"keys-1"), session_state("2", b"out-2", b"")],
    )  # fmt: skip
    back = state.loads(state.dumps(saved))
    assert [(s.scrollback, s.input) for s in back.sessions] == [
        (b"out-1", b"keys-1"),
        (b"out-2", b""),
    ]


def test_a_state_without_queued_input_has_the_old_layout() -> None:
    saved = state.DaemonState(
        socket="/s", next_id=3, listen_fd=None, lock_fd=None, daemon_version="0",
        sessions=[session_state("1", b"out-1", b"")],
    )  # fmt: skip
    assert b"input_len" not in state.dumps(saved)


async def test_primed_input_goes_before_any_other_and_queued_lists_all_in_order() -> None:
    r, w = os.pipe()
    os.set_blocking(w, False)
    master = OwnedFd(w)
    writer = Writer("1", master)
    try:
        writer.prime(b"first ")
        assert writer.try_write(b"x") == 0  # nothing overtakes what was handed over
        assert writer.busy
        room = 0
        while True:  # fill the pipe, so that writes wait
            try:
                room += os.write(w, b"." * 65536)
            except BlockingIOError:
                break
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.write, b"second ")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(writer.write, b"third")
            await trio.testing.wait_all_tasks_blocked()
            assert writer.queued() == b"first second third"
            got = b""
            while len(got) < room + len(b"first second third"):
                await trio.lowlevel.wait_readable(r)
                got += os.read(r, 1 << 20)
        assert got[room:] == b"first second third"
        assert writer.queued() == b"" and not writer.busy
    finally:
        os.close(r)
        master.close()


def test_a_new_image_holds_the_child_until_the_followers_come_back() -> None:
    from supervisor.daemon.session.flow import Flow
    from supervisor.daemon.session.subscription import Subscription

    flow = Flow()
    flow.await_resumes(1)
    assert flow.active and flow.congested()  # no subscriber yet, and still held
    flow.add(Subscription(1, "1", 65536, follow=True, input=False, lossless=True))
    assert not flow.congested()
