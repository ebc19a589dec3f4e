"""An attached client's own terminal, held by the daemon.

The client passes its terminal with the request (SCM_RIGHTS). From then on the daemon writes
the session's output to it (through the subscription's route) and reads the keys from it
itself, as tmux's server does, so that no byte makes the extra trip through the client
process. The client keeps the socket for events (role, end, detached) and its window size.
On the compiled byte plane, the plane's thread reads the keys and writes them to the
session's terminal while this client drives it and nothing of Python's waits for the
master; the rest comes here as events, in order, and the plane takes the master back only
once every one of them is handed on. It leaves the terminal unread while too many are
not, so that a paste the child does not read waits in the terminal, not in the daemon.
"""

import contextlib
import math
import os
from collections.abc import Awaitable, Callable

import trio

from supervisor.daemon.clients.outbox import Outbox
from supervisor.daemon.clients.planeout import usable
from supervisor.daemon.clients.route import Route, RouteState
from supervisor.daemon.session.session import Session
from supervisor.daemon.session.subscription import Subscription
from supervisor.daemon.system.fd import OwnedFd

READ_SIZE = 4096


class TerminalLink:
    def __init__(
        self,
        terminal: OwnedFd,
        sub: Subscription,
        session: Session,
        outbox: Outbox,
        deliver: Callable[[Subscription, bytes], Awaitable[None]],
        *,
        detach_key: int | None,
        read_only: bool,
        on_end: Callable[["TerminalLink", str], None],
        start: int,
        keys: bool = True,
        input_idle: Callable[[Subscription], bool] = lambda sub: True,
    ) -> None:
        self.terminal = terminal
        self.sub = sub
        self.session = session
        self.keys = keys
        """Read keys from the terminal (an attached client); else only write to it."""
        self.deliver = deliver
        self.detach_key = detach_key
        self.read_only = read_only
        self._on_end = on_end
        self._scope = trio.CancelScope()
        self._input_idle = input_idle
        self._input: int | None = None
        """The terminal's handle on the byte plane, while the plane reads its keys."""
        self.route = Route(
            sub, outbox, terminal=terminal, session=session, start=start, on_end=self.end
        )

    @property
    def closed(self) -> bool:
        return self.terminal.closed

    async def run(self, first: bytes | None) -> None:
        """Write `first` (a redraw), then carry output and keys until closed."""
        if self.closed:
            return
        with self._scope:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self.route.run, first)
                    if self.keys and not await self._plane_keys():
                        await self._reader()
                        nursery.cancel_scope.cancel()
            except (OSError, trio.ClosedResourceError):
                self.end("hangup")
            finally:
                self.close()

    async def _reader(self) -> None:
        fd = self.terminal.fd
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
                self.end("detached")
                return
            if not self.read_only:
                await self.deliver(self.sub, data)

    def _direct(self) -> bool:
        """Whether the plane may write this terminal's keys to the session itself."""
        sub = self.sub
        return (
            not self.read_only
            and not self.session.roles.observes(sub)
            and self._input_idle(sub)
            and not self.session.writer.busy
        )

    def place_keys(self) -> None:
        """Give the master's write side to the plane for this terminal's keys, or take it
        back, as `_direct` says now (the plane refuses it while it is owed keys)."""
        plane = usable(self.session)
        if plane is not None and self._input is not None:
            plane.set_direct(self._input, self._direct())

    async def _plane_keys(self) -> bool:
        """Have the byte plane read the keys, until the link ends; False if it cannot."""
        plane = usable(self.session)
        if plane is None or self.session.reader.handle is None:
            return False
        send, receive = trio.open_memory_channel[tuple[int, bytes | None]](math.inf)
        try:
            self._input = plane.add_input(
                self.session.reader.handle,
                self.terminal.fd,
                self.detach_key,
                self._direct(),
                lambda kind, value, data: send.send_nowait((kind, data)),
            )
        except OSError:  # a terminal the plane cannot watch: the event loop reads it
            return False
        self.sub.on_role = self.place_keys
        self.session.writer.on_busy.append(self.place_keys)
        async with receive:
            async for kind, data in receive:
                if data and not self.read_only:
                    await self.deliver(self.sub, data)
                if kind == plane.INPUT and self._input is not None:
                    plane.handed_on(self._input, len(data or b""))
                if kind == plane.DETACH:
                    self._input = None
                    self.end("detached")
                    return True
                if kind == plane.HANGUP:
                    self._input = None
                    raise OSError("the terminal was closed")
                if receive.statistics().current_buffer_used == 0:
                    self.place_keys()
        return True

    def end(self, why: str) -> None:
        """Stop reading and writing the terminal at once (its client is about to take it
        back), then tell the connection why."""
        if self.closed:
            return
        if why in ("detached", "ended"):
            self.give_back()
        self.close()
        self._on_end(self, why)

    def give_back(self) -> None:
        """Undo on the terminal the modes the session's programs set (alternate screen,
        mouse, bracketed paste, keypad, ...), as far as it takes the bytes at once: its
        client does the same once it has written what it still had to."""
        if self.closed or self.route.state is RouteState.RELAYED:
            return
        try:
            restore = self.session.restore().encode()
            os.write(self.terminal.fd, restore)
        except (OSError, RuntimeError):
            pass

    def close(self) -> None:
        """Let go of the terminal; what is left of the output goes to the client."""
        if self.closed:
            return
        self.sub.on_role = None
        with contextlib.suppress(ValueError):
            self.session.writer.on_busy.remove(self.place_keys)
        plane = usable(self.session)
        if plane is not None and self._input is not None:
            with contextlib.suppress(KeyError):
                plane.remove_input(self._input)
        self._input = None
        self.route.terminal_gone()
        self._scope.cancel()
        self.terminal.close()
