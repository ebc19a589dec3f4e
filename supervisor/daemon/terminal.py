"""An attached client's own terminal, held by the daemon.

The client passes its terminal with the request (SCM_RIGHTS). From then on the daemon writes
the session's output to it and reads the keys from it itself, as tmux's server does, so that
no byte makes the extra trip through the client process. The client keeps the socket for
events (role, end, detached) and its window size.
"""

import contextlib
import os
import stat
import time
from collections.abc import Awaitable, Callable

import structlog
import trio

from supervisor.daemon.outbox import Poured, Subscription
from supervisor.daemon.session import Session
from supervisor.protocol import BAD_REQUEST, ProtocolError

log = structlog.get_logger("supervisor.terminal")

READ_SIZE = 4096
SETTLE = 0.05
"""After output went to the client (a flood), how long before the daemon takes over the
writing again: in a flood the terminal would only fill up again at once."""
HOLD = 64 * 1024
"""How far the terminal may fall behind before the session stops reading for it: the
terminal then takes the output in large writes rather than one chunk per wake-up."""
REDRAW_INTERVAL = 0.5


def open_terminal(passed: int) -> int:
    """A private open of the terminal behind the descriptor `passed` (which the caller
    still owns): non-blocking without changing the client's own open file, and never
    made the daemon's controlling terminal."""
    info = os.fstat(passed)
    if not stat.S_ISCHR(info.st_mode) or not os.isatty(passed):
        raise ProtocolError(BAD_REQUEST, "terminal: the descriptor passed is not a terminal")
    flags = os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
    paths = [f"/proc/self/fd/{passed}"] if os.path.isdir("/proc/self/fd") else []
    with contextlib.suppress(OSError):
        paths.append(os.ttyname(passed))
    for path in paths:
        try:
            fd = os.open(path, flags)
        except OSError:
            continue
        if os.fstat(fd).st_rdev == info.st_rdev:
            return fd
        os.close(fd)
    raise ProtocolError(BAD_REQUEST, "terminal: the daemon cannot open the terminal passed")


class TerminalLink:
    """One subscription's output written to a terminal, and the keys typed into it read.

    Output goes to the terminal directly while the terminal takes it at once, which is
    what a keystroke's echo and a program's screen updates need. When the terminal would
    block (a flood of output), the rest goes to the client as output frames instead, and
    its blocking writes keep the terminal fed; once the client says it has written all of
    them, output goes direct again. Either way the bytes reach the terminal in order.
    """

    def __init__(
        self,
        fd: int,
        sub: Subscription,
        session: Session,
        deliver: Callable[[Subscription, bytes], Awaitable[None]],
        *,
        detach_key: int | None,
        read_only: bool,
        on_end: Callable[["TerminalLink", str], None],
        start: int,
        keys: bool = True,
    ) -> None:
        self.fd = fd
        self.rdev = os.fstat(fd).st_rdev
        """The terminal's device."""
        self.keys = keys
        """Read keys from the terminal (an attached client); else only write to it."""
        self.sub = sub
        self.session = session
        self.deliver = deliver
        self.detach_key = detach_key
        self.read_only = read_only
        self.on_end = on_end
        self.closed = False
        self.relaying = False
        """The client writes the output for now: frames went out it has not yet written."""
        self._held = True
        """Writing only from the writer task: before `first` is out, and during a redraw."""
        self._wakeup = trio.Event()
        self._wakeup.set()
        self._scope = trio.CancelScope()
        self._last_redraw = 0.0
        self._relayed_at = 0.0
        sub.written = sub.sent = start
        sub.hold = min(sub.hold, HOLD)
        sub.terminal = sub.sink = self

    async def run(self, first: bytes | None) -> None:
        """Write `first` (a redraw), then carry output and keys until closed."""
        if self.closed:
            return
        with self._scope:
            try:
                if first:
                    await self._write_all(first)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer)
                    if self.keys:
                        await self._reader()
                        nursery.cancel_scope.cancel()
            except (OSError, trio.ClosedResourceError):
                self._end("hangup")
            finally:
                self.close()

    # -- output -------------------------------------------------------------------

    def ready(self) -> None:
        """The subscription has something queued: write what the terminal takes now, and
        hand the rest to the client."""
        if self.closed:
            return
        if self.relaying:
            if self.sub.ended:
                self._end("ended")  # the end follows the output frames to the client
            return
        if self._held:
            return
        try:
            poured = self.sub.pour(self.fd)
        except OSError:
            self._end("hangup")
            return
        if poured is Poured.BLOCKED:
            self._relay()
        elif poured is Poured.SKIPPED:
            self._held = True
            self._wakeup.set()
        elif self.sub.ended:
            self._end("ended")

    def _relay(self) -> None:
        self.relaying = True
        self._relayed_at = time.monotonic()
        sub = self.sub
        sub.sink = None
        sub.hold = sub.backlog
        sub.sent = max(sub.sent, sub.written)
        if sub.queued:
            sub.outbox.mark_ready(sub)

    def written(self, offset: int) -> None:
        """The client has written the output frames up to `offset`: if that is all of them,
        and the flood that sent output its way is a while ago, output goes to the terminal
        directly again."""
        sub = self.sub
        if (
            self.relaying
            and not self.closed
            and offset >= sub.sent
            and not sub.queued
            and time.monotonic() - self._relayed_at >= SETTLE
        ):
            sub.outbox.forget(sub)
            self.relaying = False
            sub.written = sub.sent
            sub.hold = min(sub.hold, HOLD)
            sub.sink = self

    async def _writer(self) -> None:
        """Writes only what must wait for the event loop: a redraw after a skip."""
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            while True:
                self._held = True
                poured = self.sub.pour(self.fd)
                if poured is Poured.SKIPPED:
                    await self._redraw()
                    continue
                self._held = False
                if poured is Poured.BLOCKED:
                    self._relay()
                break
            if self.sub.ended and not self.relaying:
                self._end("ended")
                return

    async def _redraw(self) -> None:
        """Output was skipped: show the present screen instead, at most twice a second."""
        wait = self._last_redraw + REDRAW_INTERVAL - time.monotonic()
        if wait > 0:
            await trio.sleep(wait)
        self._last_redraw = time.monotonic()
        model = await self.session.screen()
        offset = self.session.ring.end
        self.sub.discard_before(offset)
        await self._write_all(model.ansi().encode("utf-8", "replace"))

    async def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.fd)

    # -- input --------------------------------------------------------------------

    async def _reader(self) -> None:
        fd = self.fd
        key = self.detach_key
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                continue
            if not data:
                raise OSError("the terminal was closed")
            if key is not None and key in data:
                before = data[: data.index(key)]
                if before and not self.read_only:
                    await self.deliver(self.sub, before)
                self._end("detached")
                return
            if not self.read_only:
                await self.deliver(self.sub, data)

    # -- the end ------------------------------------------------------------------

    def _end(self, why: str) -> None:
        """Stop reading and writing the terminal at once (its client is about to take it
        back), then tell the connection why."""
        if self.closed:
            return
        self.close()
        self.on_end(self, why)

    def close(self) -> None:
        """Let go of the terminal; what is left of the output goes to the client."""
        if self.closed:
            return
        self.closed = True
        if self.sub.terminal is self:
            self.sub.terminal = None
        if self.sub.sink is self:
            self._relay()
        self._scope.cancel()
        trio.lowlevel.notify_closing(self.fd)
        os.close(self.fd)
