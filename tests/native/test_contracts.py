"""The byte plane's own contracts, through its `_plane` API (issue 24): a ring it fills keeps
its capacity, a hold larger than the ring is told, a descriptor is its own and never blocks,
a closed plane takes nothing, a failed loop says so, and a ring a lane fills is the lane's."""

import contextlib
import errno
import fcntl
import os
import select
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.native.test_plane import events_until, pipe, read_all, reap, spawn

FLOOD = "stty -onlcr; yes 0123456789abcdef 2>/dev/null | head -c {n}; sleep 30"


def flood(n: int) -> bytes:
    return (b"0123456789abcdef\n" * (n // 17 + 1))[:n]


def open_fds() -> set[str]:
    return set(os.listdir("/dev/fd"))


def pollers() -> set[int]:
    """The epoll descriptors open now."""
    found = set()
    for fd in open_fds():
        with contextlib.suppress(OSError):
            if "eventpoll" in os.readlink(f"/proc/self/fd/{fd}"):
                found.add(int(fd))
    return found


replaces_the_poller = pytest.mark.skipif(
    sys.platform != "linux", reason="finds a lane's epoll through /proc"
)


@pytest.mark.parametrize("capacity", [4096, 65536, 1 << 20])
def test_a_ring_the_plane_fills_keeps_its_capacity(plane, plane_module, capacity):
    n = 3 * capacity + 12345
    pid, master = spawn(FLOOD.format(n=n))
    ring = plane_module.Ring(capacity)
    try:
        plane.add_session(master, ring)
        deadline = time.monotonic() + 20
        while ring.end < n and time.monotonic() < deadline:
            start, kept = ring.snapshot()
            assert len(kept) == min(start + len(kept), capacity)
            assert ring.allocated <= capacity
        assert ring.end == n
        assert ring.snapshot() == (n - capacity, flood(n)[-capacity:])
        assert ring.read(n - capacity + 1) == (n - capacity + 1, flood(n)[1 - capacity :])
    finally:
        reap(pid, master)


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="a pipe of 4 KiB: Linux")
def test_a_hold_larger_than_the_ring_is_told(plane, plane_module):
    pid, master = spawn(FLOOD.format(n=200_000))
    ring = plane_module.Ring(16 * 1024)
    r, w = pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
    try:
        s = plane.add_session(master, ring)
        out = plane.add_output(s, w, 0, 64 * 1024)
        events = events_until(plane, {plane_module.HELD}, timeout=5)
        (_, handle, written, _) = next(e for e in events if e[0] == plane_module.HELD)
        assert handle == out
        assert ring.end == written + 16 * 1024
        got = read_all(r, 200_000)
        assert got == flood(200_000)
        assert plane_module.FLOWING in {e[0] for e in events + plane.take()}
    finally:
        reap(pid, master)
        os.close(r)
        os.close(w)


def test_offsets_near_the_largest_do_not_overflow(plane, plane_module):
    pid, master = spawn("stty -onlcr; printf hello; sleep 30")
    end = 2**63 - 1000
    ring = plane_module.Ring(4096, end)
    r, w = pipe()
    try:
        s = plane.add_session(master, ring, end + 3)
        out = plane.add_output(s, w, end, 2**63 - 1)
        assert read_all(r, 3, timeout=5) == b"hel"
        time.sleep(0.1)
        assert ring.end == end + 3, "read past the limit"
        assert plane_module.HELD not in {e[0] for e in plane.take()}
        plane.set_limit(s, -1)
        assert read_all(r, 2, timeout=5) == b"lo"
        assert plane.remove_output(out) == end + 5
    finally:
        reap(pid, master)
        os.close(r)
        os.close(w)


def test_a_blocking_descriptor_is_refused(plane, plane_module):
    ring = plane_module.Ring(4096)
    r, w = os.pipe()
    pid, master = spawn("sleep 30")
    try:
        with pytest.raises(ValueError, match="blocking"):
            plane.add_session(r, ring)
        s = plane.add_session(master, ring)
        with pytest.raises(ValueError, match="blocking"):
            plane.add_output(s, w, 0, -1)
        with pytest.raises(ValueError, match="blocking"):
            plane.add_input(s, r, -1, True)
        assert plane.stats() | {"reads": 0, "wakeups": 0} == {
            "sessions": 1,
            "outputs": 0,
            "inputs": 0,
            "reads": 0,
            "wakeups": 0,
            "running": True,
            "error": None,
        }
    finally:
        os.close(w)  # a lane blocked in read(r) sees its end
        reap(pid, master)
        os.close(r)


def test_the_plane_reads_the_master_it_was_given_not_its_number(plane, plane_module):
    pid, master = spawn("stty -onlcr; sleep 0.5; printf from-the-child; sleep 30")
    ring = plane_module.Ring(4096)
    r, w = os.pipe()
    try:
        s = plane.add_session(master, ring)
        plane.freeze(True)
        os.dup2(r, master)  # the caller's number is the pipe's now
        os.set_blocking(master, False)
        os.write(w, b"from-the-pipe")
        plane.freeze(False)
        deadline = time.monotonic() + 10
        while b"from-the-child" not in ring.read(0)[1] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ring.read(0) == (0, b"from-the-child")
        assert os.read(master, 100) == b"from-the-pipe"
        assert plane.remove_session(s) is False
    finally:
        reap(pid, master)
        os.close(r)
        os.close(w)


def test_a_closed_plane_takes_nothing_and_keeps_nothing(plane_module):
    plane = plane_module.Plane()
    plane.close()
    ring = plane_module.Ring(4096)
    refs = sys.getrefcount(ring)
    pid, master = spawn("sleep 30")
    r, w = pipe()
    try:
        fds = open_fds()
        with pytest.raises(ValueError, match="closed"):
            plane.add_session(master, ring)
        with pytest.raises(ValueError, match="closed"):
            plane.add_output(1, w, 0, -1)
        with pytest.raises(ValueError, match="closed"):
            plane.add_input(1, r, -1, True)
        assert open_fds() == fds
        assert sys.getrefcount(ring) == refs
        ring.append(b"still Python's")
        assert plane.stats()["running"] is False
        plane.close()
    finally:
        reap(pid, master)
        os.close(r)
        os.close(w)


def test_a_ring_a_lane_fills_is_the_lanes(plane, plane_module):
    pid, master = spawn("sleep 30")
    ring = plane_module.Ring(4096)
    other = plane_module.Plane()
    try:
        s = plane.add_session(master, ring)
        with pytest.raises(RuntimeError, match="byte plane"):
            ring.append(b"under the lane")
        with pytest.raises(RuntimeError, match="byte plane"):
            other.add_session(master, ring)
        plane.remove_session(s)
        assert ring.append(b"Python's again") == 0
        other.remove_session(other.add_session(master, ring))
    finally:
        other.close()
        reap(pid, master)


STATS_UNDER_GC = """
import gc
from supervisor.native import _plane

class Survivor:
    pass

plane = _plane.Plane()
# no dict on the free list, and none freed from now on: the stats' dict is a new object
kept, infos, calls, results = [{} for _ in range(100)], [], [], []
def during_gc(phase, info):
    infos.append(info)
    if phase == "start":
        calls.append(plane.stats())
gc.callbacks.append(during_gc)
gc.set_threshold(1)
for _ in range(10):
    while gc.get_count()[0] != 1:
        kept.append(Survivor())
    results.append(plane.stats())  # its dict starts the collector
gc.callbacks.remove(during_gc)
plane.close()
print(len(calls) > 0)
"""


@pytest.mark.skipif(
    bool(os.environ.get("PTYSUP_PLANE_DIR")),
    reason="starts a Python of its own, which would load that build without its runtime",
)
def test_stats_hold_no_mutex_while_python_runs(plane_module):
    """Building the stats' dict may run the collector, and so any Python code (here, a
    callback that asks for the stats again): a mutex held across it deadlocks."""
    done = subprocess.run(
        [sys.executable, "-c", STATS_UNDER_GC], capture_output=True, text=True, timeout=20
    )
    assert (done.returncode, done.stdout.strip()) == (0, "True"), done.stderr


def poller_of(plane_module) -> tuple[Any, int]:
    """A plane made now, and the descriptor of its readiness loop."""
    before = pollers()
    plane = plane_module.Plane()
    (fd,) = pollers() - before
    return plane, fd


@replaces_the_poller
def test_a_lane_whose_loop_fails_says_so(plane_module):
    plane, poller = poller_of(plane_module)
    pid, master = spawn("sleep 30")
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        s = plane.add_session(master, plane_module.Ring(4096))
        os.dup2(null, poller)  # epoll_wait fails on it: EINVAL
        plane.set_limit(s, 10)  # wakes the lane, which waits on it next
        assert select.select([plane.fileno()], [], [], 10)[0]
        events = plane.take()
        assert (plane_module.STOPPED, 0, errno.EINVAL, None) in events
        stats = plane.stats()
        assert stats["running"] is False
        assert stats["error"] == f"poller_wait: {os.strerror(errno.EINVAL)}"
        plane.close()
        assert plane.stats()["running"] is False
    finally:
        plane.close()
        reap(pid, master)
        os.close(null)
