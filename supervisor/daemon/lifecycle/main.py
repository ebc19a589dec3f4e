"""`ptysup daemon`: set up, serve until told to stop, end every child, clean up."""

import contextlib
import os
import resource
import signal
import socket
import sys
from typing import TYPE_CHECKING

import trio

from supervisor import logs, native
from supervisor.daemon.clients.hub import Hub
from supervisor.daemon.clients.server import Server
from supervisor.daemon.lifecycle import credentials, state, upgrade
from supervisor.daemon.lifecycle.listener import Listener, ListenerError
from supervisor.daemon.session import plane as byteplane
from supervisor.daemon.session import screenview
from supervisor.daemon.spawn import shells
from supervisor.daemon.system import procs
from supervisor.opencode import shim
from supervisor.paths import resolve_socket
from supervisor.service.notify import Notifier
from supervisor.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from supervisor.opencode.gateway import Gateway

log = logs.get_logger("supervisor.daemon")

FLUSH_TIMEOUT = 1.0
ENGINE_AFTER_RESUME = 1.0
STATUS_INTERVAL = 1.0


def raise_fd_limit(settings: Settings) -> tuple[int, int]:
    """Three fds per PTY (the master, the byte plane's duplicate, the pidfd) plus
    connections: raise the soft limit as far as that needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 3 * settings.max_sessions + settings.max_connections + 256
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if want > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def check_state(path: str) -> int:
    """`ptysup daemon --check-state PATH`: this code imports and reads that state."""
    try:
        saved = state.read(path)
    except state.StateError as exc:
        print(f"ptysup daemon: {exc}", file=sys.stderr)
        return 1
    print(f"state of {len(saved.sessions)} sessions, written by version {saved.daemon_version}")
    return 0


def run(
    socket_path: str,
    ready_fd: int | None = None,
    *,
    resume: str | None = None,
    notify: bool = True,
) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"ptysup daemon: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    _take_credentials()
    why = _byte_path()
    if why is not None:
        print(f"ptysup daemon: {why}", file=sys.stderr)
        return 1
    if resume is not None:
        return _resume(settings, socket_path, resume, notify)
    from supervisor.service.activation import ActivationError, inherited_listener

    stored: dict[str, int] = {}
    try:
        inherited = inherited_listener(
            None if _default_path(socket_path) else socket_path, stored=stored
        )
    except ActivationError as exc:
        print(f"ptysup daemon: {exc}", file=sys.stderr)
        log.error("cannot use the socket passed by the service manager", error=str(exc))
        return 1
    if inherited is not None:
        socket_path = inherited.getsockname()
    limits = raise_fd_limit(settings)
    procs.keep_spare_fd()
    os.chdir("/")
    # Started on demand by a client, the daemon is nobody's service, whatever it inherited.
    notifier = Notifier.from_environ() if ready_fd is None and notify else Notifier(None)
    listener = Listener(socket_path)
    try:
        sock = listener.open(inherited=inherited)
    except (ListenerError, OSError) as exc:
        print(f"ptysup daemon: {exc}", file=sys.stderr)
        log.error("cannot listen", socket=socket_path, error=str(exc))
        return 1
    try:
        log.info(
            "listening",
            socket=socket_path,
            pid=os.getpid(),
            fd_limit=limits[0],
            activated=not listener.owns_path,
            notify=notifier.address,
            watchdog=notifier.watchdog_interval,
        )
        trio.run(_serve, settings, listener, sock, ready_fd, notifier, None, stored)
    finally:
        listener.close()
        notifier.close()
        log.info("stopped", socket=socket_path)
    return 0


def _take_credentials() -> None:
    """The upstream's credentials out of this process's environment, where its children
    could read them (/proc/<pid>/environ): the process executes itself again without them."""
    if not credentials.take():
        return
    try:
        credentials.reexec()
    except (credentials.HandOverError, OSError) as exc:
        log.error(
            "cannot take the OpenCode server's credentials out of the daemon's environment; "
            "its children can read them there",
            error=str(exc),
        )


def _byte_path() -> str | None:
    """Load the compiled byte plane where it is built and wanted; why not, if it must be."""
    try:
        module, why = native.load()
    except native.NativeUnavailable as exc:
        return str(exc)
    try:
        byteplane.configure(module, why)
    except OSError as exc:
        byteplane.configure(None, f"the byte plane cannot start ({exc})")
    return None


def _resume(settings: Settings, socket_path: str, path: str, notify: bool) -> int:
    """The new image after an upgrade in place: take everything over and serve on."""
    try:
        saved = state.read(path)
    except state.StateError as exc:
        log.error("cannot read the state handed over", error=str(exc))
        print(f"ptysup daemon: {exc}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    os.chdir("/")
    raise_fd_limit(settings)
    procs.keep_spare_fd()
    notifier = Notifier.from_environ() if notify else Notifier(None)
    listener = Listener(socket_path)
    assert saved.listen_fd is not None and saved.lock_fd is not None
    sock = listener.resume(saved.listen_fd, saved.lock_fd, owns_path=saved.owns_path)
    log.info(
        "resumed after an upgrade in place",
        socket=socket_path,
        pid=os.getpid(),
        sessions=len(saved.sessions),
        previous_version=saved.daemon_version,
    )
    try:
        trio.run(_serve, settings, listener, sock, None, notifier, saved)
    finally:
        listener.close()
        notifier.close()
        log.info("stopped", socket=socket_path)
    return 0


async def _serve(
    settings: Settings,
    socket_listener: Listener,
    sock: socket.socket,
    ready_fd: int | None,
    notifier: Notifier,
    resumed: state.DaemonState | None,
    stored: dict[str, int] | None = None,
) -> None:
    socket_path = socket_listener.path
    async with trio.open_nursery() as sessions_nursery:
        daemon = Hub(settings, socket_path, sessions_nursery)
        plane = byteplane.current()
        if plane is not None:
            sessions_nursery.start_soon(plane.run)
        server = Server(daemon)
        if settings.opencode_upstream:
            port = resumed.gateway_port if resumed is not None else None
            daemon.registry.gateway = await _start_gateway(
                settings.opencode_upstream, daemon, sessions_nursery, port or 0
            )
        if resumed is not None:
            screenview.defer_loading(ENGINE_AFTER_RESUME)
            daemon.registry.adopt(resumed.sessions, resumed.next_id)
        fdstore = None
        if notifier.enabled:
            from supervisor.daemon.lifecycle import crash

            fdstore = crash.FdStore(notifier, os.path.dirname(socket_path))
            if stored:
                crash.recover(daemon.registry, os.path.dirname(socket_path), stored, notifier)
            daemon.registry.on_added.append(fdstore.added)
            daemon.registry.on_removed.append(fdstore.removed)
            sessions_nursery.start_soon(fdstore.keep_snapshot, daemon.registry, socket_path)
        elif stored:
            for fd in stored.values():
                os.close(fd)
        if settings.shim:
            daemon.registry.setup.shim_dir = _install_shim(socket_path)
            if daemon.registry.setup.shim_dir is not None:
                daemon.registry.setup.shell_dir = _install_shells(socket_path)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, daemon)
            listener = trio.socket.from_stdlib_socket(sock)
            accept_scope = trio.CancelScope()

            async def accept(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                with accept_scope:
                    task_status.started()
                    await server.accept_loop(listener, nursery)

            await nursery.start(accept)
            if ready_fd is not None:
                with contextlib.suppress(OSError):
                    os.write(ready_fd, f"ready {os.getpid()}\n".encode())
                    os.close(ready_fd)
            if notifier.enabled:
                notifier.ready(status_line(daemon))
                nursery.start_soon(_report_status, daemon, notifier)
                if notifier.watchdog_interval is not None:
                    nursery.start_soon(_feed_watchdog, notifier, notifier.watchdog_interval)
            while not daemon.stop_requested.is_set():
                await daemon.wake.wait()
                daemon.wake = trio.Event()
                if daemon.upgrade is not None and not daemon.stop_requested.is_set():
                    await upgrade.perform(daemon, socket_listener, notifier)
            log.info("stopping", sessions=len(daemon.registry.sessions))
            notifier.stopping(f"stopping: ending {len(daemon.registry.running())} sessions")
            accept_scope.cancel()
            await trio.lowlevel.checkpoint()
            listener.close()
            socket_listener.remove_path()
            await daemon.registry.shutdown()
            if fdstore is not None:
                fdstore.forget()
            for client in list(daemon.clients):
                client.outbox.close_after_flush()
            with trio.move_on_after(FLUSH_TIMEOUT):
                while daemon.clients:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        sessions_nursery.cancel_scope.cancel()


def status_line(daemon: Hub) -> str:
    sessions = len(daemon.registry.sessions)
    running = len(daemon.registry.running())
    clients = len(daemon.clients)
    return (
        f"{sessions} session{'s' * (sessions != 1)} ({running} running), "
        f"{clients} client{'s' * (clients != 1)}"
    )


async def _report_status(daemon: Hub, notifier: Notifier) -> None:
    last = status_line(daemon)
    while not daemon.stop_requested.is_set():
        await trio.sleep(STATUS_INTERVAL)
        line = status_line(daemon)
        if line != last and not daemon.stop_requested.is_set():
            notifier.status(line)
            last = line


async def _feed_watchdog(notifier: Notifier, interval: float) -> None:
    while True:
        notifier.watchdog()
        await trio.sleep(interval)


def _default_path(socket_path: str) -> bool:
    """Whether nobody chose this socket: then a socket the service manager passes, wherever
    it is bound, decides (`systemd-socket-activate -l PATH ptysup daemon` passes no
    environment). Naming the default path with --socket cannot be told apart from this."""
    return "PTYSUP_SOCKET" not in os.environ and socket_path == resolve_socket(None)


async def _start_gateway(
    url: str, daemon: Hub, nursery: trio.Nursery, port: int
) -> "Gateway | None":
    from supervisor.opencode.gateway import Gateway, Upstream

    try:
        gateway = Gateway(
            Upstream.from_env(url, credentials.held()),
            daemon.registry.gateway_secrets.get,
            port=port,
        )
        await nursery.start(gateway.serve)
    except (ValueError, OSError) as exc:
        log.error("the OpenCode gateway cannot start; children get no server URL", error=str(exc))
        return None
    return gateway


def _install_shim(socket_path: str) -> str | None:
    directory = os.path.join(os.path.dirname(socket_path), "shim")
    try:
        return shim.install(directory)
    except OSError as exc:
        log.error("cannot install the opencode shim; children run without it", error=str(exc))
        return None


def _install_shells(socket_path: str) -> str | None:
    directory = os.path.join(os.path.dirname(socket_path), "shell")
    try:
        return shells.install(directory)
    except OSError as exc:
        log.error(
            "cannot install the shell integration; start-up files may put the shim behind",
            error=str(exc),
        )
        return None


async def _watch_signals(daemon: Hub) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("signal", signal=signal.Signals(signum).name)
            daemon.request_stop()
