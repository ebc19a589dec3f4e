"""One supervised terminal: a coordinator of its parts. The reader drains the PTY into the
ring and on to the subscribers; the writer takes input; flow holds the child back for
lossless readers; roles say who drives; the screen view and the title follow the output."""

import contextlib
import signal
import time
from collections.abc import Callable
from typing import Any

import trio

from supervisor import logs
from supervisor.daemon.session import plane as byteplane
from supervisor.daemon.session.flow import Flow
from supervisor.daemon.session.reader import Reader
from supervisor.daemon.session.ring import Ring
from supervisor.daemon.session.roles import Roles
from supervisor.daemon.session.screenview import ScreenView
from supervisor.daemon.session.subscription import Subscription
from supervisor.daemon.session.title import TitleScanner, rfind_osc
from supervisor.daemon.session.writer import SessionClosed, Writer
from supervisor.daemon.spawn.context import Context
from supervisor.daemon.system import procs
from supervisor.daemon.system.childwatch import wait_exit, wait_gone
from supervisor.daemon.system.fd import OwnedFd
from supervisor.daemon.system.pty import set_size

log = logs.get_logger("supervisor.session")

REPLAY_CHUNK = 256 * 1024
CATCH_UP = 5.0
"""At the end of the output, how long the screen engine may take to see the rest."""
AHEAD = 1024 * 1024
"""On the byte plane, how far its thread may read past the output handed to a lossless
subscriber of the event loop (at most half the ring)."""
POLL = 0.02

Emit = Callable[..., None]


def _no_events(event: str, **fields: Any) -> None:
    pass


