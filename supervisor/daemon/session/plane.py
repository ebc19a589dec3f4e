"""The daemon's side of the compiled byte plane: one per daemon, shared by its sessions.

The plane's threads drain the masters into the rings and carry output to the terminals
the daemon holds, and keys from them, without the event loop; the task here takes their
events in batches and hands each to whoever registered its handle.

The plane runs in lanes, a thread each. Sessions no terminal is handed to share the first;
a session gets a lane of its own while the plane writes to a terminal of it or reads keys
from one, and goes back when it has none. A lane that carries a flood then never stands
between another terminal's keystroke and its echo: that lane's thread sleeps between
keystrokes, and the system's scheduler runs a thread that wakes from sleep first, as it
does each of dtach's processes. The handles given out here stay the same through a move."""

import contextlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import trio

from supervisor import logs

log = logs.get_logger("supervisor.plane")

Handler = Callable[[int, int, bytes | None], None]
"""Told (kind, value, data) for each event of its handle."""


@dataclass(eq=False)
class _Lane:
    plane: Any
    handlers: dict[int, Handler] = field(default_factory=dict)
    """The lane's own handle -> its handler."""
    retired: list[int] = field(default_factory=list)
    """Handles the lane dropped: their last events are in its next `take`."""
    closing: bool = False


@dataclass(eq=False)
class _Session:
    lane: _Lane
    native: int
    master: int
    ring: Any
    limit: int
    handler: Handler
    users: set[int] = field(default_factory=set)
    """The outputs and inputs the plane holds for it."""
    relaxed: bool = False


@dataclass(eq=False)
class _Port:
    """An output or an input: the session it is of, and its handle on that one's lane."""

    session: _Session
    native: int


