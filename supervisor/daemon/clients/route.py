"""Where one subscription's output goes: the one owner of that choice.

A plain subscription's output always goes over the socket as frames (RELAYED). One with a
terminal the daemon holds (see `terminal`) moves between states, and only here:

    HELD      only the route's own task writes: the first redraw, a redraw after a skip
    TERMINAL  output is written to the terminal as it comes, while the terminal takes it:
              by the byte plane's thread where there is one (see `planeout`)
    FITTED    the terminal is not the session's size: it gets redraws of the screen fitted
              to its own size, at most 1/FIT_INTERVAL a second, instead of bytes laid out
              for another width
    RELAYED   the terminal would block (a flood): the rest goes to the client as frames, and
              its blocking writes keep the terminal fed; once it says it has written them
              all, and the flood is SETTLE seconds old, back to TERMINAL
    CLOSED    the subscription is gone

Either way the bytes reach the terminal in offset order.
"""

import os
import time
from collections.abc import Awaitable, Callable
from enum import Enum

import trio

from supervisor.daemon.clients.outbox import Outbox
from supervisor.daemon.clients.planeout import PlaneOutput, usable
from supervisor.daemon.session.flow import PATIENCE
from supervisor.daemon.session.session import Session
from supervisor.daemon.session.subscription import Frame, Poured, Subscription
from supervisor.daemon.system.fd import OwnedFd
from supervisor.daemon.system.tty import device
from supervisor.protocol.frames import encode_control
from supervisor.protocol.messages import event_message

SETTLE = 0.05
"""After output went to the client (a flood), how long before the daemon takes over the
writing again: in a flood the terminal would only fill up again at once."""
HOLD = 64 * 1024
"""How far the terminal may fall behind before the session stops reading for it: the
terminal then takes the output in large writes rather than one chunk per wake-up."""
REDRAW_INTERVAL, FIT_INTERVAL = 0.5, 0.1


class RouteState(Enum):
    HELD = "held"
    TERMINAL = "terminal"
    FITTED = "fitted"
    RELAYED = "relayed"
    CLOSED = "closed"


