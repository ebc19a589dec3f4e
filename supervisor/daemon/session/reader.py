"""The one reader of a session's PTY master: drains it until it would block and hands each
batch on; holds the child back while a lossless subscriber lags or the screen engine
has not seen what would leave the ring; and catches a typed
key's echo without a trip through the event loop.

On the compiled byte plane, the plane's thread does the reading into the ring; the reader
then only sets how far it may read, and hands each batch the plane reports on."""

import contextlib
import errno
import os
import select
import time
from collections.abc import Awaitable, Callable, Iterator

import trio

from supervisor.daemon.session.flow import Flow
from supervisor.daemon.session.plane import BytePlane
from supervisor.daemon.system.fd import OwnedFd

READ_SIZE = 65536
MAX_BATCH = 256 * 1024
ECHO_WAIT = 0.0002
"""After a keystroke, how long the reader waits for the terminal's answer before it goes
back to the event loop: a typed key's echo then goes out without a trip through it."""
ECHO_MISSES = 3
ECHO_PAUSE = 1.0
"""After ECHO_MISSES keystrokes in a row that no answer followed in time, how long the
reader stops waiting for one (a program that does not echo, or answers slowly)."""


class Reader:
    def __init__(
        self,
        master: OwnedFd,
        flow: Flow,
        publish: Callable[[bytes], None],
        end: Callable[[], int],
        room: Callable[[int], Awaitable[int]],
        free: Callable[[], int],
        plane: BytePlane | None = None,
        ring: object = None,
        limit: Callable[[], int | None] = lambda: None,
        published: Callable[[], None] = lambda: None,
    ) -> None:
        self._master = master
        self._flow = flow
        self._publish = publish
        self._end = end
        self._room = room
        self._free = free
        self.drained = trio.Event()
        """Set once the terminal has given its last byte (EIO/EOF) or was closed."""
        self._echo_misses = 0
        self._echo_resume = 0.0
        self._plane = plane
        self._ring = ring
        self._limit = limit
        self._published = published
        self._progress = trio.Event()
        self._eof = False
        self.handle: int | None = None
        """The session's handle on the byte plane, while it is on one."""
        self._holders: set[object] = set()
        """Who holds the reader back now: a lossless subscriber that lags, the screen
        engine, a terminal the byte plane writes that lags."""
        self._changed: trio.Event | None = None

    async def run(self) -> None:
        if self._plane is not None:
            await self._run_on_plane(self._plane)
            return
        try:
            while True:
                if self._flow.active and self._flow.congested():
                    with self._holding("flow"):
                        await self._flow.wait(self._end)
                with self._holding("screen"):
                    limit = await self._room(MAX_BATCH)
                await trio.lowlevel.wait_readable(self._master.fd)
                if self.drain_once(limit) < 0:
                    break
        except (trio.ClosedResourceError, OSError):
            pass
        finally:
            self._drained()

    def _drained(self) -> None:
        self.drained.set()
        self._tell_change()

    def held_by(self, holder: object, held: bool) -> None:
        """`holder` holds the reader back from now on, or no longer does."""
        if held:
            self._holders.add(holder)
        else:
            self._holders.discard(holder)
        self._tell_change()

    @contextlib.contextmanager
    def _holding(self, holder: object) -> Iterator[None]:
        self.held_by(holder, True)
        try:
            yield
        finally:
            self.held_by(holder, False)

    def _tell_change(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def drain(self, deadline: float) -> bool:
        """Wait for the end of the output; whether it came. The deadline is for a grandchild
        still holding the terminal, not for a reader that lags: it runs only while nothing
        holds the reader back, so all the output the child left in the terminal is read."""
        left = deadline
        while not self.drained.is_set() and left > 0:
            if self._changed is None:
                self._changed = trio.Event()
            changed = self._changed
            if self._holders:
                await changed.wait()
                continue
            began = trio.current_time()
            with trio.move_on_after(left) as clock:
                await changed.wait()
            if clock.cancelled_caught:
                break
            left -= trio.current_time() - began
        return self.drained.is_set()

    def join_plane(self) -> bool:
        """Have the byte plane's thread read the master from now on; False if it cannot (the
        Python loop reads it then)."""
        if self._plane is None or self._master.closed:
            self._plane = None
            return False
        try:
            # nothing is read until the reader's loop says how far (its first step)
            self.handle = self._plane.add_session(
                self._master.fd, self._ring, self._end(), self._on_event
            )
        except OSError:
            self._plane = None
            return False
        return True

    async def _run_on_plane(self, plane: BytePlane) -> None:
        handle = self.handle
        if handle is None:
            self._drained()
            return
        told: int | None = -1  # the loop's first step always tells
        try:
            while not self._eof and self.handle is not None:
                if self._flow.active and self._flow.congested():
                    told = self._end()
                    plane.set_limit(handle, told)
                    with self._holding("flow"):
                        await self._flow.wait(self._end)
                with self._holding("screen"):
                    await self._room(MAX_BATCH)
                if self.handle is None:
                    break  # the session left the plane while the reader waited
                limit = self._limit()
                if limit != told:
                    plane.set_limit(handle, limit)
                    told = limit
                await self._progress.wait()
                self._progress = trio.Event()
        finally:
            self._drained()

    def _on_event(self, kind: int, value: int, data: bytes | None) -> None:
        assert self._plane is not None
        if kind == self._plane.EOF:
            self._eof = True
        self._published()
        self._progress.set()

    def leave_plane(self) -> None:
        """The session is done with the plane (its output has ended, or it is removed)."""
        if self._plane is not None and self.handle is not None:
            handle, self.handle = self.handle, None
            with contextlib.suppress(KeyError):
                self._plane.remove_session(handle)
            self._progress.set()

    def drain_once(self, limit: int = MAX_BATCH) -> int:
        """Read until the master would block, or about `limit` bytes; publish one batch.
        The bytes read, or -1 at the end of output."""
        if self._plane is not None:
            return 0  # the plane's thread reads
        chunks: list[bytes] = []
        size = 0
        alive = True
        fd = self._master.fd
        while size < limit:
            try:
                data = os.read(fd, min(READ_SIZE, limit - size))
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                alive = False
                break
            if not data:
                alive = False
                break
            chunks.append(data)
            size += len(data)
        if chunks:
            self._publish(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        return size if alive else -1

    def catch_echo(self) -> None:
        """Just after a keystroke was written: read the answer if it comes within ECHO_WAIT."""
        if self._plane is not None:
            return  # the plane's thread reads it as it comes
        if self._echo_misses >= ECHO_MISSES:
            if time.monotonic() < self._echo_resume:
                return
            self._echo_misses = 0
        if self._master.closed or (self._flow.active and self._flow.lagging()):
            return
        try:
            ready, _, _ = select.select([self._master.fd], [], [], ECHO_WAIT)
        except (OSError, ValueError):
            return
        if not ready:
            self._echo_misses += 1
            if self._echo_misses >= ECHO_MISSES:
                self._echo_resume = time.monotonic() + ECHO_PAUSE
            return
        self._echo_misses = 0
        limit = min(MAX_BATCH, self._free())
        if limit > 0:
            with contextlib.suppress(OSError):
                self.drain_once(limit)  # at the end of output, the read loop finds it again
