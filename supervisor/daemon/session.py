"""One supervised terminal: its child, its output, its subscribers, its end."""

import contextlib
import errno
import os
import select
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
import trio

from supervisor.daemon import pty
from supervisor.daemon.childwatch import wait_exit, wait_gone
from supervisor.daemon.context import Context
from supervisor.daemon.outbox import Subscription
from supervisor.daemon.ring import Ring
from supervisor.daemon.screen import ScreenModel, last_title
from supervisor.daemon.state import SessionState

log = structlog.get_logger("supervisor.session")

READ_SIZE = 65536
MAX_BATCH = 256 * 1024
REPLAY_CHUNK = 256 * 1024
POLL = 0.02
QUIET = 0.1
PATIENCE = 2.0
"""Seconds an attached terminal may hold its child back before it is skipped instead."""
SCREEN_CHUNK = 16 * 1024
ECHO_WAIT = 0.0002
"""After a keystroke, how long the daemon waits for the terminal's answer before it goes
back to the event loop: a typed key's echo then goes out without a trip through it."""
ECHO_MISSES = 3
ECHO_PAUSE = 1.0
"""After ECHO_MISSES keystrokes in a row that no answer followed in time, how long the
daemon stops waiting for one (a program that does not echo, or answers slowly)."""
ECHO_KEY = 16
"""Input at most this long is a keystroke (or a key's escape sequence), not a paste."""
MAX_INCREMENTAL = 256 * 1024

Emit = Callable[..., None]


def _no_events(event: str, **fields: Any) -> None:
    pass


