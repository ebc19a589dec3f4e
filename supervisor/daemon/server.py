"""The daemon: accepts connections and answers each op through the registry."""

import contextlib
import os
import sys
import time
from typing import Any

import structlog
import trio

import supervisor
from supervisor.daemon import about
from supervisor.daemon.connection import Connection
from supervisor.daemon.context import Context, ProjectCache, decide
from supervisor.daemon.peers import peer_of
from supervisor.daemon.registry import Registry, parse_signal
from supervisor.daemon.session import Session, SessionClosed
from supervisor.protocol import (
    BAD_REQUEST,
    CONFLICT,
    FORBIDDEN,
    INTERNAL,
    LIMIT,
    NOT_FOUND,
    PROTOCOL_VERSION,
    ProtocolError,
    encode_control,
)
from supervisor.protocol.messages import error_message, event_message, hello_message
from supervisor.protocol.requests import (
    OPS,
    Args,
    AttachArgs,
    ContextArgs,
    KillArgs,
    RenameArgs,
    ResizeArgs,
    ScreenArgs,
    SessionArgs,
    SpawnArgs,
    SubscribeArgs,
    UnsubscribeArgs,
    WaitArgs,
    WriteArgs,
)
from supervisor.settings import Settings

log = structlog.get_logger("supervisor.server")

_RULES = {
    "explicit": "1: the request named a project directory",
    "parent-session": "2: the caller runs inside a supervised session",
    "caller-env": "3: the caller's own OPENCODE_DIRECTORY",
    "cwd": "4: the requested working directory",
}

CAPABILITIES = [
    "sessions",
    "output-frames",
    "input-frames",
    "subscribe",
    "wait",
    "kill-session",
    "context",
    "attach",
    "screen",
    "events",
    "upgrade",
    "rename",
]


class Upgrade:
    """An `upgrade` request between the op and the main loop that performs it."""

    def __init__(self) -> None:
        self.checked = trio.Event()
        self.error: str | None = None