class BytePlane:
    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self._notify_r, self._notify_w = os.pipe()
        for fd in (self._notify_r, self._notify_w):
            os.set_blocking(fd, False)
        self._frozen = False
        self._dispatching = False
        self._shared = self._lane()
        self._lanes = [self._shared]
        self._numbers = itertools.count(1)
        self._sessions: dict[int, _Session] = {}
        self._ports: dict[int, _Port] = {}
        self._counted = {"reads": 0, "wakeups": 0}
        """What lanes closed since had counted."""
        self.DATA: int = module.DATA
        self.EOF: int = module.EOF
        self.HELD: int = module.HELD
        self.FLOWING: int = module.FLOWING
        self.RELEASED: int = module.RELEASED
        self.INPUT: int = module.INPUT
        self.DETACH: int = module.DETACH
        self.HANGUP: int = module.HANGUP
        self.STOPPED: int = module.STOPPED

    def _lane(self) -> _Lane:
        lane = _Lane(self.module.Plane(self._notify_w))
        if self._frozen:
            lane.plane.freeze(True)
        return lane

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

    # -- sessions ------------------------------------------------------------------------

    def add_session(self, master: int, ring: Any, limit: int, handler: Handler) -> int:
        native: int = self._shared.plane.add_session(master, ring, limit)
        self._shared.handlers[native] = handler
        handle = next(self._numbers)
        self._sessions[handle] = _Session(self._shared, native, master, ring, limit, handler)
        return handle

    def remove_session(self, handle: int) -> None:
        session = self._sessions.pop(handle, None)
        if session is None:
            raise KeyError(f"no session {handle} on the byte plane")
        lane = session.lane
        lane.plane.remove_session(session.native)  # with its outputs and inputs
        for handle in session.users:
            if (port := self._ports.pop(handle, None)) is not None:
                lane.retired.append(port.native)
        session.users.clear()
        lane.retired.append(session.native)
        if lane is not self._shared:
            self._close_later(lane)

    def set_limit(self, handle: int, limit: int | None) -> None:
        session = self._session(handle)
        session.limit = -1 if limit is None else limit
        session.lane.plane.set_limit(session.native, session.limit)

    def set_relaxed(self, handle: int, relaxed: bool) -> None:
        """Whether Python may hear of the session's output later (20 ms, not 2): no one in
        Python waits for it, every reader being a terminal the plane writes, or none.
        `dispatch` brings it at once when somebody asks."""
        session = self._session(handle)
        if session.relaxed != relaxed:
            session.relaxed = relaxed
            session.lane.plane.set_relaxed(session.native, relaxed)

    def _session(self, handle: int) -> _Session:
        session = self._sessions.get(handle)
        if session is None:
            raise KeyError(f"no session {handle} on the byte plane")
        return session

    def _move(self, session: _Session, to: _Lane) -> None:
        """Carry the session over to another lane: the old one stops reading its master
        before the new one starts, and both fill the same ring, so no byte is read twice
        or lost. An end the old lane saw, the new one sees again."""
        old = session.lane
        old.plane.remove_session(session.native)
        old.retired.append(session.native)
        try:
            native = to.plane.add_session(session.master, session.ring, session.limit)
        except OSError:
            if old.closing or to is old:
                raise
            to, native = old, old.plane.add_session(session.master, session.ring, session.limit)
        to.handlers[native] = session.handler
        session.lane, session.native = to, native
        if session.relaxed:
            to.plane.set_relaxed(native, True)

    # -- outputs and inputs: a session's lane is its own while it has any --------------

    def _claim(self, session_handle: int) -> _Session:
        session = self._session(session_handle)
        if session.lane is self._shared and not session.users:
            lane = self._lane()
            self._lanes.append(lane)
            try:
                self._move(session, lane)
            finally:
                if session.lane is not lane:
                    self._close_later(lane)
        return session

    def _register(self, session: _Session, native: int, handler: Handler) -> int:
        handle = next(self._numbers)
        session.lane.handlers[native] = handler
        session.users.add(handle)
        self._ports[handle] = _Port(session, native)
        return handle

    def _release(self, handle: int) -> _Port | None:
        """Forget an output or input; its session goes back to the shared lane when it
        has none left."""
        port = self._ports.pop(handle, None)
        if port is None:
            return None
        session = port.session
        session.users.discard(handle)
        session.lane.retired.append(port.native)
        self._settle(session)
        return port

    def add_output(self, session: int, fd: int, written: int, hold: int, handler: Handler) -> int:
        owner = self._claim(session)
        try:
            native: int = owner.lane.plane.add_output(owner.native, fd, written, hold)
        except BaseException:
            self._settle(owner)
            raise
        return self._register(owner, native, handler)

    def remove_output(self, handle: int) -> int:
        """Stop writing (or forget an output the plane let go of); where it ends."""
        port = self._ports.get(handle)
        if port is None:
            raise KeyError(f"no output {handle} on the byte plane")
        written: int = port.session.lane.plane.remove_output(port.native)
        self._release(handle)
        return written

    def add_input(
        self, session: int, fd: int, detach_key: int | None, direct: bool, handler: Handler
    ) -> int:
        owner = self._claim(session)
        key = -1 if detach_key is None else detach_key
        try:
            native: int = owner.lane.plane.add_input(owner.native, fd, key, direct)
        except BaseException:
            self._settle(owner)
            raise
        handle = 0

        def on_event(kind: int, value: int, data: bytes | None) -> None:
            if kind in (self.DETACH, self.HANGUP):  # the lane let go of it on its own
                self._release(handle)
            handler(kind, value, data)

        handle = self._register(owner, native, on_event)
        return handle

    def set_direct(self, handle: int, direct: bool) -> bool:
        """Have the plane write the input's keys to the master itself, or hand them to
        Python (INPUT); whether it is so now. The plane takes the master's write side back
        only once Python has handed on every key it was given (`handed_on`)."""
        port = self._ports.get(handle)
        return port is not None and bool(port.session.lane.plane.set_direct(port.native, direct))

    def handed_on(self, handle: int, count: int) -> None:
        """Python handed on (wrote, queued or dropped) `count` bytes of the input's keys: the
        plane reads its terminal while Python owes it fewer than 64 KiB."""
        port = self._ports.get(handle)
        if port is not None:
            port.session.lane.plane.handed_on(port.native, count)

    def remove_input(self, handle: int) -> None:
        port = self._ports.get(handle)
        if port is not None:
            port.session.lane.plane.remove_input(port.native)
            self._release(handle)

    def _settle(self, session: _Session) -> None:
        """Back to the shared lane, once the plane holds no terminal of the session's (it
        stays on its own lane, to go back next time, if the shared one cannot take it)."""
        if not session.users and session.lane is not self._shared:
            lane = session.lane
            self._move(session, self._shared)
            if session.lane is not lane:
                self._close_later(lane)

    # -- the lanes -----------------------------------------------------------------------

    def _close_later(self, lane: _Lane) -> None:
        """The lane is done: the dispatch hands on its last events, then ends its thread."""
        lane.closing = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._notify_w, b"\0")

    def freeze(self, frozen: bool) -> None:
        """Read no terminal from now on (the daemon is about to hand its state over)."""
        self._frozen = frozen
        for lane in self._lanes:
            lane.plane.freeze(frozen)

    def stats(self) -> dict[str, Any]:
        lanes = [lane.plane.stats() for lane in self._lanes if not lane.closing]
        total: dict[str, Any] = {
            key: sum(stats[key] for stats in lanes)
            for key in ("sessions", "outputs", "inputs", "reads", "wakeups")
        }
        for key, value in self._counted.items():
            total[key] += value
        return {
            **total,
            "lanes": len(lanes),
            "running": all(s["running"] for s in lanes),
            "stopped": [s["error"] for s in lanes if not s["running"]],
        }

    # -- the events --------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                await trio.lowlevel.wait_readable(self._notify_r)
                self.dispatch()
        finally:
            self.close()

    def dispatch(self) -> None:
        """Take every lane's events and hand each on; called from a handler, nothing (its
        events wait for the dispatch under way, or the next)."""
        if self._dispatching:
            return
        self._dispatching = True
        try:
            self._dispatch()
        finally:
            self._dispatching = False

    def _dispatch(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._notify_r, 4096):
                pass
        for lane in list(self._lanes):
            retired, lane.retired = lane.retired, []
            closing = lane.closing
            for kind, native, value, data in lane.plane.take():
                if kind == self.STOPPED:
                    log.error("a lane of the byte plane stopped", error=os.strerror(value))
                    continue
                handler = lane.handlers.get(native)
                if handler is None:
                    continue
                try:
                    handler(kind, value, data)
                except Exception:
                    log.exception("a byte plane event failed", kind=kind)
            for native in retired:
                lane.handlers.pop(native, None)
            if closing:
                self._lanes.remove(lane)
                stats = lane.plane.stats()
                for key in self._counted:
                    self._counted[key] += stats[key]
                lane.plane.close()

    def close(self) -> None:
        for lane in self._lanes:
            lane.handlers.clear()
            lane.plane.close()
        self._lanes.clear()
        for fd in (self._notify_r, self._notify_w):
            with contextlib.suppress(OSError):
                os.close(fd)


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
