"""The byte plane's lanes, through the daemon's wrapper on real PTYs: a session has a thread
of its own while the plane holds a terminal of it, and goes back to the shared one when it
has none; its handles stay the same, and no byte is lost or read twice across the moves."""

import contextlib
import errno
import os
import select
import time

import pytest

from supervisor.daemon.session.plane import BytePlane
from tests.native.test_contracts import pollers, replaces_the_poller
from tests.native.test_plane import SEQ, SEQ_BYTES, pipe, reap, spawn


def plane_threads(expected: int, timeout: float = 5.0) -> int:
    """The threads named for the plane, once they are `expected` (a new one names itself
    as it starts) or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        count = 0
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/comm") as f:
                count += f.read().strip() == "ptysup-plane"
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.001)


@pytest.fixture
def byteplane(plane_module):
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("counts threads through /proc, which this system does not have")
    plane = BytePlane(plane_module)
    yield plane
    plane.close()


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, int, bytes | None]] = []

    def __call__(self, kind: int, value: int, data: bytes | None) -> None:
        self.events.append((kind, value, data))

    def kinds(self) -> set[int]:
        return {kind for kind, _, _ in self.events}


def pump(plane: BytePlane, seconds: float) -> None:
    """Hand on the lanes' events for a while, as the daemon's task does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        select.select([plane._notify_r], [], [], 0.01)
        plane.dispatch()


def drain(fd: int) -> bytes:
    got = bytearray()
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 1 << 20):
            got += chunk
    return bytes(got)


def test_moves_between_lanes_lose_and_repeat_nothing(byteplane, plane_module):
    pid, master = spawn(f"stty -onlcr; {SEQ} | sed 's/$/\\r/'")
    ring = plane_module.Ring(8 << 20)
    session_events = Recorder()
    try:
        session = byteplane.add_session(master, ring, -1, session_events)
        assert byteplane.stats()["lanes"] == 1
        moves = 0
        while plane_module.EOF not in session_events.kinds() and moves < 2000:
            r, w = pipe()
            start = ring.end
            output = byteplane.add_output(session, w, start, -1, Recorder())
            assert byteplane.stats()["lanes"] == 2
            assert plane_threads(2) == 2
            pump(byteplane, 0.002)
            written = byteplane.remove_output(output)
            got = drain(r)
            os.close(r)
            os.close(w)
            assert got == ring.read(start, written - start)[1]
            pump(byteplane, 0.002)
            assert byteplane.stats()["lanes"] == 1
            moves += 1
        pump(byteplane, 1.0)
        assert moves > 3, "the child ended before the session had moved"
        assert plane_module.EOF in session_events.kinds()
        assert ring.read(0) == (0, SEQ_BYTES)
        assert plane_threads(1) == 1
        assert byteplane.stats()["sessions"] == 1
    finally:
        reap(pid, master)


def test_keys_keep_a_lane_until_the_detach_key_lets_go_of_them(byteplane, plane_module):
    pid, master = spawn("stty raw -echo; cat")
    ring = plane_module.Ring(1 << 20)
    keys_r, keys_w = pipe()
    out_r, out_w = pipe()
    keys = Recorder()
    try:
        session = byteplane.add_session(master, ring, -1, Recorder())
        output = byteplane.add_output(session, out_w, 0, 64 * 1024, Recorder())
        byteplane.add_input(session, keys_r, 0x1C, True, keys)
        assert byteplane.stats() | {"reads": 0, "wakeups": 0} == {
            "sessions": 1,
            "outputs": 1,
            "inputs": 1,
            "reads": 0,
            "wakeups": 0,
            "lanes": 2,
            "running": True,
            "stopped": [],
        }
        os.write(keys_w, b"hello")
        deadline = time.monotonic() + 10
        got = b""
        while b"hello" not in got and time.monotonic() < deadline:
            select.select([out_r], [], [], 0.05)
            got += drain(out_r)
        assert b"hello" in got
        byteplane.remove_output(output)
        pump(byteplane, 0.05)
        assert byteplane.stats()["lanes"] == 2, "the keys still hold the lane"
        os.write(keys_w, b"rest\x1cafter")
        deadline = time.monotonic() + 10
        while plane_module.DETACH not in keys.kinds() and time.monotonic() < deadline:
            pump(byteplane, 0.01)
        assert keys.events[-1][0] == plane_module.DETACH
        pump(byteplane, 0.05)
        assert byteplane.stats()["lanes"] == 1
        assert byteplane.stats()["inputs"] == 0
        assert plane_threads(1) == 1
        assert b"rest" in ring.read(0)[1]
        assert b"after" not in ring.read(0)[1]
    finally:
        reap(pid, master)
        for fd in (keys_r, keys_w, out_r, out_w):
            os.close(fd)