class Daemon:
    def __init__(self, settings: Settings, socket_path: str, nursery: trio.Nursery) -> None:
        self.settings = settings
        self.socket_path = socket_path
        self.registry = Registry(settings, socket_path, nursery)
        self.connections: set[Connection] = set()
        self.started_at = time.time()
        self.stop_requested = trio.Event()
        self.wake = trio.Event()
        """Set when the main loop has something to do: stop, or an upgrade."""
        self.upgrade: Upgrade | None = None
        self.ops = dict(OPS)
        self._handlers = {
            "status": self._status,
            "list": self._list,
            "stop": self._stop,
            "spawn": self._spawn,
            "info": self._info,
            "write": self._write,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "resize": self._resize,
            "wait": self._wait,
            "kill": self._kill,
            "remove": self._remove,
            "context": self._context,
            "attach": self._attach,
            "screen": self._screen,
            "events": self._events,
            "upgrade": self._upgrade,
            "rename": self._rename,
        }
        self.projects = ProjectCache()

    def hello(self) -> dict[str, Any]:
        return hello_message(
            PROTOCOL_VERSION,
            CAPABILITIES,
            server="pty-supervisor",
            version=supervisor.__version__,
            pid=os.getpid(),
        )

    async def handle(self, conn: Connection, op: str, args: Args) -> dict[str, Any]:
        return await self._handlers[op](conn, args)

    # -- accepting --------------------------------------------------------------

    async def accept_loop(self, listener: trio.socket.SocketType, nursery: trio.Nursery) -> None:
        while True:
            try:
                sock, _ = await listener.accept()
            except OSError as exc:
                log.error("accept failed", error=str(exc))
                await trio.sleep(0.1)
                continue
            nursery.start_soon(self._connection, sock)

    async def _connection(self, sock: trio.socket.SocketType) -> None:
        with sock:
            try:
                peer = peer_of(sock)
            except OSError as exc:
                log.warning("peer credentials unavailable; refused", error=str(exc))
                return
            if peer.uid != os.getuid():
                log.warning("refused a peer of another user", peer_uid=peer.uid, peer_pid=peer.pid)
                await self._refuse(sock, FORBIDDEN, "this daemon serves only its own user")
                return
            if len(self.connections) >= self.settings.max_connections:
                log.warning("refused a connection over the limit", peer_pid=peer.pid)
                await self._refuse(
                    sock,
                    LIMIT,
                    f"the daemon has {len(self.connections)} connections, its limit "
                    f"(PTYSUP_MAX_CONNECTIONS={self.settings.max_connections})",
                )
                return
            conn = Connection(self, sock, peer)
            self.connections.add(conn)
            try:
                await conn.serve()
            except Exception:
                log.exception("connection failed; closed it", conn=conn.id, peer_pid=peer.pid)
            finally:
                self.connections.discard(conn)

    async def _refuse(self, sock: trio.socket.SocketType, code: str, message: str) -> None:
        with trio.move_on_after(1.0):
            with contextlib.suppress(OSError):
                await sock.send(encode_control(error_message(None, code, message)))

    # -- ops --------------------------------------------------------------------

    async def _status(self, conn: Connection, args: Args) -> dict[str, Any]:
        registry = self.registry
        return {
            "pid": os.getpid(),
            "version": supervisor.__version__,
            "protocol": PROTOCOL_VERSION,
            "socket": self.socket_path,
            "sessions": len(registry.sessions),
            "running": len(registry.running()),
            "connections": len(self.connections),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "uptime": round(time.time() - self.started_at, 3),
            "platform": sys.platform,
            "python": sys.version.split()[0],
            "gateway": about.gateway(registry.gateway),
            "engines": about.engines(),
            "limits": {
                "max_sessions": self.settings.max_sessions,
                "max_connections": self.settings.max_connections,
                "max_frame": self.settings.max_frame,
                "ring_size": self.settings.ring_size,
            },
        }

    async def _list(self, conn: Connection, args: Args) -> dict[str, Any]:
        return {"sessions": [s.describe() for s in self.registry.sessions.values()]}

    async def _stop(self, conn: Connection, args: Args) -> dict[str, Any]:
        self.stop_requested.set()
        self.wake.set()
        return {"stopping": True, "pid": os.getpid(), "ending": len(self.registry.running())}

    async def _upgrade(self, conn: Connection, args: Args) -> dict[str, Any]:
        if self.upgrade is not None:
            raise ProtocolError(CONFLICT, "an upgrade is already under way")
        upgrade = self.upgrade = Upgrade()
        self.wake.set()
        try:
            await upgrade.checked.wait()
        finally:
            if upgrade.error is not None:
                self.upgrade = None
        if upgrade.error is not None:
            raise ProtocolError(INTERNAL, f"upgrade refused, nothing was replaced: {upgrade.error}")
        return {"upgrading": True, "pid": os.getpid(), "version": supervisor.__version__}

    def tell_restarting(self) -> None:
        for conn in self.connections:
            conn.relay_terminals()
            conn.send(event_message("restarting", pid=os.getpid()))

    async def _context_for(
        self,
        conn: Connection,
        *,
        project: str | None,
        caller_directory: str | None,
        cwd: str,
    ) -> Context:
        if project is not None and not os.path.isdir(project):
            raise ProtocolError(BAD_REQUEST, f"project directory does not exist: {project}")
        parent = self.registry.session_of(conn.peer.pid)
        return await decide(
            self.projects,
            explicit=project,
            parent=(parent.id, parent.context) if parent and parent.context else None,
            caller_directory=caller_directory,
            cwd=cwd,
        )

    async def _context(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, ContextArgs)
        context = await self._context_for(
            conn,
            project=args.project,
            caller_directory=args.caller_directory,
            cwd=args.cwd or "/",
        )
        return {**context.describe(), "rule": _RULES[context.source]}

    async def _spawn(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, SpawnArgs)
        env = args.env or {}
        context = await self._context_for(
            conn,
            project=args.project,
            caller_directory=args.caller_directory or env.get("OPENCODE_DIRECTORY"),
            cwd=self.registry.child_cwd(args),
        )
        if args.terminal and not (args.input or args.subscribe):
            raise ProtocolError(BAD_REQUEST, "spawn: terminal needs subscribe or input")
        terminal = conn.passed_terminal() if args.terminal else None
        try:
            session = self.registry.spawn(args, context)
        except BaseException:
            if terminal is not None:
                os.close(terminal)
            raise
        if args.subscribe or args.input:
            sub = conn.new_subscription(
                session.id, follow=True, input=args.input, lossless=args.lossless or args.input
            )
            sub.patient = args.input and not args.lossless
            sub.cols, sub.rows = args.cols, args.rows
            if terminal is not None:
                conn.link_terminal(
                    terminal,
                    sub,
                    session,
                    detach_key=args.detach_key,
                    read_only=False,
                    first=None,
                    start=0,
                    keys=args.input,
                )
            session.subscribe(sub, 0)
            if args.input:
                session.attach(sub, read_only=False)
            return {**session.describe(), "sub": sub.id, "terminal": terminal is not None}
        return session.describe()

    async def _attach(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, AttachArgs)
        session = self.registry.lookup(args.session)
        if session.state != "running":
            raise ProtocolError(CONFLICT, f"session {session.id} has exited; nothing to attach to")
        model = await session.screen() if args.since is None else None
        # From here on nothing awaits: the redraw is the screen at exactly `since`.
        terminal = conn.passed_terminal() if args.terminal else None
        if terminal is not None and (shown := self._shown_in(terminal, session)) is not None:
            os.close(terminal)
            raise ProtocolError(
                CONFLICT,
                f"cannot attach session {session.id} here: this terminal is session "
                f"{shown.id}'s, which would then show itself",
            )
        since = session.ring.end if args.since is None else args.since
        sub = conn.new_subscription(
            session.id, follow=True, input=not args.read_only, lossless=not args.read_only
        )
        sub.patient = not args.read_only
        sub.cols, sub.rows = args.cols, args.rows
        redraw = model.ansi() if model is not None else None
        if terminal is not None:
            conn.link_terminal(
                terminal,
                sub,
                session,
                detach_key=args.detach_key,
                read_only=args.read_only,
                first=redraw.encode("utf-8", "replace") if redraw else None,
                start=since,
                keys=True,
            )
            redraw = None
        try:
            result = session.subscribe(sub, since)
        except ValueError as exc:
            conn.drop_subscription(sub.id)
            raise ProtocolError(BAD_REQUEST, f"attach: {exc}") from None
        session.attach(sub, read_only=args.read_only)
        return {
            **result,
            "role": "controller" if session.controller is sub else "observer",
            "redraw": redraw,
            "terminal": terminal is not None,
            "session": session.describe(),
        }

    def _shown_in(self, fd: int, target: Session) -> Session | None:
        """The session whose terminal `fd` is, if showing `target` there would make a
        session show its own output: the terminal is `target`'s, or that of a session
        shown (through held terminals) in `target`'s."""
        terminals: dict[int, Session] = {}
        for session in self.registry.sessions.values():
            with contextlib.suppress(OSError):
                terminals[os.stat(session.tty).st_rdev] = session
        first = terminals.get(os.fstat(fd).st_rdev)
        waiting = [first] if first is not None else []
        seen: set[str] = set()
        while waiting:
            current = waiting.pop()
            if current is target:
                return first
            if current.id in seen:
                continue
            seen.add(current.id)
            for sub in current.subscribers.values():
                if sub.terminal is not None and (shown := terminals.get(sub.terminal.rdev)):
                    waiting.append(shown)
        return None

    async def _screen(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, ScreenArgs)
        session = self.registry.lookup(args.session)
        model = await session.screen()
        snapshot = {
            **model.snapshot(),
            "title": session.title,
            "offset": model.offset,
            "session": session.id,
        }
        if args.ansi:
            snapshot["ansi"] = model.ansi()
        return snapshot

    async def _events(self, conn: Connection, args: Args) -> dict[str, Any]:
        sub = conn.new_subscription("", follow=True, input=False)
        self.registry.event_subs[sub.key] = sub
        return {"sub": sub.id}

    async def _info(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, SessionArgs)
        return self.registry.lookup(args.session).describe()

    async def _write(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, WriteArgs)
        session = self.registry.lookup(args.session)
        offset = session.ring.end
        written = await session.write(args.payload())
        return {"written": written, "offset": offset}

    async def _subscribe(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, SubscribeArgs)
        session = self.registry.lookup(args.session)
        sub = conn.new_subscription(
            session.id, follow=args.follow, input=args.input, lossless=args.lossless
        )
        try:
            return session.subscribe(sub, args.since)
        except ValueError as exc:
            conn.drop_subscription(sub.id)
            raise ProtocolError(BAD_REQUEST, f"subscribe: {exc}") from None
        except SessionClosed:
            conn.drop_subscription(sub.id)
            raise

    async def _unsubscribe(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, UnsubscribeArgs)
        conn.drop_subscription(args.sub)
        return {"sub": args.sub}

    async def _resize(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, ResizeArgs)
        session = self.registry.lookup(args.session)
        if args.sub is None:
            session.resize(args.cols, args.rows)
            return {**session.describe(), "applied": True}
        sub = conn.subscriptions.get(args.sub)
        if sub is None or sub.session_id != session.id:
            raise ProtocolError(NOT_FOUND, f"no subscription {args.sub} to session {session.id}")
        applied = session.client_resize(sub, args.cols, args.rows)
        return {**session.describe(), "applied": applied}

    async def _wait(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, WaitArgs)
        session = self.registry.lookup(args.session)
        timed_out = False
        if args.timeout is None:
            await session.finished.wait()
        else:
            with trio.move_on_after(args.timeout) as scope:
                await session.finished.wait()
            timed_out = scope.cancelled_caught
        return {"timed_out": timed_out, "session": session.describe()}

    async def _kill(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, KillArgs)
        session = self.registry.lookup(args.session)
        if args.signal is not None:
            session.send_signal(parse_signal(args.signal))
        else:
            await session.terminate(self.settings.kill_grace)
        return session.describe()

    async def _remove(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, SessionArgs)
        session = self.registry.lookup(args.session)
        await self.registry.remove(session)
        return {"removed": session.id, "session": session.describe()}

    async def _rename(self, conn: Connection, args: Args) -> dict[str, Any]:
        assert isinstance(args, RenameArgs)
        session = self.registry.lookup(args.session)
        self.registry.rename(session, args.name)
        return session.describe()
