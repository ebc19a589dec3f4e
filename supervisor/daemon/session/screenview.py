"""A session's screen model kept in step with its output: fed when the terminal goes quiet
or when somebody asks, through every size the terminal went through on the way."""

import structlog
import trio

from supervisor.daemon.session.ring import Ring
from supervisor.daemon.session.screen import ScreenModel

log = structlog.get_logger("supervisor.screen")

QUIET = 0.1
SCREEN_CHUNK = 16 * 1024
MAX_INCREMENTAL = 256 * 1024


class ScreenView:
    def __init__(self, session_id: str, ring: Ring, cols: int, rows: int) -> None:
        self._id = session_id
        self._ring = ring
        self._model: ScreenModel | None = None
        self._lock: trio.Lock | None = None
        self._sizes: list[tuple[int, int, int]] = [(ring.start, cols, rows)]
        """(offset, cols, rows): the sizes the screen model has still to go through."""
        self._catching_up = False

    def resized(self, cols: int, rows: int) -> None:
        self._sizes.append((self._ring.end, cols, rows))

    def output(self, nursery: trio.Nursery | None) -> None:
        """New output: catch up once the terminal has been quiet a moment."""
        if not self._catching_up and nursery is not None:
            self._catching_up = True
            nursery.start_soon(self._catch_up)

    async def _catch_up(self) -> None:
        try:
            while True:
                end = self._ring.end
                await trio.sleep(QUIET)
                if self._ring.end == end:
                    break
            await self.current()
        except Exception:
            log.exception("the screen model failed; it starts over", session=self._id)
            self._model = None
        finally:
            self._catching_up = False

    async def current(self) -> ScreenModel:
        """The screen model, up to date with every byte of output so far."""
        if self._lock is None:
            self._lock = trio.Lock()
        async with self._lock:
            model = self._model
            if model is None:
                model = self._model = ScreenModel(*self._size_at(0))
            ring = self._ring
            model.resize(*self._size_at(model.offset))
            while model.offset < ring.end:
                if model.offset < ring.start or ring.end - model.offset > MAX_INCREMENTAL:
                    start, data = ring.snapshot()
                    begin = model.restart(start, data)
                    model.resize(*self._size_at(start + begin))
                    pending = data[begin:]
                    for i in range(0, len(pending), SCREEN_CHUNK):
                        model.feed(pending[i : i + SCREEN_CHUNK])
                        await trio.sleep(0)
                    continue
                stop = self._next_resize(model.offset)
                _, data = ring.read(model.offset, min(SCREEN_CHUNK, stop - model.offset))
                model.feed(data)
                if model.offset == stop:
                    model.resize(*self._size_at(stop))
                await trio.sleep(0)
            model.resize(*self._size_at(model.offset))
            self._forget_resizes(model.offset)
            return model

    def _size_at(self, offset: int) -> tuple[int, int]:
        """The terminal size in force when the output at `offset` was written."""
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

    def _forget_resizes(self, offset: int) -> None:
        while len(self._sizes) > 1 and self._sizes[1][0] <= offset:
            del self._sizes[0]
