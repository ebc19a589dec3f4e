"""Flow control: the child is held back (its terminal not read) only while a lossless
subscriber lags, and an attached terminal holds it back for PATIENCE seconds at most."""

from collections.abc import Callable, Iterable

import trio

from supervisor.daemon.session.subscription import Subscription

PATIENCE = 2.0
"""Seconds an attached terminal may hold its child back before it is skipped instead."""


class Flow:
    def __init__(self) -> None:
        self._lossless: set[Subscription] = set()
        self._flowing = trio.Event()

    @property
    def active(self) -> bool:
        """Some subscriber may hold the child back."""
        return bool(self._lossless)

    def add(self, sub: Subscription) -> None:
        if sub.lossless:
            self._lossless.add(sub)

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