def test_a_limit_and_a_freeze_go_with_the_session(byteplane, plane_module):
    pid, master = spawn("yes")
    ring = plane_module.Ring(1 << 20)
    r, w = pipe()
    try:
        session = byteplane.add_session(master, ring, -1, Recorder())
        byteplane.set_limit(session, 1000)
        pump(byteplane, 0.2)
        assert ring.end == 1000
        output = byteplane.add_output(session, w, 0, -1, Recorder())
        pump(byteplane, 0.2)
        assert ring.end == 1000, "the new lane read past the limit"
        byteplane.freeze(True)
        byteplane.set_limit(session, None)
        byteplane.remove_output(output)
        pump(byteplane, 0.2)
        assert ring.end == 1000, "a frozen plane read on"
        byteplane.freeze(False)
        pump(byteplane, 0.2)
        assert ring.end > 1000
        byteplane.add_output(session, w, ring.end, -1, Recorder())
        byteplane.remove_session(session)
        pump(byteplane, 0.05)
        assert byteplane.stats() | {"reads": 0, "wakeups": 0} == {
            "sessions": 0,
            "outputs": 0,
            "inputs": 0,
            "reads": 0,
            "wakeups": 0,
            "lanes": 1,
            "running": True,
            "stopped": [],
        }
        assert plane_threads(1) == 1
        with pytest.raises(KeyError, match="no session"):
            byteplane.set_limit(session, 5)
    finally:
        reap(pid, master)
        os.close(r)
        os.close(w)


class FailingAdds:
    """A lane whose `add_session` fails as epoll does when it has no room (ENOSPC)."""

    def __init__(self, plane) -> None:
        self._plane = plane

    def add_session(self, *args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str):
        return getattr(self._plane, name)


def test_a_session_that_cannot_go_back_stays_on_its_lane_and_is_read(byteplane, plane_module):
    pid, master = spawn("stty -echo; while read line; do echo got-$line; done")
    ring = plane_module.Ring(1 << 20)
    r, w = pipe()
    try:
        session = byteplane.add_session(master, ring, -1, Recorder())
        output = byteplane.add_output(session, w, 0, -1, Recorder())
        shared = byteplane._shared.plane
        byteplane._shared.plane = FailingAdds(shared)
        try:
            byteplane.remove_output(output)
        finally:
            byteplane._shared.plane = shared
        pump(byteplane, 0.05)
        assert byteplane.stats()["lanes"] == 2
        byteplane.set_limit(session, None)
        os.write(master, b"one\n")
        deadline = time.monotonic() + 10
        while b"got-one" not in ring.read(0)[1] and time.monotonic() < deadline:
            pump(byteplane, 0.01)
        assert b"got-one" in ring.read(0)[1]
        byteplane.add_output(session, w, ring.end, -1, Recorder())
        assert byteplane.stats()["lanes"] == 2
    finally:
        reap(pid, master)
        os.close(r)
        os.close(w)


@replaces_the_poller
def test_a_lane_that_stops_is_logged_and_in_the_stats(plane_module, capsys):
    before = pollers()
    byteplane = BytePlane(plane_module)
    (poller,) = pollers() - before
    pid, master = spawn("sleep 30")
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        session = byteplane.add_session(master, plane_module.Ring(4096), -1, Recorder())
        os.dup2(null, poller)
        byteplane.set_limit(session, 10)
        deadline = time.monotonic() + 10
        while byteplane.stats()["running"] and time.monotonic() < deadline:
            pump(byteplane, 0.01)
        pump(byteplane, 0.05)
        why = f"poller_wait: {os.strerror(errno.EINVAL)}"
        assert byteplane.stats() | {"reads": 0, "wakeups": 0} == {
            "sessions": 1,
            "outputs": 0,
            "inputs": 0,
            "reads": 0,
            "wakeups": 0,
            "lanes": 1,
            "running": False,
            "stopped": [why],
        }
        assert "a lane of the byte plane stopped" in capsys.readouterr().err
    finally:
        byteplane.close()
        reap(pid, master)
        os.close(null)
