"""Keys on the byte plane, through its `_plane` API (issue 24, defects 4 and 7): the master's
write side has one owner at a time. The lane writes a terminal's keys itself only while
Python owes it nothing: once it hands keys over (INPUT), it takes the write side back only
after Python said it handed every one of them on (`handed_on`), and it stops reading the
terminal while Python owes it too many."""

import contextlib
import fcntl
import os
import select
import termios
import time

from tests.native.test_plane import pipe, read_all, reap, spawn

OWED = 64 * 1024
"""What Python may owe the lane before it stops reading a terminal (KEYS_OWED)."""


def inputs(module, events: list[tuple], handle: int) -> bytes:
    """The keys the events handed to Python, in order."""
    return b"".join(e[3] for e in events if e[0] == module.INPUT and e[1] == handle)


def fill(fd: int, data: bytes, stall: float = 0.5) -> int:
    """Write into a non-blocking pipe until it takes nothing for `stall` seconds."""
    done = 0
    while done < len(data) and select.select([], [fd], [], stall)[1]:
        with contextlib.suppress(BlockingIOError):
            done += os.write(fd, data[done : done + 65536])
    return done


def unread(fd: int) -> int:
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4), "little")


def read_by_lane(fd: int, timeout: float = 5.0) -> None:
    """Wait until the lane has read everything written to `fd` (its events not taken)."""
    deadline = time.monotonic() + timeout
    while unread(fd) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not unread(fd), "the lane read nothing"


def test_keys_handed_to_python_are_not_overtaken_by_newer_ones(plane, plane_module):
    pid, master = spawn("stty raw -echo; printf R; cat")
    ring = plane_module.Ring(1 << 16)
    keys_r, keys_w = pipe()
    out_r, out_w = pipe()
    try:
        s = plane.add_session(master, ring)
        plane.add_output(s, out_w, 0, 64 * 1024)
        assert read_all(out_r, 1) == b"R"  # the terminal is raw: what cat reads, it prints
        keys = plane.add_input(s, keys_r, -1, False)
        os.write(keys_w, b"ab")
        read_by_lane(keys_r)  # and handed to Python, not taken yet
        direct = plane.set_direct(keys, True)
        os.write(keys_w, b"c")
        time.sleep(0.2)
        handed = inputs(plane_module, plane.take(), keys)
        os.write(master, handed)  # Python's part: it writes what it was handed
        assert read_all(out_r, 3) == b"abc"
        assert not direct, "the lane took the master back while Python owed it keys"
        assert not plane.set_direct(keys, True)  # taken, not handed on yet
        assert plane.handed_on(keys, len(handed))
        assert plane.set_direct(keys, True)
        os.write(keys_w, b"d")
        assert read_all(out_r, 1) == b"d"
        assert inputs(plane_module, plane.take(), keys) == b""
    finally:
        reap(pid, master)
        for fd in (keys_r, keys_w, out_r, out_w):
            os.close(fd)


def test_a_partial_write_hands_the_rest_and_what_follows_over_in_order(plane, plane_module):
    pid, master = spawn("stty raw -echo; sleep 30")  # reads nothing: the master fills
    ring = plane_module.Ring(1 << 16)
    keys_r, keys_w = pipe()
    try:
        s = plane.add_session(master, ring)
        keys = plane.add_input(s, keys_r, -1, True)
        typed = b"".join(b"%07d\n" % n for n in range(40_000))
        took = fill(keys_w, typed)
        time.sleep(0.2)
        read = took - unread(keys_r)
        handed = inputs(plane_module, plane.take(), keys)
        assert 0 < len(handed) < read
        assert typed[read - len(handed) : read] == handed  # the rest, in order
        assert not plane.set_direct(keys, True)
    finally:
        reap(pid, master)
        os.close(keys_r)
        os.close(keys_w)


def test_a_terminal_is_not_read_while_python_owes_the_lane_too_many_keys(plane, plane_module):
    pid, master = spawn("sleep 30")
    ring = plane_module.Ring(1 << 16)
    keys_r, keys_w = pipe()
    try:
        s = plane.add_session(master, ring)
        keys = plane.add_input(s, keys_r, -1, False)
        typed = b"".join(b"%07d\n" % n for n in range(1_000_000))  # 8 MB
        took = fill(keys_w, typed)
        assert took < 4 * OWED, f"the lane read {took} bytes that Python owes it"
        handed = inputs(plane_module, plane.take(), keys)
        assert OWED <= len(handed) < OWED + 4096
        assert typed.startswith(handed)
        assert plane.handed_on(keys, len(handed))
        more = fill(keys_w, typed[took:])
        again = inputs(plane_module, plane.take(), keys)
        assert more > 0 and OWED <= len(again) < OWED + 4096  # read again, as far as before
        assert typed[len(handed) :].startswith(again)
    finally:
        reap(pid, master)
        os.close(keys_r)
        os.close(keys_w)
