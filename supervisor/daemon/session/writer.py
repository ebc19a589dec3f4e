"""The one writer of a session's PTY master: input in order, big writes waiting for room.

On the compiled byte plane, the plane writes an attached terminal's keys to the master
itself while nothing of Python's waits for it: a write takes the master from the plane
before its first byte (the keys typed meanwhile come to Python and wait their turn) and
offers it back when it is done."""

import os
from collections import deque
from collections.abc import Callable

import trio

from supervisor.daemon.system.fd import OwnedFd

ECHO_KEY = 16
"""Input at most this long is a keystroke (or a key's escape sequence), not a paste."""


class SessionClosed(Exception):
    pass


class Writer:
    def __init__(self, session_id: str, master: OwnedFd) -> None:
        self._id = session_id
        self._master = master
        self._lock: trio.StrictFIFOLock | None = None  # made on first use: idle sessions
        # are many, and should cost little
        self.running = True
        self.on_busy: list[Callable[[], None]] = []
        """Told when a write takes the master and when the last lets go of it (`busy`)."""
        self._waiting: deque[list[memoryview]] = deque()
        """What each write still has to write, in the order they take the master."""
        self._primed: list[memoryview] | None = None
        """Input a previous image of the daemon had queued: written before any other."""

    @property
    def busy(self) -> bool:
        """A write holds the master, or waits for it: keys from elsewhere wait their turn."""
        return (self._lock is not None and self._lock.locked()) or self._primed is not None

    def _tell(self) -> None:
        for told in list(self.on_busy):
            told()

    def _check(self) -> None:
        if not self.running or self._master.closed:
            raise SessionClosed(f"session {self._id} has exited; it takes no input")

    def try_write(self, data: bytes) -> int:
        """Write what the terminal takes now, without waiting; 0 if a writer is waiting."""
        self._check()
        if (self._lock is not None and self._lock.locked()) or self._primed is not None:
            return 0
        view = memoryview(data)
        written = 0
        while written < len(data):
            try:
                written += os.write(self._master.fd, view[written:])
            except BlockingIOError:
                break
            except OSError as exc:
                raise SessionClosed(f"session {self._id}: the terminal is gone") from exc
        return written

    async def write(self, data: bytes) -> int:
        self._check()
        entry = [memoryview(data)]
        self._waiting.append(entry)
        if self._lock is None:
            self._lock = trio.StrictFIFOLock()
        try:
            async with self._lock:
                self._tell()
                if self._primed is not None:
                    await self._write_all(self._primed)
                    self._primed = None
                await self._write_all(entry)
        finally:
            self._waiting.remove(entry)
            if not self._lock.locked():
                self._tell()
        return len(data)

    def queued(self) -> bytes:
        """What the writes under way and waiting have still to write, in order (for the
        next image of the daemon: see `prime`)."""
        parts = [] if self._primed is None else [self._primed[0]]
        return b"".join([*parts, *(entry[0] for entry in self._waiting)])

    def prime(self, data: bytes) -> None:
        """Write `data` before any other input (what the previous image had queued)."""
        if data:
            self._primed = [memoryview(data)]

    async def write_primed(self) -> None:
        """Write what `prime` was given, if nothing else has yet."""
        if self._primed is not None:
            try:
                await self.write(b"")
            except SessionClosed:
                self._primed = None

    async def _write_all(self, entry: list[memoryview]) -> None:
        view = entry[0]
        while view:
            if self._master.closed:
                raise SessionClosed(f"session {self._id} was removed")
            try:
                n = os.write(self._master.fd, view)
            except BlockingIOError:
                try:
                    await trio.lowlevel.wait_writable(self._master.fd)
                except trio.ClosedResourceError:
                    raise SessionClosed(f"session {self._id} was removed") from None
                continue
            except OSError as exc:
                raise SessionClosed(f"session {self._id}: the terminal is gone") from exc
            view = entry[0] = view[n:]
