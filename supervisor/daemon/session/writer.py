"""The one writer of a session's PTY master: input in order, big writes waiting for room."""

import os

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
        async with self._lock:
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
        return len(data)
