"""All sessions of the daemon: ids, names, limits, events, and how a spawn request becomes
a session."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from supervisor import logs, workdir
from supervisor.daemon.ids import IdCounter
from supervisor.daemon.session import snapshot
from supervisor.daemon.session.ring import Ring
from supervisor.daemon.session.session import Session
from supervisor.daemon.session.snapshot import SessionState
from supervisor.daemon.session.subscription import Subscription
from supervisor.daemon.spawn import shells
from supervisor.daemon.spawn.childenv import ChildSetup, child_cwd, child_env
from supervisor.daemon.spawn.context import Context
from supervisor.daemon.system import procs, pty, reaper
from supervisor.daemon.system.childwatch import WATCHED
from supervisor.daemon.system.peers import lineage
from supervisor.protocol import BAD_REQUEST, CONFLICT, LIMIT, NOT_FOUND, ProtocolError
from supervisor.protocol.requests import SpawnArgs
from supervisor.settings import Settings

if TYPE_CHECKING:
    from supervisor.opencode.gateway import Gateway

log = logs.get_logger("supervisor.registry")

SHUTDOWN_POLL = 0.05


class Registry:
    def __init__(self, settings: Settings, socket_path: str, nursery: trio.Nursery) -> None:
        self.settings = settings
        self.socket_path = socket_path
        self._nursery = nursery
        self.sessions: dict[str, Session] = {}
        self._names: dict[str, Session] = {}
        self._ids = IdCounter(socket_path)
        self.setup = ChildSetup(socket_path, opencode_bin=settings.opencode_bin or None)
        self.gateway: Gateway | None = None
        self.gateway_secrets: dict[str, str] = {}
        """A session's gateway secret -> its project directory."""
        self.on_added: list[Callable[[Session], None]] = []
        self.on_removed: list[Callable[[Session], None]] = []
        self.event_subs: dict[int, Subscription] = {}
        nursery.start_soon(reaper.run, WATCHED.__contains__)

    def lookup(self, ref: str) -> Session:
        session = self.sessions.get(ref) or self._names.get(ref)
        if session is None:
            raise ProtocolError(NOT_FOUND, f"no session {ref!r}")
        return session

    def running(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.state == "running"]

    def session_of(self, peer_pid: int | None) -> Session | None:
        """The session a caller runs inside, from its process ancestry (never from what it
        claims): the nearest ancestor that is a session's child, or in its terminal session."""
        if peer_pid is None:
            return None
        leaders = {s.pid: s for s in self.sessions.values() if not s.removed}
        for pid, sid in lineage(peer_pid):
            session = leaders.get(pid) or leaders.get(sid)
            if session is not None:
                return session
        return None

    def child_cwd(self, args: SpawnArgs) -> str:
        return child_cwd(args.cwd, args.env)

    def spawn(self, args: SpawnArgs, context: Context | None = None) -> Session:
        if len(self.sessions) >= self.settings.max_sessions:
            raise ProtocolError(
                LIMIT,
                f"the daemon holds {len(self.sessions)} sessions, its limit "
                f"(PTYSUP_MAX_SESSIONS={self.settings.max_sessions}); remove some first",
            )
        if args.name is not None and args.name in self._names:
            raise ProtocolError(CONFLICT, f"a session is already named {args.name!r}")
        session_id = str(self._ids.next)
        secret = None
        gateway_url = None
        if self.gateway is not None and context is not None:
            from supervisor.opencode.gateway import new_secret

            secret = new_secret()
            gateway_url = self.gateway.url_for(secret)
        env = child_env(args.env, session_id, self.setup, context, gateway_url)
        argv = list(args.argv)
        if self.setup.shim_dir is not None and self.setup.shell_dir is not None:
            argv, env = shells.integrate(argv, env, self.setup.shim_dir, self.setup.shell_dir)
        cwd = self.child_cwd(args)
        env["PWD"] = workdir.for_spawn(cwd)
        try:
            child = pty.spawn(
                argv,
                cwd,
                env,
                args.cols,
                args.rows,
                echo=args.echo,
                output_processing=args.output_processing,
            )
        except pty.SpawnError as exc:
            raise ProtocolError(LIMIT if exc.limit else BAD_REQUEST, str(exc)) from None
        WATCHED.add(child.pid)
        self._ids.take()
        session = Session(
            session_id,
            args.name,
            list(args.argv),
            cwd,
            pid=child.pid,
            master=child.master,
            tty=child.tty,
            cols=args.cols,
            rows=args.rows,
            ring=Ring(self.settings.ring_size),
            context=context,
            on_finished=self._finished,
        )
        session.emit = self.emit
        session.labels = dict(args.labels or {})
        if secret is not None and context is not None:
            session.gateway_secret = secret
            self.gateway_secrets[secret] = context.directory
        self.sessions[session_id] = session
        if args.name is not None:
            self._names[args.name] = session
        self.emit("created", session=session.describe())
        self._nursery.start_soon(session.run, self.settings.drain_timeout)
        for hook in self.on_added:
            hook(session)
        log.info("spawned", session=session_id, pid=child.pid, argv=args.argv, cwd=cwd)
        return session

    def rename(self, session: Session, name: str) -> None:
        taken = self._names.get(name)
        if taken is not None and taken is not session:
            raise ProtocolError(CONFLICT, f"a session is already named {name!r}")
        if session.name is not None:
            self._names.pop(session.name, None)
        session.name = name
        self._names[name] = session
        self.emit("renamed", session=session.id, name=name)

    def export(self, *, screen: bool = True) -> list[SessionState]:
        return [snapshot.export(s, screen=screen) for s in self.sessions.values()]

    def adopt(self, saved: list[SessionState], next_id: int) -> None:
        """Take over the sessions a previous daemon image handed over."""
        for entry in saved:
            session = snapshot.restore(entry, self.settings.ring_size, self._finished)
            session.emit = self.emit
            self.sessions[session.id] = session
            if session.name is not None:
                self._names[session.name] = session
            if session.parented and session.state == "running":
                WATCHED.add(session.pid)
            if (
                session.gateway_secret is not None
                and session.context is not None
                and session.state == "running"
            ):
                self.gateway_secrets[session.gateway_secret] = session.context.directory
            self._nursery.start_soon(session.run, self.settings.drain_timeout)
            self._nursery.start_soon(session.writer.write_primed)
        self._ids.advance(next_id)

    @property
    def next_id(self) -> int:
        return self._ids.next

    def _finished(self, session: Session) -> None:
        if session.gateway_secret is not None:
            self.gateway_secrets.pop(session.gateway_secret, None)
            if self.gateway is not None:
                self.gateway.revoke(session.gateway_secret)
        log.info(
            "exited",
            session=session.id,
            pid=session.pid,
            exit_code=session.exit_code,
            signal=session.signal,
        )
        self.emit(
            "exited",
            session=session.id,
            exit_code=session.exit_code,
            signal=session.signal,
            end=session.ring.end,
        )

    def emit(self, event: str, **fields: Any) -> None:
        """Tell every events subscriber (`ptysup events`) what happened."""
        for sub in self.event_subs.values():
            sub.push_event(event, **fields)

    async def remove(self, session: Session) -> None:
        if session.state == "running" or procs.session_members(session.pid):
            await session.terminate(self.settings.kill_grace)
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
            if session.name is not None:
                self._names.pop(session.name, None)
            for hook in self.on_removed:
                hook(session)
            session.close()
            if session.gateway_secret is not None:
                self.gateway_secrets.pop(session.gateway_secret, None)
            log.info("removed", session=session.id)
            self.emit("removed", session=session.id)

    async def shutdown(self) -> None:
        """End every session at once: SIGHUP, SIGTERM, then SIGKILL to all their processes,
        looking the processes up in one pass per round, however many sessions there are."""
        sessions = list(self.sessions.values())
        await procs.end_sessions({s.pid for s in sessions}, self.settings.kill_grace, SHUTDOWN_POLL)
        with trio.move_on_after(5.0):
            for session in sessions:
                await session.finished.wait()
        for session in sessions:
            await self.remove(session)
