"""The compiled byte plane on real PTYs and pipes: every byte in the ring once and in order,
output written exactly as the ring holds it, the child held back, keys carried."""

import contextlib
import hashlib
import os
import pty
import select
import signal
import time

import pytest


def spawn(script: str) -> tuple[int, int]:
    pid, master = pty.fork()
    if pid == 0:
        os.execvp("sh", ["sh", "-c", script])
    os.set_blocking(master, False)
    return pid, master


def reap(pid: int, master: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(master)


def pipe() -> tuple[int, int]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


def events_until(plane, kinds: set[int], timeout: float = 20.0) -> list[tuple]:
    """Events taken until one of `kinds` came."""
    seen: list[tuple] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        select.select([plane.fileno()], [], [], 0.05)
        seen += plane.take()
        if any(e[0] in kinds for e in seen):
            return seen
    raise AssertionError(f"no event of {kinds} in {timeout} s: {seen[-5:]}")


def read_all(fd: int, until: int, timeout: float = 20.0) -> bytes:
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < until and time.monotonic() < deadline:
        select.select([fd], [], [], 0.05)
        with contextlib.suppress(BlockingIOError):
            got += os.read(fd, 1 << 20)
    return bytes(got)


SEQ = "seq 1 300000"  # 2 MB of lines
SEQ_BYTES = "".join(f"{i}\r\n" for i in range(1, 300001)).encode()


def test_every_byte_reaches_the_ring_and_the_terminal_once_in_order(plane, plane_module):
    pid, master = spawn(f"stty -onlcr; {SEQ} | sed 's/$/\\r/'")
    ring = plane_module.Ring(8 << 20)
    r, w = pipe()
    try:
        s = plane.add_session(master, ring)
        plane.add_output(s, w, 0, 64 * 1024)
        got = read_all(r, len(SEQ_BYTES))
        events = events_until(plane, {plane_module.EOF})
        assert got == SEQ_BYTES
        assert ring.read(0) == (0, SEQ_BYTES)
        eof = [e for e in events if e[0] == plane_module.EOF]
        assert eof == [(plane_module.EOF, s, len(SEQ_BYTES), None)]
        data = [e for e in events if e[0] == plane_module.DATA]
        assert data and all(e[1] == s for e in data)
        assert len(data) < len(SEQ_BYTES) // 4096  # woken in batches, not per read
    finally:
        reap(pid, master)
        os.close(r)
        os.close(w)


def test_a_terminal_that_lags_holds_the_child_back_and_then_lets_it_go_on(plane, plane_module):
    pid, master = spawn("stty -onlcr; yes 0123456789abcdef 2>/dev/null | head -c 3000000; sleep 30")
    ring = plane_module.Ring(1 << 20)
    r, w = pipe()
    try:
        s = plane.add_session(master, ring)
        out = plane.add_output(s, w, 0, 64 * 1024)
        held = events_until(plane, {plane_module.HELD})
        (_kind, handle, written, _) = next(e for e in held if e[0] == plane_module.HELD)
        assert handle == out
        time.sleep(0.3)
        assert ring.end <= written + 64 * 1024  # nothing more was read while held
        got = read_all(r, 3_000_000)
        assert (len(got), ring.end) == (3_000_000, 3_000_000)
        start, kept = ring.read(0)
        assert hashlib.sha256(got[start:]).digest() == hashlib.sha256(kept).digest()
        assert got == (b"0123456789abcdef\n" * 200_000)[:3_000_000]
        kinds = {e[0] for e in plane.take()}
        assert plane_module.FLOWING in kinds or ring.end == 3_000_000
        assert plane.remove_output(out) == 3_000_000
    finally:
        reap(pid, master)
        os.close(r)
        os.close(w)


def test_a_terminal_that_may_not_hold_the_child_is_let_go_where_it_blocked(plane, plane_module):
    pid, master = spawn("stty -onlcr; yes 0123456789abcdef 2>/dev/null | head -c 2000000; sleep 30")
    ring = plane_module.Ring(4 << 20)
    r, w = pipe()
    try:
        s = plane.add_session(master, ring)
        out = plane.add_output(s, w, 0, -1)
        events = events_until(plane, {plane_module.RELEASED})
        released = next(e for e in events if e[0] == plane_module.RELEASED)
        assert released[1] == out
        written = released[2]
        assert 0 < written < 2_000_000
        assert read_all(r, written) == ring.read(0, written)[1]
        deadline = time.monotonic() + 20
        while ring.end < 2_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ring.end == 2_000_000  # the child went on at full speed
        assert plane.remove_output(out) == written
        with pytest.raises(KeyError, match="no output"):
            plane.remove_output(out)
    finally:
        reap(pid, master)
        os.close(r)
        os.close(w)


def test_a_terminal_gone_is_a_hangup(plane, plane_module):
    pid, master = spawn("sleep 0.3; echo after")
    ring = plane_module.Ring(4096)
    r, w = pipe()
    try:
        s = plane.add_session(master, ring)
        out = plane.add_output(s, w, 0, 64 * 1024)
        os.close(r)
        events = events_until(plane, {plane_module.HANGUP})
        assert (plane_module.HANGUP, out) == next(
            e[:2] for e in events if e[0] == plane_module.HANGUP
        )
    finally:
        reap(pid, master)
        os.close(w)


def test_keys_go_to_the_child_and_the_detach_key_ends_them(plane, plane_module):
    pid, master = spawn("stty raw -echo; cat")
    ring = plane_module.Ring(1 << 16)
    keys_r, keys_w = pipe()
    out_r, out_w = pipe()
    try:
        s = plane.add_session(master, ring)
        plane.add_output(s, out_w, 0, 64 * 1024)
        keys = plane.add_input(s, keys_r, 0x1D, True)
        os.write(keys_w, b"typed")
        assert read_all(out_r, 5) == b"typed"
        assert plane.set_direct(keys, False)
        os.write(keys_w, b"held")
        events = events_until(plane, {plane_module.INPUT})
        assert (plane_module.INPUT, keys, 0, b"held") in events
        os.write(master, b"held")  # Python writes what it was handed, then says so
        assert not plane.set_direct(keys, True)
        assert plane.handed_on(keys, 4)
        assert plane.set_direct(keys, True)
        os.write(keys_w, b"last\x1dnever")
        events = events_until(plane, {plane_module.DETACH})
        assert (plane_module.DETACH, keys, 0, None) in events
        assert read_all(out_r, 8) == b"heldlast"
        assert plane.stats()["inputs"] == 0
        assert not plane.remove_input(keys)
    finally:
        reap(pid, master)
        for fd in (keys_r, keys_w, out_r, out_w):
            os.close(fd)


def test_a_limit_and_a_freeze_stop_the_reading(plane, plane_module):
    pid, master = spawn("stty -onlcr; yes 2>/dev/null | head -c 500000; sleep 30")
    ring = plane_module.Ring(1 << 20)
    try:
        s = plane.add_session(master, ring, 1000)
        time.sleep(0.3)
        assert 0 < ring.end <= 1000
        plane.freeze(True)
        plane.set_limit(s, -1)
        time.sleep(0.3)
        assert ring.end <= 1000
        plane.freeze(False)
        deadline = time.monotonic() + 20
        while ring.end < 500_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ring.read(0) == (0, b"y\n" * 250_000)
    finally:
        reap(pid, master)


def test_bad_handles_and_fds_are_named(plane, plane_module):
    ring = plane_module.Ring(10)
    r, w = pipe()
    try:
        with pytest.raises(OSError):
            plane.add_session(987654, ring)
        with pytest.raises(KeyError, match="no session"):
            plane.set_limit(12345, 0)
        with pytest.raises(KeyError, match="no session"):
            plane.add_output(12345, w, 0, -1)
        with pytest.raises(ValueError, match="must not be negative"):
            plane.add_output(12345, w, -1, -1)
        with pytest.raises(TypeError):
            plane.add_session(0, b"not a ring")
    finally:
        os.close(r)
        os.close(w)


def test_a_relaxed_session_is_told_of_later_but_taken_at_once(plane, plane_module):
    script = "stty -echo; echo ready; read a; printf 'one\\n'; read a; printf 'two\\n'; sleep 30"
    pid, master = spawn(script)
    ring = plane_module.Ring(1 << 20)
    try:
        s = plane.add_session(master, ring)
        plane.set_relaxed(s, True)
        deadline = time.monotonic() + 10
        while b"ready" not in ring.read(0)[1] and time.monotonic() < deadline:
            time.sleep(0.001)
        plane.take()  # the 20 ms start with the output to come, not with "ready"
        os.write(master, b"go\n")
        deadline = time.monotonic() + 10
        while b"one" not in ring.read(0)[1] and time.monotonic() < deadline:
            time.sleep(0.001)
        # read already, and not told of for a while: taken when asked
        assert not select.select([plane.fileno()], [], [], 0.005)[0]
        assert [e[0] for e in plane.take()] == [plane_module.DATA]
        plane.set_relaxed(s, False)
        os.write(master, b"go\n")
        events = events_until(plane, {plane_module.DATA})
        assert b"two" in ring.read(0)[1]
        assert [e[0] for e in events] == [plane_module.DATA]
        with pytest.raises(KeyError, match="no session"):
            plane.set_relaxed(s + 1, True)
    finally:
        reap(pid, master)
