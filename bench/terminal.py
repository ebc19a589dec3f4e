"""The bench plays the user's terminal: it opens a PTY, runs a program on it as the
leader of a new session with the PTY as its controlling terminal, and reads the master."""

import contextlib
import errno
import fcntl
import os
import re
import resource
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Sequence

COLS, ROWS = 80, 24
READ_SIZE = 65536
_ESCAPES = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>78MDEc]|\][^\x07]*\x07)")


def last_line(data: bytes) -> str:
    """The last line of text in `data`, escape sequences removed."""
    lines = visible(data).decode(errors="replace").replace("\r", "\n").split("\n")
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


class Timeout(Exception):
    pass


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def visible(data: bytes) -> bytes:
    """`data` without terminal escape sequences."""
    return _ESCAPES.sub(b"", data)


class Terminal:
    """One PTY with one program on it. `close()` ends the program's process group."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: str) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self._usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_take_terminal,
            )
        except BaseException:
            os.close(self.master)
            raise
        finally:
            os.close(slave)
        self.received = 0
        self.reads = 0
        self.tail = b""
        self._killed = False

    def drain(self, timeout: float) -> int:
        """Read the master with blocking reads until EIO (every holder of the terminal has
        closed it), then reap the program; return its exit status. After `timeout`
        seconds the program's process group is killed instead."""
        watchdog = threading.Timer(timeout, self._kill)
        watchdog.daemon = True
        watchdog.start()
        master = self.master
        received = 0
        reads = 0
        data = b""
        try:
            while True:
                try:
                    data = os.read(master, READ_SIZE)
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    break
                if not data:
                    break
                received += len(data)
                reads += 1
                self.tail = data
            status = self.proc.wait()
        finally:
            watchdog.cancel()
        self.received += received
        self.reads += reads
        if self._killed:
            raise Timeout(f"{self.proc.args[0]} did not finish within {timeout} s")
        return status

    def _kill(self) -> None:
        self._killed = True
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def child_cpu(self) -> float:
        """CPU seconds the program (and the children it reaped) used; once reaped."""
        now = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (now.ru_utime - self._usage.ru_utime) + (now.ru_stime - self._usage.ru_stime)

    def read_some(self, timeout: float) -> bytes:
        readable, _, _ = select.select([self.master], [], [], timeout)
        if not readable:
            raise Timeout(f"no output from {self.proc.args[0]} within {timeout} s")
        try:
            data = os.read(self.master, READ_SIZE)
        except OSError as exc:
            if exc.errno == errno.EIO:
                data = b""
            else:
                raise
        if not data:
            raise Timeout(f"{self.proc.args[0]} closed the terminal")
        self.received += len(data)
        return data

    def read_until(self, found: Callable[[bytes], bool], timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        seen = b""
        while not found(seen):
            seen += self.read_some(max(0.0, deadline - time.monotonic()))
        return seen

    def settle(self, quiet: float = 0.05, timeout: float = 2.0) -> None:
        """Read until the program has been silent for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.master], [], [], quiet)
            if not readable:
                return
            self.read_some(0)

    def close(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGHUP)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                self.proc.wait()
        os.close(self.master)
