"""A session's screen engine kept in step with its output, through every size the terminal
went through on the way.

With an engine that parses without the GIL (libghostty-vt) the view sees every byte: a
feeder task hands each stretch of new output, in order, to a worker thread, and the
reader never lets unfed output leave the ring (`room`). The model is then exact, always.
A slower engine (pyte, avt) cannot keep up with a PTY: it is fed only when the terminal
is quiet or somebody asks, restarts from the ring's last full reset (else its tail) when
output it has not seen is gone, and says it is not exact then.

Every call on the engine holds `_lock` (a thread lock: the worker feeds under it), and
`fed` changes under it too, so a snapshot taken under the lock is the screen at `fed`.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import trio

from supervisor import logs
from supervisor.daemon.session.ring import Ring
from supervisor.screen.choose import EngineUnavailable, expected_engine, open_engine

if TYPE_CHECKING:
    from supervisor.screen.types import Engine, Modes

log = logs.get_logger("supervisor.screen")

THREADED = frozenset({"ghostty"})
"""Engines that release the GIL while they parse: fed every byte, on a worker thread."""
FEED_CHUNK = 256 * 1024
INLINE = 4096
"""New output at most this long (a keystroke's echo, a prompt) is fed at once on the event
loop, a few microseconds, rather than through a thread."""
MAX_HOLD = 0.1
"""How long the reader may wait for the engine before the engine gives way instead: output
it cannot parse as fast as a program writes (megabytes of random bytes, say) must not slow
the program. The engine then starts over from the ring and says it is not exact. A burst
of such output up to a ring and about 1.4 MB more stays exact."""
LOAD_HOLD = 5.0
SLOW_RATE = 40e6
"""Bytes a second of the engine's own time below which output is too slow to parse to hold
the child back for it (random bytes parse at about 14 MB/s, text at over 100)."""
IDLE = 5.0
"""Seconds a feeder with nothing to feed waits before it ends."""
QUIET = 0.1
LAZY_CHUNK = 16 * 1024
MAX_INCREMENTAL = 256 * 1024
TAIL_FOR_REBUILD = 64 * 1024
SCROLLBACK = 10_000
# A full reset (RIS) or entering the alternate screen: the screen before it does not matter.
_RESET = re.compile(rb"\x1bc|\x1b\[\?(?:1049|1047|47)h")


_ENGINE: list[str] = []
_LOAD_NOT_BEFORE = [0.0]


def defer_loading(seconds: float) -> None:
    """Load no engine for `seconds` (trio's clock): a new image of the daemon that takes
    sessions over serves them first; loading a native engine on a thread meanwhile would
    take the GIL from the event loop for a good part of a second."""
    _LOAD_NOT_BEFORE[0] = trio.current_time() + seconds


def _expected() -> str:
    """The engine every session of this daemon uses, found once."""
    if not _ENGINE:
        _ENGINE.append(expected_engine())
    return _ENGINE[0]


class ScreenView:
    def __init__(
        self,
        session_id: str,
        ring: Ring,
        cols: int,
        rows: int,
        saved: dict[str, Any] | None = None,
    ) -> None:
        self._id = session_id
        self._ring = ring
        self._lock = threading.Lock()
        self.name = _expected()
        self._engine: Engine | None = None
        """Made on first use (the feeder's thread, for a threaded engine): loading a native
        engine takes a good part of a second, which must not stall the event loop."""
        self.threaded = self.name in THREADED
        self.fed = ring.start
        """The offset up to which the engine has seen the output."""
        self.exact = ring.start == 0
        self._sizes: list[tuple[int, int, int]] = [(ring.start, cols, rows)]
        """(offset, cols, rows): the sizes the engine has still to go through."""
        self._wakeup = trio.Event()
        self._progress = trio.Event()
        self._catching_up = False
        self._failed = False
        self.giving_way = False
        self._waited = 0.0  # seconds the reader waited for the engine since it caught up
        self._rate = 1e9  # the engine's recent parse rate, bytes per second of its thread time
        self._feeding = False
        self._nursery: trio.Nursery | None = None
        self._saved: dict[str, Any] | None = None
        if saved is not None and ring.start <= saved["offset"] <= ring.end:
            self._sizes = [(saved["offset"], saved["cols"], saved["rows"]), (ring.end, cols, rows)]
            self._saved = saved
            self.fed = saved["offset"]
            self.exact = bool(saved.get("exact"))
        elif not self.exact:
            self._restart()

    # -- told by the session ----------------------------------------------------------

    def resized(self, cols: int, rows: int) -> None:
        self._sizes.append((self._ring.end, cols, rows))

    def output(self, nursery: trio.Nursery | None) -> None:
        """New output is in the ring."""
        if self.threaded:
            ring = self._ring
            if (
                self._engine is not None
                and 0 < ring.end - self.fed <= INLINE
                and ring.start <= self.fed
                and self._next_resize(self.fed) >= ring.end
                and self._lock.acquire(blocking=False)
            ):
                try:
                    self._apply_sizes()
                    _, data = ring.read(self.fed)
                    self._engine.feed(data)
                    self.fed = ring.end
                finally:
                    self._lock.release()
                return
            self._wakeup.set()
            self._start_feeder()
        elif not self._catching_up and nursery is not None:
            self._catching_up = True
            nursery.start_soon(self._catch_up)

    def free(self) -> int:
        """How much output may enter the ring now without waiting (see `room`)."""
        if not self.threaded or self._failed:
            return 2**62
        return self._ring.capacity - (self._ring.end - self.fed)

    async def room(self, size: int) -> int:
        """How much output may enter the ring now without pushing out any the engine has
        not seen: at most `size`, and the reader waits until that is a fair amount."""
        if not self.threaded or self._failed:
            return size
        if self.giving_way:
            return size  # the engine starts over once the flood is past
        capacity = self._ring.capacity
        wanted = min(size, max(1, capacity // 2))
        # Loading the engine (once per daemon) is worth a wait, so is parsing text (well over
        # 100 MB/s); parsing random bytes is not, beyond MAX_HOLD in all until it has caught up.
        while True:
            slow = self._rate < SLOW_RATE
            budget = (MAX_HOLD - self._waited) if self._engine is not None and slow else LOAD_HOLD
            began = trio.current_time()
            with trio.move_on_after(max(0.0, budget)):
                while (free := capacity - (self._ring.end - self.fed)) < wanted:
                    if self._failed:
                        return size
                    self._wakeup.set()
                    self._start_feeder()
                    await self._progress.wait()
                self._waited += trio.current_time() - began
                return min(size, free)
            self._waited += trio.current_time() - began
            if self._engine is not None and self._rate < SLOW_RATE:
                break
        log.info("the screen gives way to a flood it cannot parse as fast", session=self._id)
        self.giving_way = True
        self._waited = 0.0
        return size

    def start(self, nursery: trio.Nursery) -> None:
        """The session runs: feed what its output already holds (a session taken over)."""
        self._nursery = nursery
        if self.threaded and self.fed < self._ring.end:
            self._start_feeder()

    def _start_feeder(self) -> None:
        if not self._feeding and self._nursery is not None:
            self._feeding = True
            self._nursery.start_soon(self._feed)

    async def _feed(self) -> None:
        """The feeder of a threaded engine: runs while there is output to feed, and a while
        after (an idle session costs no task)."""
        try:
            while True:
                if self.giving_way:
                    end = self._ring.end
                    await trio.sleep(QUIET)
                    if self._ring.end == end:  # the flood is past: start over, keep up again
                        self._restart()
                        self.giving_way = False
                    continue
                if self.fed >= self._ring.end:
                    self._waited = 0.0  # caught up: the reader's budget is whole again
                    with trio.move_on_after(IDLE):
                        await self._wakeup.wait()
                    if not self._wakeup.is_set():
                        return
                    self._wakeup = trio.Event()
                    continue
                if self._engine is None and (wait := _LOAD_NOT_BEFORE[0] - trio.current_time()) > 0:
                    await trio.sleep(wait)
                start = self.fed
                if start < self._ring.start:  # output it never saw is gone: start over
                    self._restart()
                    continue
                stop = min(self._ring.end, self._next_resize(start), start + FEED_CHUNK)
                begin, data = self._ring.read(start, stop - start)
                await trio.to_thread.run_sync(self._feed_locked, data, begin + len(data))
                self._progress.set()
                self._progress = trio.Event()
        except Exception:
            log.exception(
                "the screen engine failed; the screen is no longer kept", session=self._id
            )
            self._failed = True
            self.exact = False
            self._progress.set()
        finally:
            self._feeding = False

    def _create_locked(self) -> None:
        with self._lock:
            _ = self.engine

    @property
    def engine(self) -> Engine:
        """Call only holding the lock."""
        if self._engine is None:
            cols, rows = self._size_at(self.fed)
            try:
                self._engine = open_engine(cols, rows, SCROLLBACK, self.name)
            except EngineUnavailable as exc:
                log.error("screen engine unavailable; pyte serves instead", error=str(exc))
                self.name, self.threaded = "pyte", False
                self._engine = open_engine(cols, rows, SCROLLBACK, self.name)
            if self._saved is not None:
                self._adopt(self._engine, self._saved)
                self._saved = None
        return self._engine

    def _feed_locked(self, data: bytes, stop: int) -> None:
        with self._lock:
            self._apply_sizes()
            began = time.thread_time()
            self.engine.feed(data)
            spent = time.thread_time() - began
            if spent > 0.002:  # the engine's own speed on this output, whatever the load
                self._rate = 0.5 * self._rate + 0.5 * len(data) / spent
            self.fed = stop
            self._apply_sizes()

    # -- reading the screen --------------------------------------------------------------

    async def caught_up(self) -> None:
        """Wait until the engine has seen every byte of output there is now."""
        target = self._ring.end
        if self.threaded and not self._failed:
            if self._engine is None:  # loading a native engine must not stall the loop
                await trio.to_thread.run_sync(self._create_locked)
            while self.fed < target and not self._failed:
                self._wakeup.set()
                self._start_feeder()
                await self._progress.wait()
        else:
            await self._feed_lazily(target)

    @contextlib.contextmanager
    def holding(self) -> Iterator[tuple[int, Engine]]:
        """The engine, to use while this holds its lock, and the offset at which its screen
        stands. Blocks the caller only while a feed of at most FEED_CHUNK bytes ends."""
        with self._lock:
            self._apply_sizes()
            yield self.fed, self.engine

    def export(self) -> dict[str, Any]:
        """The screen as data for a new image of the daemon: it goes on from there exactly."""
        with self.holding() as (offset, engine):
            cols, rows = engine.size
            return {
                "offset": offset,
                "cols": cols,
                "rows": rows,
                "ansi": engine.ansi(),
                "history": engine.history(SCROLLBACK),
                "exact": self.exact,
            }

    @staticmethod
    def _adopt(engine: Engine, saved: dict[str, Any]) -> None:
        history = saved.get("history") or []
        if history:
            engine.feed("\r\n".join(history).encode() + b"\r\n" * saved["rows"])
        engine.feed(saved["ansi"].encode())

    def modes(self) -> Modes:
        """The modes the session's programs left set (for giving a terminal back)."""
        if self._engine is None and self._saved is None:
            from supervisor.screen.types import Modes

            return Modes()  # no output seen: the defaults, without loading an engine
        with self.holding() as (_, engine):
            return engine.snapshot().modes

    def describe(self) -> dict[str, Any]:
        with self.holding() as (_, engine):
            return {"name": engine.name, "version": engine.version}

    # -- the lazy way, for engines that hold the GIL ------------------------------------

    async def _catch_up(self) -> None:
        try:
            while True:
                end = self._ring.end
                await trio.sleep(QUIET)
                if self._ring.end == end:
                    break
            await self._feed_lazily(self._ring.end)
        except Exception:
            log.exception("the screen model failed; it starts over", session=self._id)
            self._restart()
        finally:
            self._catching_up = False

    async def _feed_lazily(self, target: int) -> None:
        ring = self._ring
        while self.fed < target:
            if self.fed < ring.start or ring.end - self.fed > MAX_INCREMENTAL:
                self._restart()
                continue
            stop = min(self._next_resize(self.fed), self.fed + LAZY_CHUNK)
            begin, data = ring.read(self.fed, stop - self.fed)
            self._feed_locked(data, begin + len(data))
            await trio.sleep(0)

    def _restart(self) -> None:
        """Start over on what the ring still holds: from its last full reset if it has one,
        else from the start of a line near its tail; exact only if nothing before can
        matter."""
        start, data = self._ring.snapshot()
        resets = list(_RESET.finditer(data))
        if resets:
            begin, exact = resets[-1].start(), True
        elif start == 0 and len(data) <= TAIL_FOR_REBUILD:
            begin, exact = 0, True
        else:
            begin = max(0, len(data) - TAIL_FOR_REBUILD)
            newline = data.find(b"\n", begin)
            if 0 <= newline < len(data) - 1:
                begin = newline + 1
            exact = False
        with self._lock:
            cols, rows = self._size_at(start + begin)
            self._engine = open_engine(cols, rows, SCROLLBACK, self.name)
            self._saved = None
            self.fed = start + begin
        self.exact = exact and not self._failed

    # -- sizes --------------------------------------------------------------------------

    def _apply_sizes(self) -> None:
        """Under the lock, after a feed: go through the sizes that took effect by `fed`."""
        cols, rows = self._size_at(self.fed)
        if (cols, rows) != self.engine.size:
            self.engine.resize(cols, rows)
        while len(self._sizes) > 1 and self._sizes[1][0] <= self.fed:
            del self._sizes[0]

    def _size_at(self, offset: int) -> tuple[int, int]:
        size = self._sizes[0]
        for entry in self._sizes:
            if entry[0] > offset:
                break
            size = entry
        return size[1], size[2]

    def _next_resize(self, offset: int) -> int:
        for at, _, _ in self._sizes:
            if at > offset:
                return at
        return 2**63
