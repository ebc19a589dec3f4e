"""Flow control: the child is held back (its terminal not read) only while a lossless
subscriber lags, and an attached terminal holds it back for PATIENCE seconds at most."""

import time
from collections.abc import Callable, Iterable

import trio

from supervisor.daemon.session.subscription import Subscription

PATIENCE = 2.0
"""Seconds an attached terminal may hold its child back before it is skipped instead."""
RESUME_PATIENCE = 10.0
"""Seconds a new image of the daemon holds a child for the lossless subscribers the
previous image had, until they subscribe again."""

_held: trio.Event | None = None
"""While the daemon hands its state over (an upgrade in place): every child that a
lossless subscriber reads is held until this is set."""


def hold_all(held: bool) -> None:
    """Hold back every child a lossless subscriber reads (on the Python byte path; the
    byte plane is frozen instead), or let them go again."""
    global _held
    if held:
        _held = _held or trio.Event()
    elif _held is not None:
        _held.set()
        _held = None


class Flow:
    def __init__(self) -> None:
        self._lossless: set[Subscription] = set()
        self._flowing = trio.Event()
        self._awaited = 0
        """Lossless subscribers of the previous image of the daemon still to come back."""
        self._awaited_until = 0.0
        self._resumed = trio.Event()

    def await_resumes(self, count: int) -> None:
        """Hold the child until `count` lossless subscribers have subscribed again (the
        previous image's, after an upgrade in place), RESUME_PATIENCE seconds at most."""
        self._awaited = count
        self._awaited_until = time.monotonic() + RESUME_PATIENCE

    def _awaiting(self) -> bool:
        if self._awaited > 0 and time.monotonic() > self._awaited_until:
            self._awaited = 0
            self._resumed.set()
        return self._awaited > 0

    @property
    def active(self) -> bool:
        """Some subscriber may hold the child back."""
        return bool(self._lossless) or self._awaiting()

    def add(self, sub: Subscription) -> None:
        if sub.lossless:
            self._lossless.add(sub)
            if self._awaited > 0:
                self._awaited -= 1
                if self._awaited == 0:
                    self._resumed.set()

    def remove(self, sub: Subscription) -> None:
        if sub in self._lossless:
            self._lossless.discard(sub)
            sub.on_drained = None
            self._flowing.set()

    def carried_here(self) -> bool:
        """Some lossless subscriber's output goes through the event loop (not all are
        written by the byte plane, which holds the child back for its own)."""
        return any(not s.native for s in self._lossless)

    def lagging(self) -> bool:
        return any(s.congested for s in self._lossless)

    def congested(self) -> bool:
        """Whether a lossless subscriber lags too far: then reading waits until it drains."""
        if _held is not None:
            self._flowing = _held
            return True
        if self._awaiting():
            self._flowing = self._resumed
            return True
        lagging = [s for s in self._lossless if s.congested]
        if not lagging:
            return False
        self._flowing = trio.Event()
        for sub in lagging:
            sub.on_drained = self._flowing.set
        return True

    async def wait(self, end: Callable[[], int]) -> None:
        """Wait for the lagging subscribers to drain, PATIENCE seconds at most; the patient
        ones that still lag then no longer hold the child back."""
        with trio.move_on_after(PATIENCE):
            await self._flowing.wait()
        self.lose_patience(end(), list(self._lossless))

    def lose_patience(self, end: int, subs: Iterable[Subscription]) -> None:
        for sub in subs:
            if sub.patient and sub.congested:
                self._lossless.discard(sub)
                sub.stop_holding()
                sub.push(end, b"")
