"""All sessions of the daemon: ids, names, limits, and how a spawn request becomes one."""

import os
import pwd
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
import trio

from supervisor.daemon import pty, reaper
from supervisor.daemon.childwatch import WATCHED
from supervisor.daemon.context import Context
from supervisor.daemon.ids import IdCounter
from supervisor.daemon.outbox import Subscription
from supervisor.daemon.peers import lineage
from supervisor.daemon.session import Session
from supervisor.daemon.state import SessionState
from supervisor.protocol import CONFLICT, LIMIT, NOT_FOUND, ProtocolError
from supervisor.protocol.requests import SpawnArgs
from supervisor.settings import Settings

if TYPE_CHECKING:
    from supervisor.opencode.gateway import Gateway

log = structlog.get_logger("supervisor.registry")

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
DEFAULT_TERM = "xterm-256color"
SHUTDOWN_POLL = 0.05
GATEWAY_PRIVATE = ("OPENCODE_SERVER_PASSWORD", "OPENCODE_SERVER_USERNAME")
"""Never in a child's environment while the gateway serves it: it talks to the gateway."""


def minimal_env() -> dict[str, str]:
    """The environment of a child whose caller sent none: enough to log in, no more."""
    entry = pwd.getpwuid(os.getuid())
    return {
        "HOME": entry.pw_dir,
        "USER": entry.pw_name,
        "LOGNAME": entry.pw_name,
        "SHELL": entry.pw_shell or "/bin/sh",
        "PATH": DEFAULT_PATH,
        "LANG": "C.UTF-8",
    }


def parse_signal(value: str | int) -> int:
    if isinstance(value, int):
        if value in signal.valid_signals():
            return value
        raise ProtocolError("bad_request", f"kill: no signal number {value}")
    name = value.upper()
    if name.isdigit():
        return parse_signal(int(name))
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ProtocolError("bad_request", f"kill: unknown signal {value!r}") from None


class Registry:
    def __init__(self, settings: Settings, socket_path: str, nursery: trio.Nursery) -> None:
        self.settings = settings
        self.socket_path = socket_path
        self._nursery = nursery
        self.sessions: dict[str, Session] = {}
        self._names: dict[str, Session] = {}
        self._ids = IdCounter(socket_path)
        self.shim_dir: str | None = None
        self.gateway: Gateway | None = None
        self.gateway_secrets: dict[str, str] = {}
        self.on_added: list[Callable[[Session], None]] = []
        self.on_removed: list[Callable[[Session], None]] = []
        """A session's gateway secret -> its project directory."""
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

    @staticmethod
    def child_env(args: SpawnArgs) -> dict[str, str]:
        return dict(args.env) if args.env is not None else minimal_env()

    def child_cwd(self, args: SpawnArgs) -> str:
        return args.cwd or self.child_env(args).get("HOME") or "/"

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
        env = self.child_env(args)
        env.setdefault("TERM", DEFAULT_TERM)
        if env.get("TERM") in ("", "dumb") and args.env is None:
            env["TERM"] = DEFAULT_TERM
        env["PTYSUP_SESSION"] = session_id
        env["PTYSUP_SOCKET"] = self.socket_path
        if context is not None:
            env.update(context.env())
        secret = None
        if self.gateway is not None and context is not None:
            for key in GATEWAY_PRIVATE:
                env.pop(key, None)
            from supervisor.opencode.gateway import new_secret

            secret = new_secret()
            env["OPENCODE_SERVER_URL"] = self.gateway.url_for(secret)
        if self.shim_dir is not None:
            path = env.get("PATH", DEFAULT_PATH)
            entries = [p for p in path.split(os.pathsep) if p != self.shim_dir]
            env["PATH"] = os.pathsep.join([self.shim_dir, *entries])
            if self.settings.opencode_bin:
                env["PTYSUP_OPENCODE_BIN"] = self.settings.opencode_bin
        cwd = self.child_cwd(args)
        try:
            child = pty.spawn(
                args.argv,
                cwd,
                env,
                args.cols,
                args.rows,
                echo=args.echo,
                output_processing=args.output_processing,
            )
        except pty.SpawnError as exc:
            code = LIMIT if exc.limit else "bad_request"
            raise ProtocolError(code, str(exc)) from None
        WATCHED.add(child.pid)
        self._ids.take()
        session = Session(
            session_id,
            args.name,
            list(args.argv),
            cwd,
            child,
            args.cols,
            args.rows,
            self.settings.ring_size,
            context,
            self._finished,
        )
        session.emit = self.emit
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

    def export(self) -> list[SessionState]:
        return [s.export() for s in self.sessions.values()]

    def adopt(self, saved: list[SessionState], next_id: int) -> None:
        """Take over the sessions a previous daemon image handed over."""
        for entry in saved:
            session = Session.restore(entry, self.settings.ring_size, self._finished)
            session.emit = self.emit
            self.sessions[session.id] = session
            if session.name is not None:
                self._names[session.name] = session
            if session.parented and session.state == "running":
                WATCHED.add(session.pid)
            if session.gateway_secret is not None and session.context is not None:
                self.gateway_secrets[session.gateway_secret] = session.context.directory
            self._nursery.start_soon(session.run, self.settings.drain_timeout)
        self._ids.advance(next_id)

    @property
    def next_id(self) -> int:
        return self._ids.next

    def _finished(self, session: Session) -> None:
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
        if session.state == "running" or pty.session_members(session.pid):
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
        await pty.end_sessions({s.pid for s in sessions}, self.settings.kill_grace, SHUTDOWN_POLL)
        with trio.move_on_after(5.0):
            for session in sessions:
                await session.finished.wait()
        for session in sessions:
            await self.remove(session)