class SessionClosed(Exception):
    pass


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Session:
    def __init__(
        self,
        session_id: str,
        name: str | None,
        argv: list[str],
        cwd: str,
        child: pty.Child,
        cols: int,
        rows: int,
        ring_size: int,
        context: Context | None,
        on_finished: Callable[["Session"], None],
    ) -> None:
        self.id = session_id
        self.name = name
        self.argv = argv
        self.cwd = cwd
        self.pid = child.pid
        self.tty = child.tty
        self.master = child.master
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
        self.ring = Ring(ring_size)
        self.subscribers: dict[int, Subscription] = {}
        self._on_finished = on_finished
        self._write_lock: trio.StrictFIFOLock | None = None  # made on first use: idle sessions
        # are many, and should cost little
        self._drained = trio.Event()
        self.finished = trio.Event()
        self._terminating: trio.Event | None = None
        self._master_open = True
        self.title: str | None = None
        self._title_tail = b""
        self.emit: Emit = _no_events
        self.controller: Subscription | None = None
        self.attached: list[Subscription] = []
        self._screen: ScreenModel | None = None
        self._screen_lock: trio.Lock | None = None
        self._sizes: list[tuple[int, int, int]] = [(0, cols, rows)]
        """(offset, cols, rows): the sizes the screen model has still to go through."""
        self._catching_up = False
        self._nursery: trio.Nursery | None = None
        self._lossless = 0
        self._flowing = trio.Event()
        self.gateway_secret: str | None = None
        self.exit_known = True
        """False for a child adopted after a crash: it is not ours to wait for."""
        self.parented = True

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
            "attached": len(self.attached),
            "controlled": self.controller is not None,
            "title": self.title,
            "exit_known": self.exit_known,
            "context": self.context.describe() if self.context else None,
        }

    # -- the tasks that run a session -------------------------------------------

    # -- handing over to a new daemon ---------------------------------------------

    def export(self) -> SessionState:
        _, scrollback = self.ring.snapshot()
        return SessionState(
            id=self.id,
            name=self.name,
            argv=self.argv,
            cwd=self.cwd,
            pid=self.pid,
            tty=self.tty,
            master=self.master if self._master_open else None,
            cols=self.cols,
            rows=self.rows,
            created_at=self.created_at,
            exited_at=self.exited_at,
            exit_code=self.exit_code,
            signal=self.signal,
            state=self.state,
            title=self.title,
            context=self.context.describe() if self.context else None,
            ring_end=self.ring.end,
            scrollback=scrollback,
            exit_known=self.exit_known,
            parented=self.parented,
            gateway_secret=self.gateway_secret,
        )

    @classmethod
    def restore(
        cls, saved: SessionState, ring_size: int, on_finished: Callable[["Session"], None]
    ) -> "Session":
        child = pty.Child(saved.pid, saved.master if saved.master is not None else -1, saved.tty)
        session = cls(
            saved.id,
            saved.name,
            saved.argv,
            saved.cwd,
            child,
            saved.cols,
            saved.rows,
            ring_size,
            Context.from_dict(saved.context) if saved.context else None,
            on_finished,
        )
        session.ring = Ring(ring_size, end=saved.ring_end - len(saved.scrollback))
        session.ring.append(saved.scrollback)
        session._sizes = [(session.ring.start, saved.cols, saved.rows)]
        session.created_at = saved.created_at
        session.exited_at = saved.exited_at
        session.exit_code = saved.exit_code
        session.signal = saved.signal
        session.state = saved.state
        session.title = saved.title
        session.exit_known = saved.exit_known
        session.parented = saved.parented
        session.gateway_secret = saved.gateway_secret
        if saved.master is None:
            session._master_open = False
            session._drained.set()
        else:
            os.set_inheritable(saved.master, False)
            os.set_blocking(saved.master, False)
        if saved.state == "exited":
            session.finished.set()
        return session

    async def run(self, drain_timeout: float) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._master_open:
                    nursery.start_soon(self._read_loop)
                if not self.finished.is_set():
                    await self._watch(drain_timeout)
                    nursery.cancel_scope.cancel()
        except Exception:
            log.exception("session task failed", session=self.id, pid=self.pid)
            if not self.finished.is_set():
                self.state = "exited"
                self.exited_at = time.time()
                self.finished.set()

    async def _read_loop(self) -> None:
        fd = self.master
        try:
            while True:
                if self._lossless and self._congested():
                    with trio.move_on_after(PATIENCE):
                        await self._flowing.wait()
                    self._lose_patience()
                await trio.lowlevel.wait_readable(fd)
                if self._drain_once() < 0:
                    break
        except (trio.ClosedResourceError, OSError):
            pass
        finally:
            self._drained.set()

    def _drain_once(self) -> int:
        """Read until the master would block; publish one batch. The bytes read, or -1 at
        the end of output."""
        chunks: list[bytes] = []
        size = 0
        alive = True
        while size < MAX_BATCH:
            try:
                data = os.read(self.master, READ_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                alive = False
                break
            if not data:
                alive = False
                break
            chunks.append(data)
            size += len(data)
        if chunks:
            self._publish(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        return size if alive else -1

    _echo_misses = 0
    _echo_resume = 0.0

    def catch_echo(self) -> None:
        """Just after a keystroke was written: read the answer if it comes within ECHO_WAIT."""
        if self._echo_misses >= ECHO_MISSES:
            if time.monotonic() < self._echo_resume:
                return
            self._echo_misses = 0
        if not self._master_open or (self._lossless and self._lagging()):
            return
        try:
            ready, _, _ = select.select([self.master], [], [], ECHO_WAIT)
        except (OSError, ValueError):
            return
        if not ready:
            self._echo_misses += 1
            if self._echo_misses >= ECHO_MISSES:
                self._echo_resume = time.monotonic() + ECHO_PAUSE
            return
        self._echo_misses = 0
        with contextlib.suppress(OSError):
            self._drain_once()  # at the end of output, the read loop finds it again

    def _lagging(self) -> bool:
        return any(s.lossless and s.congested for s in self.subscribers.values())

    def _publish(self, data: bytes) -> None:
        offset = self.ring.append(data)
        for sub in self.subscribers.values():
            sub.push(offset, data, live=True)
        if self._title_tail or b"\x1b]" in data:
            self._scan_title(self._title_tail + data)
        if not self._catching_up and self._nursery is not None:
            self._catching_up = True
            self._nursery.start_soon(self._catch_up)

    def _scan_title(self, data: bytes) -> None:
        title = last_title(data)
        if title is not None and title != self.title:
            self.title = title
            self.emit("title", session=self.id, title=title)
        start = data.rfind(b"\x1b]")
        unterminated = start >= 0 and not any(t in data[start:] for t in (b"\x07", b"\x1b\\"))
        self._title_tail = data[start:] if unterminated and len(data) - start < 4096 else b""

    # -- the screen -------------------------------------------------------------

    async def _catch_up(self) -> None:
        """Bring the screen model up to date once the terminal has been quiet a moment."""
        try:
            while True:
                end = self.ring.end
                await trio.sleep(QUIET)
                if self.ring.end == end:
                    break
            await self.screen()
        except Exception:
            log.exception("the screen model failed; it starts over", session=self.id)
            self._screen = None
        finally:
            self._catching_up = False

    async def screen(self) -> ScreenModel:
        """The screen model, up to date with every byte of output so far."""
        if self._screen_lock is None:
            self._screen_lock = trio.Lock()
        async with self._screen_lock:
            model = self._screen
            if model is None:
                model = self._screen = ScreenModel(*self._size_at(0))
            ring = self.ring
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

    async def _watch(self, drain_timeout: float) -> None:
        if self.parented:
            status = await wait_exit(self.pid)
            self.exit_code, self.signal = pty.decode_status(status)
        else:
            await wait_gone(self.pid)
            self.exit_known = False
        with trio.move_on_after(drain_timeout):
            await self._drained.wait()
        if not self._drained.is_set() and self._master_open:
            with contextlib.suppress(OSError):
                self._drain_once()
        self.state = "exited"
        self.exited_at = time.time()
        for sub in list(self.subscribers.values()):
            self._end_subscription(sub, "exited")
        self.finished.set()
        self._on_finished(self)

    # -- subscriptions ----------------------------------------------------------

    def subscribe(self, sub: Subscription, since: int | None) -> dict[str, Any]:
        if self.removed:
            raise SessionClosed(f"session {self.id} was removed")
        end = self.ring.end
        if since is None:
            since = end
        elif since > end:
            raise ValueError(f"offset {since} is past the end of the output ({end})")
        start, data = self.ring.read(since)
        for i in range(0, len(data), REPLAY_CHUNK):
            sub.push(start + i, data[i : i + REPLAY_CHUNK])
        if not sub.follow:
            sub.push_event("end", reason="complete", offset=end)
        elif self.finished.is_set():
            self._end_subscription(sub, "exited")
        else:
            self.subscribers[sub.key] = sub
            if sub.lossless:
                self._lossless += 1
        return {"sub": sub.id, "start": start, "end": end, "truncated": start > since}

    def _congested(self) -> bool:
        """Whether a lossless subscriber lags too far: then reading waits for it to drain."""
        lagging = [s for s in self.subscribers.values() if s.lossless and s.congested]
        if not lagging:
            return False
        self._flowing = trio.Event()
        for sub in lagging:
            sub.on_drained = self._flowing.set
        return True

    def _lose_patience(self) -> None:
        """An attached client that stays behind for PATIENCE seconds no longer holds the
        child back: it is skipped forward from now on (and redraws from the screen)."""
        for sub in list(self.subscribers.values()):
            if sub.lossless and sub.patient and sub.congested:
                sub.lossless = False
                self._lossless -= 1
                sub.push(self.ring.end, b"")

    def unsubscribe(self, sub: Subscription) -> None:
        self._forget(sub)
        self._detach(sub)

    def _forget(self, sub: Subscription) -> None:
        if self.subscribers.pop(sub.key, None) is not None and sub.lossless:
            self._lossless -= 1
            sub.on_drained = None
            self._flowing.set()

    def _end_subscription(self, sub: Subscription, reason: str) -> None:
        self._forget(sub)
        self._detach(sub)
        sub.push_event(
            "end",
            reason=reason,
            offset=self.ring.end,
            exit_code=self.exit_code,
            signal=self.signal,
        )

    # -- input, size, signals ---------------------------------------------------

    def try_write(self, data: bytes) -> int:
        """Write what the terminal takes now, without waiting; 0 if a writer is waiting."""
        if self.state != "running" or not self._master_open:
            raise SessionClosed(f"session {self.id} has exited; it takes no input")
        if self._write_lock is not None and self._write_lock.locked():
            return 0
        view = memoryview(data)
        written = 0
        while written < len(data):
            try:
                written += os.write(self.master, view[written:])
            except BlockingIOError:
                break
            except OSError as exc:
                raise SessionClosed(f"session {self.id}: the terminal is gone") from exc
        return written

    async def write(self, data: bytes) -> int:
        if self.state != "running" or not self._master_open:
            raise SessionClosed(f"session {self.id} has exited; it takes no input")
        view = memoryview(data)
        if self._write_lock is None:
            self._write_lock = trio.StrictFIFOLock()
        async with self._write_lock:
            while view:
                if not self._master_open:
                    raise SessionClosed(f"session {self.id} was removed")
                try:
                    n = os.write(self.master, view)
                except BlockingIOError:
                    try:
                        await trio.lowlevel.wait_writable(self.master)
                    except trio.ClosedResourceError:
                        raise SessionClosed(f"session {self.id} was removed") from None
                    continue
                except OSError as exc:
                    raise SessionClosed(f"session {self.id}: the terminal is gone") from exc
                view = view[n:]
        return len(data)

    def resize(self, cols: int, rows: int) -> None:
        if (cols, rows) == (self.cols, self.rows):
            return
        if self._master_open:
            pty.set_size(self.master, cols, rows)
        self._sizes.append((self.ring.end, cols, rows))
        self.cols, self.rows = cols, rows

    # -- attached clients: one controller, any number of observers --------------

    def attach(self, sub: Subscription, *, read_only: bool) -> None:
        """Add an attached client; an interactive one takes control."""
        self.attached.append(sub)
        self.used_at = time.time()
        if not read_only:
            self._set_controller(sub)

    def _detach(self, sub: Subscription) -> None:
        if sub in self.attached:
            self.attached.remove(sub)
        if self.controller is sub:
            heirs = [s for s in self.attached if s.input]
            self._set_controller(heirs[-1] if heirs else None)

    def _set_controller(self, sub: Subscription | None) -> None:
        previous = self.controller
        if previous is sub:
            return
        self.controller = sub
        if previous is not None and previous in self.attached:
            previous.push_event("role", role="observer", session=self.id)
        if sub is not None:
            sub.push_event("role", role="controller", session=self.id)
            if sub.cols and sub.rows and self.state == "running":
                self.resize(sub.cols, sub.rows)
        self.emit(
            "controller",
            session=self.id,
            controller=None if sub is None else {"sub": sub.id, "client": sub.outbox.client},
        )

    def client_resize(self, sub: Subscription, cols: int, rows: int) -> bool:
        """A window size from an attached client: it counts only from the controller."""
        sub.cols, sub.rows = cols, rows
        if self.controller is sub:
            self.resize(cols, rows)
            return True
        return False

    def send_signal(self, sig: int) -> None:
        if self.state == "running":
            pty.signal_group(self.pid, sig)

    async def terminate(self, grace: float) -> None:
        """End every process of the terminal's session: SIGHUP, SIGTERM, then SIGKILL."""
        if self._terminating is not None:
            await self._terminating.wait()
            return
        done = self._terminating = trio.Event()
        try:
            await pty.end_sessions({self.pid}, grace, POLL)
            with trio.move_on_after(5.0):
                await self.finished.wait()
        finally:
            done.set()

    def close(self) -> None:
        """Forget the terminal: end subscriptions and close the master."""
        self.removed = True
        for sub in list(self.subscribers.values()):
            self._end_subscription(sub, "removed")
        if self._master_open:
            self._master_open = False
            trio.lowlevel.notify_closing(self.master)
            os.close(self.master)


def _signal_name(sig: int | None) -> str | None:
    if sig is None:
        return None
    try:
        return signal.Signals(sig).name
    except ValueError:
        return None
