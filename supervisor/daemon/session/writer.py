"""The one writer of a session's PTY master: input in order, big writes waiting for room.

On the compiled byte plane, the plane writes an attached terminal's keys to the master
itself while nothing of Python's waits for it: a write takes the master from the plane
before its first byte (the keys typed meanwhile come to Python and wait their turn) and
offers it back when it is done."""

import os
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

    @property
    def busy(self) -> bool:
        """A write holds the master, or waits for it: keys from elsewhere wait their turn."""
        return self._lock is not None and self._lock.locked()

    def _tell(self) -> None:
        for told in list(self.on_busy):
            told()

    def _check(self) -> None:
        if not self.running or self._master.closed:
            raise SessionClosed(f"session {self._id} has exited; it takes no input")

    def try_write(self, data: bytes) -> int:
        """Write what the terminal takes now, without waiting; 0 if a writer is waiting."""
        self._check()
        if self._lock is not None and self._lock.locked():
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
        view = memoryview(data)
        if self._lock is None:
            self._lock = trio.StrictFIFOLock()
        try:
            async with self._lock:
                self._tell()
                await self._write_all(view)
        finally:
            if not self._lock.locked():
                self._tell()
        return len(data)

    async def _write_all(self, view: memoryview) -> None:
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
            view = view[n:]
