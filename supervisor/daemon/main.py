"""`ptysup daemon`: set up, serve until told to stop, end every child, clean up."""

import contextlib
import os
import resource
import signal
import socket
import sys

import structlog
import trio

from supervisor import logs
from supervisor.daemon.listener import Listener, ListenerError
from supervisor.daemon.server import Daemon
from supervisor.opencode import shim
from supervisor.settings import Settings, SettingsError, load_settings

log = structlog.get_logger("supervisor.daemon")

FLUSH_TIMEOUT = 1.0


def raise_fd_limit(settings: Settings) -> tuple[int, int]:
    """Two fds per PTY plus connections: raise the soft limit as far as that needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * settings.max_sessions + settings.max_connections + 256
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if want > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def run(socket_path: str, ready_fd: int | None = None) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"ptysup daemon: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    limits = raise_fd_limit(settings)
    os.chdir("/")
    listener = Listener(socket_path)
    try:
        sock = listener.open()
    except (ListenerError, OSError) as exc:
        print(f"ptysup daemon: {exc}", file=sys.stderr)
        log.error("cannot listen", socket=socket_path, error=str(exc))
        return 1
    try:
        log.info("listening", socket=socket_path, pid=os.getpid(), fd_limit=limits[0])
        trio.run(_serve, settings, socket_path, sock, ready_fd)
    finally:
        listener.close()
        log.info("stopped", socket=socket_path)
    return 0


async def _serve(
    settings: Settings, socket_path: str, sock: socket.socket, ready_fd: int | None
) -> None:
    async with trio.open_nursery() as sessions_nursery:
        daemon = Daemon(settings, socket_path, sessions_nursery)
        if settings.shim:
            daemon.registry.shim_dir = _install_shim(socket_path)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, daemon)
            listener = trio.socket.from_stdlib_socket(sock)
            accept_scope = trio.CancelScope()

            async def accept() -> None:
                with accept_scope:
                    await daemon.accept_loop(listener, nursery)

            nursery.start_soon(accept)
            if ready_fd is not None:
                with contextlib.suppress(OSError):
                    os.write(ready_fd, f"ready {os.getpid()}\n".encode())
                    os.close(ready_fd)
            await daemon.stop_requested.wait()
            log.info("stopping", sessions=len(daemon.registry.sessions))
            accept_scope.cancel()
            await trio.lowlevel.checkpoint()
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path)
            await daemon.registry.shutdown()
            for conn in list(daemon.connections):
                conn.outbox.close_after_flush()
            with trio.move_on_after(FLUSH_TIMEOUT):
                while daemon.connections:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        sessions_nursery.cancel_scope.cancel()


def _install_shim(socket_path: str) -> str | None:
    directory = os.path.join(os.path.dirname(socket_path), "shim")
    try:
        return shim.install(directory)
    except OSError as exc:
        log.error("cannot install the opencode shim; children run without it", error=str(exc))
        return None


async def _watch_signals(daemon: Daemon) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("signal", signal=signal.Signals(signum).name)
            daemon.stop_requested.set()
