"""A route's output carried by the compiled byte plane: the plane's thread writes the
session's output to the terminal as it reads it, with no trip through the event loop, and
the route hears when the terminal blocks or falls behind."""

import contextlib
from collections.abc import Callable

from supervisor.daemon.session.plane import BytePlane
from supervisor.daemon.session.session import Session
from supervisor.daemon.session.subscription import Subscription

HOLD = 64 * 1024
"""How far a lossless subscriber's terminal may fall behind before the plane stops reading
the child for it (the flow control of a real terminal)."""


class PlaneOutput:
    def __init__(
        self,
        plane: BytePlane,
        session: Session,
        sub: Subscription,
        fd: int,
        on_event: Callable[[int, int], None],
    ) -> None:
        assert session.reader.handle is not None
        self._plane = plane
        self._session = session
        self._sub = sub
        self._on_event = on_event
        hold = HOLD if sub.lossless else -1
        self._handle: int | None = plane.add_output(
            session.reader.handle, fd, sub.written, hold, self._event
        )
        sub.native = True
        session.readers_changed()

    def _event(self, kind: int, value: int, data: bytes | None) -> None:
        if self._handle is not None and kind in (self._plane.HELD, self._plane.FLOWING):
            self._session.reader.held_by(self, kind == self._plane.HELD)
        self._on_event(kind, value)

    def stop(self) -> int:
        """Let go of the terminal: the output the plane did not write is queued again on
        the subscription, first. Where the plane's writing ended."""
        handle, self._handle = self._handle, None
        self._session.reader.held_by(self, False)
        sub = self._sub
        written = sub.written
        if handle is not None:
            with contextlib.suppress(KeyError):
                written = self._plane.remove_output(handle)
        session = self._session
        rest = session.ring.read(written)
        end = session.published
        sub.take_back(written, (rest[0], rest[1][: max(0, end - rest[0])]))
        session.readers_changed()
        return written

    @property
    def active(self) -> bool:
        return self._handle is not None


def usable(session: Session | None) -> BytePlane | None:
    """The byte plane, if `session` is on one."""
    if session is None or session.plane is None or session.reader.handle is None:
        return None
    return session.plane