class OffsetError(ValueError):
    """A read from an offset past the end of the output."""


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Session:
    def __init__(
        self,
        session_id: str,
        name: str | None,
        argv: list[str],
        cwd: str,
        *,
        pid: int,
        master: OwnedFd,
        tty: str,
        cols: int,
        rows: int,
        ring: Ring,
        context: Context | None,
        on_finished: Callable[["Session"], None],
        title: str | None = None,
        screen: dict[str, Any] | None = None,
    ) -> None:
        self.id = session_id
        self.name = name
        self.argv = argv
        self.cwd = cwd
        self.pid = pid
        self.tty = tty
        self.master = master
        self.cols = cols
        self.rows = rows
        self.context = context
        self.created_at = time.time()
        self.used_at: float | None = None
        """When a client last attached."""
        self.exited_at: float | None = None
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.state = "running"
        self.removed = False
        self.plane = byteplane.current() if not master.closed else None
        """The compiled byte plane this session's output goes through, if any."""
        self.ring = ring if self.plane is None else self.plane.adopt_ring(ring)
        self.published = self.ring.end
        """Where the output handed to the subscribers ends."""
        self.subscribers: dict[int, Subscription] = {}
        self.emit: Emit = _no_events
        self.finished = trio.Event()
        self.gateway_secret: str | None = None
        self.labels: dict[str, str] = {}
        self.exit_known = True
        """False for a child adopted after a crash: it is not ours to wait for."""
        self.parented = True
        self._on_finished = on_finished
        self._terminating: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self.flow = Flow()
        followed = self.ring if self.plane is None else _Published(self)
        self.view = ScreenView(session_id, followed, cols, rows, screen)
        self.reader = Reader(
            master,
            self.flow,
            self._publish,
            lambda: self.ring.end,
            self.view.room,
            self.view.free,
            plane=self.plane,
            ring=self.ring,
            limit=self._read_limit,
            published=self._publish_ring,
        )
        self.writer = Writer(session_id, master)
        self.roles = Roles(session_id, self.resize, lambda: self.state == "running", self._emit)
        finder = self.plane.module.rfind_osc if self.plane is not None else rfind_osc
        self._title = TitleScanner(self._title_changed, title, finder)
        if self.plane is not None and not self.reader.join_plane():
            self.plane = None
        self.readers_changed()

    def _emit(self, event: str, **fields: Any) -> None:
        self.emit(event, **fields)

    @property
    def title(self) -> str | None:
        return self._title.title

    @property
    def controller(self) -> Subscription | None:
        return self.roles.controller

    # -- what clients see ---------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "argv": self.argv,
            "cwd": self.cwd,
            "pid": self.pid,
            "tty": self.tty,
            "state": self.state,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "signal_name": _signal_name(self.signal),
            "cols": self.cols,
            "rows": self.rows,
            "created_at": _iso(self.created_at),
            "used_at": _iso(self.used_at) if self.used_at else None,
            "exited_at": _iso(self.exited_at) if self.exited_at else None,
            "start": self.ring.start,
            "end": self.ring.end,
            "subscribers": len(self.subscribers),
            "attached": len(self.roles.attached),
            "controlled": self.roles.controller is not None,
            "title": self.title,
            "exit_known": self.exit_known,
            "context": self.context.describe() if self.context else None,
            "labels": self.labels,
        }

    # -- running ------------------------------------------------------------------

    async def run(self, drain_timeout: float) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.view.start(nursery)
                if not self.master.closed:
                    nursery.start_soon(self.reader.run)
                else:
                    self.reader.drained.set()
                if not self.finished.is_set():
                    await self._watch(drain_timeout)
                    nursery.cancel_scope.cancel()
        except Exception:
            log.exception("session task failed", session=self.id, pid=self.pid)
            if not self.finished.is_set():
                self._exited()
                self.finished.set()

    def _publish(self, data: bytes) -> None:
        self._fan_out(self.ring.append(data), data)

    def _publish_ring(self) -> None:
        """The byte plane put more output in the ring: hand it on."""
        offset, data = self.ring.read(self.published)
        if data:
            self._fan_out(offset, data)

    def _read_limit(self) -> int | None:
        """How far the byte plane may fill the ring: not past output the engine has not
        seen, while it follows every byte, nor far past what a lossless subscriber that
        the event loop feeds was handed."""
        view = self.view
        limit = None
        if view.free() < 2**61 and not view.giving_way:
            limit = view.fed + self.ring.capacity
        if self.flow.carried_here():
            ahead = self.published + min(AHEAD, self.ring.capacity // 2)
            limit = ahead if limit is None else min(limit, ahead)
        return limit

    def _fan_out(self, offset: int, data: bytes) -> None:
        self.published = offset + len(data)
        for sub in self.subscribers.values():
            sub.push(offset, data, live=True)
        self._title.feed(data)
        self.view.output(self._nursery)

    def _title_changed(self, title: str) -> None:
        self.emit("title", session=self.id, title=title)

    async def _watch(self, drain_timeout: float) -> None:
        if self.parented:
            status = await wait_exit(self.pid)
            self.exit_code, self.signal = procs.decode_status(status)
        else:
            await wait_gone(self.pid)
            self.exit_known = False
        if not await self.reader.drain(drain_timeout) and not self.master.closed:
            with contextlib.suppress(OSError):
                self.reader.drain_once(max(1, self.view.free()))
        if self.view.threaded:  # a lazy engine would parse on the event loop: not at exit
            await self.caught_up()  # the modes to undo are those the program left
        self._publish_ring()
        self._exited()
        for sub in list(self.subscribers.values()):
            self._end_subscription(sub, "exited")
        self.reader.leave_plane()
        self.finished.set()
        self._on_finished(self)

    def _exited(self) -> None:
        self.state = "exited"
        self.writer.running = False
        self.exited_at = time.time()

    # -- subscriptions ----------------------------------------------------------

    def subscribe(self, sub: Subscription, since: int | None) -> dict[str, Any]:
        if self.removed:
            raise SessionClosed(f"session {self.id} was removed")
        self.fresh()
        end = self.published
        if since is None:
            since = end
        elif since > end:
            raise OffsetError(f"offset {since} is past the end of the output ({end})")
        start, data = self.ring.read(since)
        data = data[: max(0, end - start)]
        for i in range(0, len(data), REPLAY_CHUNK):
            sub.push(start + i, data[i : i + REPLAY_CHUNK])
        if not sub.follow:
            sub.push_event("end", reason="complete", offset=end)
        elif self.finished.is_set():
            self._end_subscription(sub, "exited")
        else:
            self.subscribers[sub.key] = sub
            self.flow.add(sub)
            self.readers_changed()
        return {"sub": sub.id, "start": start, "end": end, "truncated": start > since}

    async def caught_up(self) -> None:
        """Until the screen engine has seen all output there is now; CATCH_UP s at most."""
        with trio.move_on_after(CATCH_UP):
            await self.view.caught_up()

    def fresh(self) -> None:
        """Hand on at once what the byte plane has read (it tells only after a read pass,
        20 ms late where every reader is a terminal it writes): `published` is then at
        least any `ring.end` a client was told before."""
        if self.plane is not None:
            self.plane.dispatch()
            self._publish_ring()

    def readers_changed(self) -> None:
        """A subscriber came, went, or moved between the plane and the event loop."""
        if self.plane is not None and self.reader.handle is not None:
            relaxed = all(sub.native for sub in self.subscribers.values())
            self.plane.set_relaxed(self.reader.handle, relaxed)

    def unsubscribe(self, sub: Subscription) -> None:
        self._forget(sub)
        self.roles.detach(sub)

    def _forget(self, sub: Subscription) -> None:
        if self.subscribers.pop(sub.key, None) is not None:
            self.flow.remove(sub)
            self.readers_changed()

    def _end_subscription(self, sub: Subscription, reason: str) -> None:
        restore = self.restore() if sub in self.roles.attached else None
        self._forget(sub)
        self.roles.detach(sub)
        sub.push_event(
            "end",
            reason=reason,
            offset=self.ring.end,
            exit_code=self.exit_code,
            signal=self.signal,
            **({"restore": restore} if restore is not None else {}),
        )

    def restore(self) -> str:
        """What gives a terminal that showed this session back as it was before: every mode
        the session's programs left set, turned off."""
        from supervisor.screen.modes import detach_sequence

        return detach_sequence(self.view.modes())

    def attach(self, sub: Subscription, *, read_only: bool) -> None:
        self.used_at = time.time()
        self.roles.attach(sub, read_only=read_only)

    # -- input, size, signals ---------------------------------------------------

    def resize(self, cols: int, rows: int) -> None:
        if (cols, rows) == (self.cols, self.rows):
            return
        if not self.master.closed:
            set_size(self.master.fd, cols, rows)
        self.view.resized(cols, rows)
        self.cols, self.rows = cols, rows
        for sub in self.subscribers.values():
            sub.refit()

    def send_signal(self, sig: int) -> None:
        if self.state == "running":
            procs.signal_group(self.pid, sig)

    async def terminate(self, grace: float) -> None:
        """End every process of the terminal's session: SIGHUP, SIGTERM, then SIGKILL."""
        if self._terminating is not None:
            await self._terminating.wait()
            return
        done = self._terminating = trio.Event()
        try:
            await procs.end_sessions({self.pid}, grace, POLL)
            with trio.move_on_after(5.0):
                await self.finished.wait()
        finally:
            done.set()

    def close(self) -> None:
        """Forget the terminal: end subscriptions and close the master."""
        self.removed = True
        for sub in list(self.subscribers.values()):
            self._end_subscription(sub, "removed")
        self.reader.leave_plane()
        self.master.close()


class _Published:
    """The ring as far as its output was handed on: what the screen follows, on the byte
    plane, whose thread fills the ring ahead of that."""

    __slots__ = ("_session",)

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def end(self) -> int:
        return self._session.published

    @property
    def start(self) -> int:
        return int(self._session.ring.start)

    @property
    def capacity(self) -> int:
        return int(self._session.ring.capacity)

    def read(self, since: int, limit: int | None = None) -> tuple[int, bytes]:
        start, data = self._session.ring.read(since, limit)
        return start, data[: max(0, self._session.published - start)]

    def snapshot(self) -> tuple[int, bytes]:
        return self.read(self.start)


def _signal_name(sig: int | None) -> str | None:
    if sig is None:
        return None
    try:
        return signal.Signals(sig).name
    except ValueError:
        return None
