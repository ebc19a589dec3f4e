"""The daemon's side of the compiled byte plane: one per daemon, shared by its sessions.

The plane's thread drains the masters into the rings and carries output to the terminals
the daemon holds, and keys from them, without the event loop; the task here takes its
events in batches and hands each to whoever registered its handle."""

from collections.abc import Callable
from types import ModuleType
from typing import Any

import trio

from supervisor import logs

log = logs.get_logger("supervisor.plane")

Handler = Callable[[int, int, bytes | None], None]
"""Told (kind, value, data) for each event of its handle."""


class BytePlane:
    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self._plane: Any = module.Plane()
        self._handlers: dict[int, Handler] = {}
        self.DATA: int = module.DATA
        self.EOF: int = module.EOF
        self.HELD: int = module.HELD
        self.FLOWING: int = module.FLOWING
        self.RELEASED: int = module.RELEASED
        self.INPUT: int = module.INPUT
        self.DETACH: int = module.DETACH
        self.HANGUP: int = module.HANGUP

    def ring(self, capacity: int, end: int = 0) -> Any:
        return self.module.Ring(capacity, end)

    def adopt_ring(self, ring: Any) -> Any:
        """The same output in a ring the plane's thread can fill."""
        if isinstance(ring, self.module.Ring):
            return ring
        start, data = ring.snapshot()
        native = self.module.Ring(ring.capacity, start)
        native.append(data)
        return native

    # -- registrations; each handle's events go to its handler -------------------------

    def add_session(self, master: int, ring: Any, limit: int, handler: Handler) -> int:
        handle: int = self._plane.add_session(master, ring, limit)
        self._handlers[handle] = handler
        return handle

    def remove_session(self, handle: int) -> None:
        self._handlers.pop(handle, None)
        self._plane.remove_session(handle)

    def set_limit(self, handle: int, limit: int | None) -> None:
        self._plane.set_limit(handle, -1 if limit is None else limit)

    def add_output(self, session: int, fd: int, written: int, hold: int, handler: Handler) -> int:
        handle: int = self._plane.add_output(session, fd, written, hold)
        self._handlers[handle] = handler
        return handle

    def remove_output(self, handle: int) -> int:
        """Stop writing (or forget an output the plane let go of); where it ends."""
        self._handlers.pop(handle, None)
        written: int = self._plane.remove_output(handle)
        return written

    def add_input(
        self, session: int, fd: int, detach_key: int | None, direct: bool, handler: Handler
    ) -> int:
        key = -1 if detach_key is None else detach_key
        handle: int = self._plane.add_input(session, fd, key, direct)
        self._handlers[handle] = handler
        return handle

    def set_direct(self, handle: int, direct: bool) -> None:
        self._plane.set_direct(handle, direct)

    def remove_input(self, handle: int) -> None:
        self._handlers.pop(handle, None)
        self._plane.remove_input(handle)

    def freeze(self, frozen: bool) -> None:
        """Read no terminal from now on (the daemon is about to hand its state over)."""
        self._plane.freeze(frozen)

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._plane.stats()
        return stats

    # -- the events --------------------------------------------------------------------

    async def run(self) -> None:
        fd = self._plane.fileno()
        try:
            while True:
                await trio.lowlevel.wait_readable(fd)
                self.dispatch()
        finally:
            self.close()

    def dispatch(self) -> None:
        for kind, handle, value, data in self._plane.take():
            handler = self._handlers.get(handle)
            if handler is None:
                continue
            try:
                handler(kind, value, data)
            except Exception:
                log.exception("a byte plane event failed", kind=kind)

    def close(self) -> None:
        self._handlers.clear()
        self._plane.close()


_current: BytePlane | None = None
_why = "the pure-Python byte path"


def configure(module: ModuleType | None, why: str) -> None:
    """Which byte path this daemon runs; its plane starts with `start`."""
    global _current, _why
    _current = BytePlane(module) if module is not None else None
    _why = why


def current() -> BytePlane | None:
    return _current


def describe() -> dict[str, Any]:
    if _current is None:
        return {"byte_path": "python", "why": _why}
    return {"byte_path": "native", "why": _why, **_current.stats()}
