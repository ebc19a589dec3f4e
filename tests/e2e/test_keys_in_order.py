"""Keys typed into an attached terminal reach the child once and in the order typed, beside
pastes and `ptysup write`, and a paste the child does not read holds the terminal back
instead of growing the daemon (issue 24, defects 4, 5 and 7). The child is in raw mode and
records every byte it reads to a file; what is typed is numbered lines."""

import contextlib
import fcntl
import os
import re
import select
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PTYSUP, Sandbox, held_terminals, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

RECORD = """
import os, sys, time, tty
tty.setraw(0)
out = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
interval, chunk = float(sys.argv[2]), int(sys.argv[3])
os.write(1, b"READY\\n")
while data := os.read(0, chunk):
    os.write(out, data)
    time.sleep(interval)
"""


def lines(tag: str, first: int, count: int) -> bytes:
    return "".join(f"{tag}{n:07d}\n" for n in range(first, first + count)).encode()


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A PTY held here with `ptysup attach` on it, as a user's terminal: a thread reads what
    it shows (and drops it); keys are written to its master."""

    def __init__(self, sandbox: Sandbox, session: str) -> None:
        self.master, self.slave = os.openpty()
        self.tty = os.ttyname(self.slave)
        self.proc = subprocess.Popen(
            [PTYSUP, "attach", session],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=sandbox.env,
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.set_blocking(self.master, False)
        self.shown = bytearray()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        pid = sandbox.daemon_pid()
        assert pid is not None
        assert wait_until(lambda: self.tty in held_terminals(pid), 15), "attach did not start"
        assert wait_until(lambda: b"READY" in self.shown, 15), bytes(self.shown[-300:])

    def _read(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(OSError):
                if select.select([self.master], [], [], 0.1)[0]:
                    self.shown += os.read(self.master, 65536)
                    del self.shown[:-4096]

    def write(self, data: bytes, stall: float = 10.0) -> int:
        """Write `data` as the terminal takes it; how much it took before it took nothing
        for `stall` seconds."""
        view = memoryview(data)
        done = 0
        while done < len(data):
            if not select.select([], [self.master], [], stall)[1]:
                break
            with contextlib.suppress(BlockingIOError):
                done += os.write(self.master, view[done : done + 65536])
        return done

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 9)
        self.proc.wait(10)
        self._closing.set()
        self._reader.join(5)
        os.close(self.master)
        os.close(self.slave)


def recorder(sandbox: Sandbox, path: Path, interval: float, chunk: int) -> str:
    sid = sandbox.spawn(sys.executable, "-c", RECORD, str(path), str(interval), str(chunk))
    sandbox.run("expect", sid, "READY", "--timeout", "15", check=True)
    return sid


def recorded(path: Path, size: int, timeout: float = 60) -> bytes:
    wait_until(lambda: path.stat().st_size >= size, timeout, 0.05)
    time.sleep(0.3)  # nothing more than that either
    return path.read_bytes()


def first_difference(got: bytes, want: bytes) -> str:
    at = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), None)
    if at is None:
        return f"{len(got)} bytes recorded, {len(want)} typed"
    return f"from byte {at}: got {got[at : at + 40]!r}, typed {want[at : at + 40]!r}"


def test_a_paste_reaches_the_child_once_and_in_order(sandbox: Sandbox, tmp_path: Path) -> None:
    """Defect 4: 64 KiB bursts every 300 ms into a child that reads every 10 ms. The keys
    the daemon could not write at once must not be overtaken by the keys typed after."""
    path = tmp_path / "keys"
    sid = recorder(sandbox, path, 0.01, 4096)
    terminal = Terminal(sandbox, sid)
    try:
        paste = lines("", 0, 100_000)
        for at in range(0, len(paste), 65536):
            assert terminal.write(paste[at : at + 65536]) == len(paste[at : at + 65536])
            time.sleep(0.3)
        got = recorded(path, len(paste))
        assert got == paste, first_difference(got, paste)
    finally:
        terminal.close()


def test_keys_typed_while_a_write_waits_come_after_it(sandbox: Sandbox, tmp_path: Path) -> None:
    """Defect 5: `ptysup write` holds the session's writer until its text is written; keys
    typed meanwhile wait their turn, never land in the middle of the text. (The text is
    given as arguments: `write -` sends stdin in pieces, each a write of its own.)"""
    path = tmp_path / "keys"
    sid = recorder(sandbox, path, 0, 65536)
    terminal = Terminal(sandbox, sid)
    keys = [f"K{n:07d}\n".encode() for n in range(2000)]
    parts = [lines("W", k * 13_000, 13_000).decode() for k in range(12)]
    text = " ".join(parts).encode()
    typed = threading.Event()

    def type_keys() -> None:
        for key in keys:
            terminal.write(key)
            time.sleep(0.0005)
        typed.set()

    try:
        typist = threading.Thread(target=type_keys, daemon=True)
        typist.start()
        time.sleep(0.2)
        sandbox.run("write", sid, *parts, check=True)
        assert typed.wait(60)
        got = recorded(path, len(text) + sum(map(len, keys)))
        at = got.find(text)
        if at < 0:
            at = max(got.find(text[:64]), 0)
            raise AssertionError(f"keys inside the text {first_difference(got[at:], text)}")
        assert got[:at] + got[at + len(text) :] == b"".join(keys)
    finally:
        terminal.close()


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_a_paste_the_child_does_not_read_holds_the_terminal_back(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Defect 7: 50 MB pasted into an attached `sleep 3600`. The daemon takes a bounded
    amount and then stops reading the terminal: the keys queued for the master are at most
    1 MiB (256 writes of 4 KiB, on either byte path) and what a plane's lane may hand over
    unanswered (64 KiB); with the terminal's and the master's buffers, the paste stops
    under 2 MiB (1.1 MB measured) and the daemon's RSS grows by less than 16 MiB (1.3 MiB
    measured; 50 MB and 51 MiB before)."""
    sid = sandbox.spawn("sh", "-c", "echo READY; exec sleep 3600")
    sandbox.run("expect", sid, "READY", "--timeout", "15", check=True)
    terminal = Terminal(sandbox, sid)
    pid = sandbox.daemon_pid()
    assert pid is not None
    try:
        before = rss_kib(pid)
        paste = lines("", 0, 50 * 1024 * 1024 // 8)
        took = terminal.write(paste, stall=3.0)
        grown = rss_kib(pid) - before
        assert took < 2 * 1024 * 1024, f"the daemon took {took} bytes of keys; RSS +{grown} KiB"
        assert grown < 16 * 1024, f"RSS grew by {grown} KiB"
        assert sandbox.json("info", sid)["state"] == "running"
    finally:
        terminal.close()
