"""A user's terminal: a PTY the harness holds, with `ptysup attach` (or any command) running
on it as the leader of a new session with the PTY as its controlling terminal. A thread
keeps reading what the program shows (unless told to stall, as a stuck terminal), another
types what it is given, at the pace the terminal takes it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from collections import deque

READ_SIZE = 65536
KEEP = 256 * 1024
DETACH_KEY = b"\x1c"


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtyClient:
    """One program on a PTY of the harness. `shown` counts what it wrote to the terminal;
    `tail` keeps the last of it. The slave stays open here too, so that the keys still
    waiting in the terminal can be counted (`pending_keys`)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], cwd: str, cols: int, rows: int
    ) -> None:
        self.name = name
        self.cols, self.rows = cols, rows
        self.master, self.slave = os.openpty()
        set_size(self.master, cols, rows)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=self.slave,
                stdout=self.slave,
                stderr=self.slave,
                env=env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_take_terminal,  # ioctl only: nothing imported
            )
        except BaseException:
            os.close(self.master)
            os.close(self.slave)
            raise
        os.set_blocking(self.master, False)
        self.pid = self.proc.pid
        self.shown = 0
        self.tail = bytearray()
        self.typed = 0
        self.stalled = threading.Event()
        self._closing = threading.Event()
        self._keys: deque[tuple[bytes, float]] = deque()
        self._keys_ready = threading.Condition()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"{name}-out", daemon=True)
        self._writer = threading.Thread(target=self._write, name=f"{name}-keys", daemon=True)
        self._reader.start()
        self._writer.start()

    # -- what it shows ------------------------------------------------------------

    def _read(self) -> None:
        while not self._closing.is_set():
            if self.stalled.is_set():
                time.sleep(0.05)
                continue
            try:
                readable, _, _ = select.select([self.master], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not readable:
                continue
            try:
                data = os.read(self.master, READ_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:
                    time.sleep(0.05)
                    continue
                return
            with self._lock:
                self.shown += len(data)
                self.tail += data
                if len(self.tail) > 2 * KEEP:
                    del self.tail[:-KEEP]

    def text(self) -> bytes:
        with self._lock:
            return bytes(self.tail)

    def wait_for(self, needle: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            time.sleep(0.05)
        return False

    # -- what is typed ------------------------------------------------------------

    def type(self, data: bytes, pause: float = 0.0) -> None:
        """Queue `data` to be typed (written to the master as the terminal takes it), and
        `pause` seconds of nothing after it (bursts of a paste)."""
        with self._keys_ready:
            self._keys.append((data, pause))
            self._keys_ready.notify()

    def _write(self) -> None:
        while not self._closing.is_set():
            with self._keys_ready:
                while not self._keys and not self._closing.is_set():
                    self._keys_ready.wait(0.2)
                if self._closing.is_set():
                    return
                data, pause = self._keys[0]
            view = memoryview(data)
            while view and not self._closing.is_set():
                try:
                    _, writable, _ = select.select([], [self.master], [], 0.2)
                except (OSError, ValueError):
                    return
                if not writable:
                    continue
                try:
                    n = os.write(self.master, view)
                except BlockingIOError:
                    continue
                except OSError:
                    return
                view = view[n:]
                with self._keys_ready:
                    self.typed += n
            if pause:
                self._closing.wait(pause)
            with self._keys_ready:
                if self._keys:
                    self._keys.popleft()
                self._keys_ready.notify_all()

    def keys_queued(self) -> int:
        """Bytes given to `type` not yet written into the terminal."""
        with self._keys_ready:
            return sum(len(k) for k, _ in self._keys)

    def pending_keys(self) -> int:
        """Bytes in the terminal not yet read by whoever reads its keys."""
        try:
            raw = fcntl.ioctl(self.slave, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return int.from_bytes(raw, "little")

    def keys_settled(self, timeout: float) -> bool:
        """Wait until every key given has been written and read out of the terminal."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.keys_queued() == 0 and self.pending_keys() == 0:
                return True
            time.sleep(0.05)
        return False

    # -- the program --------------------------------------------------------------

    def resize(self, cols: int, rows: int) -> None:
        """Resize the terminal: the kernel tells its foreground group with SIGWINCH."""
        self.cols, self.rows = cols, rows
        set_size(self.master, cols, rows)

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def running(self) -> bool:
        return self.proc.poll() is None

    def detach(self, timeout: float) -> int | None:
        """Type the detach key; the program's exit status, None if it did not end."""
        self.type(DETACH_KEY)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """End the program (its whole process group) and let go of the terminal; once."""
        if self._closing.is_set():
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGCONT)
                os.killpg(self.pid, signal.SIGHUP)
            if self.wait(5) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait()
        self._closing.set()
        with self._keys_ready:
            self._keys_ready.notify_all()
        self._reader.join(5)
        self._writer.join(5)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