class Route:
    def __init__(
        self,
        sub: Subscription,
        outbox: Outbox,
        *,
        terminal: OwnedFd | None = None,
        session: Session | None = None,
        start: int = 0,
        on_end: Callable[[str], None] | None = None,
    ) -> None:
        self.sub = sub
        self.outbox = outbox
        self._tell: Callable[[Frame], None] = lambda frame: outbox.event(sub.id, frame)
        self.terminal = terminal
        self.rdev = device(terminal.fd) if terminal is not None else None
        """The device of the terminal this route writes to, while it has one."""
        self._session = session
        self._on_end = on_end
        self.hold = sub.backlog
        self._wakeup = trio.Event()
        self._relayed_at = 0.0
        self._last_redraw = 0.0
        self._spawn: Callable[[Callable[[], Awaitable[None]]], None] | None = None
        """For a relayed attach: starts the task that sends it fitted redraws."""
        self._fitting = False
        self._skipped = False
        self._direct: PlaneOutput | None = None
        self._held = False
        """The byte plane holds the child back for this terminal, which lags."""
        self._flowing = trio.Event()
        if terminal is None:
            self.state = RouteState.RELAYED
        else:
            self.state = RouteState.HELD
            self.hold = min(self.hold, HOLD)
            sub.start_at(start)
            self._wakeup.set()
        sub.destination = self

    # -- told by the subscription ------------------------------------------------------

    def fit_relayed(
        self, session: Session, spawn: Callable[[Callable[[], Awaitable[None]]], None]
    ) -> None:
        """This relayed subscription is an attached client's: when its size differs from
        the session's, send it fitted redraws (events) instead of bytes."""
        self._session = session
        self._spawn = spawn

    def ready(self, live: bool) -> None:
        state = self.state
        if state is RouteState.RELAYED:
            if self._spawn is not None and self.terminal is None and not self._fits():
                self._fit_later()
                return
            self.outbox.mark_ready(self.sub, live=live)
            if self.terminal is not None and self.sub.ended:
                self._end("ended")  # the end follows the output frames to the client
        elif state is RouteState.TERMINAL:
            if self._direct is not None and self.sub.ended:
                self._stop_direct()  # the end follows the output the plane did not write
            if self._fits():
                self._pour()
            else:
                self._fit_later()
        elif state is RouteState.FITTED:
            self._fit_later()

    def refit(self) -> None:
        relayed_fit = self._spawn is not None and self.terminal is None
        if self.state is RouteState.RELAYED and relayed_fit and not self._fits():
            self._fit_later()
            return
        if self.state not in (RouteState.TERMINAL, RouteState.FITTED):
            return
        if not self._fits():
            self._fit_later()
        elif self.state is RouteState.FITTED:
            self._wakeup.set()  # a full redraw, then bytes again

    def _fits(self) -> bool:
        """Bytes suit this terminal: it has the session's size, or it is no attached
        client's (`run` streams bytes, whatever the sizes)."""
        sub, session = self.sub, self._session
        if session is None or not sub.cols or not sub.rows:
            return True
        if sub not in session.roles.attached:
            return True
        return (sub.cols, sub.rows) == (session.cols, session.rows)

    def _fit_later(self) -> None:
        """Output for a terminal of another size: drop the bytes; the route's task redraws."""
        self._stop_direct()
        self.state = RouteState.FITTED
        self.sub.drop_output()
        self._wakeup.set()  # the task redraws, a last time too when the session ended
        if self.terminal is None and self._spawn is not None and not self._fitting:
            self._fitting = True
            self._spawn(self._send_fitted)

    async def _send_fitted(self) -> None:
        """A relayed client of another size: redraws of the screen fitted to its size go
        to it as `redraw` events, until the sizes agree again or the session ends."""
        assert self._session is not None
        sub = self.sub
        try:
            while self.state is RouteState.FITTED:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                offset, redraw, fits = await self._fitted_redraw()
                frame = event_message("redraw", sub.id, ansi=redraw, offset=offset)
                self.outbox.redraw(sub.id, encode_control(frame))
                if fits:
                    self.state = RouteState.RELAYED
                    if sub.queued:
                        self.outbox.mark_ready(sub)
                    continue
                sub.drop_output(self._tell)  # its events go after the screen: an end too
                if sub.ended:
                    return
                if offset < self._session.ring.end:
                    self._wakeup.set()
        finally:
            self._fitting = False

    def _pour(self) -> None:
        assert self.terminal is not None
        try:
            poured = self.sub.pour(self.terminal.fd, self._tell)
        except OSError:
            self._end("hangup")
            return
        if poured is Poured.BLOCKED:
            self._relay()
        elif poured is Poured.SKIPPED:
            self.state = RouteState.HELD
            self._skipped = True  # the task redraws before it writes what came after
            self._wakeup.set()
        elif self.sub.ended:
            self._end("ended")
        else:
            self._go_direct()

    # -- the byte plane's writing ------------------------------------------------------

    def _go_direct(self) -> None:
        """Nothing is queued: from here the byte plane writes the output as it reads it."""
        plane = usable(self._session)
        if plane is None or self._direct is not None or self.terminal is None:
            return
        if self.sub.queued or self.state is not RouteState.TERMINAL:
            return
        assert self._session is not None
        try:
            self._direct = PlaneOutput(
                plane, self._session, self.sub, self.terminal.fd, self._plane_event
            )
        except OSError:  # a terminal the plane cannot watch: the event loop writes to it
            self.sub.native = False

    def _stop_direct(self) -> None:
        direct, self._direct = self._direct, None
        if direct is not None:
            direct.stop()
        self._held = False
        self._flowing.set()

    def _plane_event(self, kind: int, value: int) -> None:
        plane = usable(self._session)
        if plane is None or self._direct is None:
            return
        if kind == plane.RELEASED:
            self._stop_direct()
            self._pour()  # a flood it may not hold the child for, or output it fell behind
        elif kind == plane.HANGUP:
            self._stop_direct()
            self._end("hangup")
        elif kind == plane.HELD and self.sub.patient:
            self._held = True
            self._flowing = trio.Event()
            self._wakeup.set()
        elif kind == plane.FLOWING:
            self._held = False
            self._flowing.set()

    async def _be_patient(self) -> None:
        """The terminal holds the child back: for PATIENCE seconds at most, then it is no
        longer lossless, and its output goes by frames, skipped forward when it lags."""
        flowing = self._flowing
        with trio.move_on_after(PATIENCE):
            await flowing.wait()
        if not flowing.is_set() and self._held and self._direct is not None:
            self._stop_direct()
            if self._session is not None:
                self._session.flow.remove(self.sub)
            self.sub.stop_holding()
            self._relay()

    # -- moving between states ---------------------------------------------------------

    def _relay(self) -> None:
        self.state = RouteState.RELAYED
        self._relayed_at = time.monotonic()
        self.hold = self.sub.backlog
        self.sub.relayed()
        self.sub.hold_raised()
        if self.sub.queued:
            self.outbox.mark_ready(self.sub)

    def written(self, offset: int) -> None:
        """The client has written the output frames up to `offset`: if that is all of them,
        and the flood that sent output its way is a while ago, write directly again."""
        sub = self.sub
        if (
            self.state is RouteState.RELAYED
            and self.terminal is not None
            and offset >= sub.sent
            and not sub.queued
            and time.monotonic() - self._relayed_at >= SETTLE
        ):
            self.outbox.forget(sub)
            self.state = RouteState.TERMINAL
            sub.direct()
            self.hold = min(self.hold, HOLD)
            self._go_direct()

    def terminal_gone(self) -> None:
        """The terminal is let go: what is left of the output goes to the client."""
        self._stop_direct()
        if self.state in (RouteState.HELD, RouteState.TERMINAL):
            self._relay()
        self.terminal = None
        self.rdev = None

    def close(self) -> None:
        self.terminal_gone()
        self.state = RouteState.CLOSED
        self._wakeup.set()

    def _end(self, why: str) -> None:
        if self._on_end is not None:
            self._on_end(why)

    # -- the route's own task, for a terminal --------------------------------------------

    async def run(self, first: bytes | None) -> None:
        """Write `first` (a redraw), then whatever must wait for the event loop: a redraw
        after a skip, and the redraws of a terminal of another size."""
        if first:
            await self._write_all(first)
        while self.terminal is not None:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            if self._held and self._direct is not None:
                await self._be_patient()
                continue
            if self._direct is not None:
                continue
            if self.state is not RouteState.RELAYED and not self._fits():
                self.state = RouteState.FITTED
            if self.state is RouteState.FITTED:
                await self._refit()
                if self.sub.ended:
                    self._end("ended")
                    return
                if self.state is RouteState.FITTED:
                    continue
            elif self.state is RouteState.RELAYED:
                continue
            while self.terminal is not None:
                self.state = RouteState.HELD
                if self._skipped:
                    self._skipped = False
                    await self._redraw()
                poured = self.sub.pour(self.terminal.fd, self._tell)
                if poured is Poured.SKIPPED:
                    await self._redraw()
                    continue
                self.state = RouteState.TERMINAL
                if poured is Poured.BLOCKED:
                    self._relay()
                elif not self.sub.ended:
                    self._go_direct()
                break
            if self.sub.ended and self.state is not RouteState.RELAYED:
                self._end("ended")
                return

    async def _fitted_redraw(self) -> tuple[int, str, bool]:
        """At most 1/FIT_INTERVAL a second: the screen at the client's size (the whole screen
        once the sizes agree), the offset it stands at, and whether the sizes agree; once
        they do, the output it shows leaves the queue (else the caller drops all)."""
        assert self._session is not None
        wait = self._last_redraw + FIT_INTERVAL - time.monotonic()
        if wait > 0:
            await trio.sleep(wait)
        self._last_redraw = time.monotonic()
        view = self._session.view
        await self._session.caught_up()
        fits = self._fits()
        sub = self.sub
        with view.holding() as (offset, engine):
            if fits:
                redraw = engine.ansi()
            else:
                from supervisor.screen.fit import fitted

                redraw = fitted(engine, sub.cols or engine.size[0], sub.rows or engine.size[1])
        if fits:
            sub.discard_before(offset)
        return offset, redraw, fits

    async def _refit(self) -> None:
        """Redraw the screen at the terminal's own size, then carry on: with bytes again
        once the sizes agree."""
        assert self._session is not None
        offset, redraw, fits = await self._fitted_redraw()
        if fits:  # what comes while the redraw is written waits, for the caller to pour
            self.state = RouteState.HELD
        else:
            self.sub.drop_output(self._tell)
        await self._write_all(redraw.encode("utf-8", "replace"))
        if not fits and offset < self._session.ring.end:
            self._wakeup.set()

    async def _redraw(self) -> None:
        """Output was skipped: show the present screen instead, at most twice a second."""
        assert self._session is not None
        wait = self._last_redraw + REDRAW_INTERVAL - time.monotonic()
        if wait > 0:
            await trio.sleep(wait)
        self._last_redraw = time.monotonic()
        view = self._session.view
        await self._session.caught_up()
        with view.holding() as (offset, engine):
            redraw = engine.ansi()
        self.sub.discard_before(offset)
        await self._write_all(redraw.encode("utf-8", "replace"))

    async def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.terminal is not None:
            try:
                view = view[os.write(self.terminal.fd, view) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.terminal.fd)
