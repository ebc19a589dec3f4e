"""Starting a daemon on demand, as tmux does, and waiting until it listens."""

import os
import select
import subprocess
import time

from supervisor.client.errors import DaemonUnavailable
from supervisor.paths import NotPrivate, daemon_argv, private_dir

START_TIMEOUT = 15.0
LOG_KEEP = 1024 * 1024


def log_path(socket_path: str) -> str:
    return socket_path + ".log"


def _prepare_dir(path: str) -> None:
    directory = os.path.dirname(path)
    try:
        private_dir(directory)
    except NotPrivate as exc:
        raise DaemonUnavailable(str(exc)) from None
    except OSError as exc:
        raise DaemonUnavailable(f"cannot create socket directory {directory}: {exc}") from None


def _open_log(path: str) -> int:
    log = log_path(path)
    try:
        if os.path.getsize(log) > LOG_KEEP:
            os.replace(log, log + ".1")
    except OSError:
        pass
    try:
        return os.open(
            log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
        )
    except OSError as exc:
        raise DaemonUnavailable(f"cannot open the daemon's log {log}: {exc.strerror}") from None


def _tail(path: str, since: int, lines: int = 5) -> str:
    """The last lines this attempt wrote to the log (from byte `since` on)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(since if since <= size else 0)
            f.seek(max(f.tell(), size - 4096))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def start_daemon(socket_path: str) -> None:
    """Start `ptysup daemon` in the background for `socket_path`; return once it listens.

    The daemon is started through a short-lived `sh` so that it is nobody's child
    here: a long-lived caller never keeps a zombie of it.
    """
    _prepare_dir(socket_path)
    log_fd = _open_log(socket_path)
    log_start = os.fstat(log_fd).st_size
    ready_r, ready_w = os.pipe()
    try:
        argv = daemon_argv(socket_path, "--ready-fd", str(ready_w))
        launcher = subprocess.Popen(
            ["/bin/sh", "-c", 'exec "$@" </dev/null & exit 0', "sh", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            pass_fds=(ready_w,),
            start_new_session=True,
            cwd="/",
        )
        os.close(ready_w)
        ready_w = -1
        launcher.wait()
        message = _wait_ready(ready_r)
    finally:
        os.close(log_fd)
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)
    if not message.startswith("ready"):
        detail = _tail(log_path(socket_path), log_start)
        raise DaemonUnavailable(
            f"the daemon did not start on {socket_path}"
            + (f":\n{detail}" if detail else f" (see {log_path(socket_path)})")
        )


def _wait_ready(fd: int) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    received = b""
    while b"\n" not in received:
        left = deadline - time.monotonic()
        if left <= 0:
            return ""
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            return ""
        chunk = os.read(fd, 256)
        if not chunk:
            break
        received += chunk
    return received.decode(errors="replace")
