"""Listening sockets handed over by the service manager: systemd's LISTEN_FDS protocol and
launchd's launch_activate_socket."""

import contextlib
import ctypes
import errno
import fcntl
import os
import socket
import sys
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from supervisor import logs

log = logs.get_logger("supervisor.service")

FIRST_FD = 3
SOCKET_NAME = "control"
LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class ActivationError(Exception):
    pass


@dataclass(frozen=True)
class Inherited:
    fd: int
    name: str


def systemd_fds(env: MutableMapping[str, str] | None = None) -> list[Inherited]:
    """The fds systemd passed to this process, marked close-on-exec.

    The variables are removed whatever they say, so that no child ever sees them.
    """
    env = os.environ if env is None else env
    values = {name: env.pop(name, None) for name in LISTEN_VARS}
    try:
        pid = int(values["LISTEN_PID"] or "")
        count = int(values["LISTEN_FDS"] or "")
    except ValueError:
        return []
    if pid != os.getpid() or count <= 0:
        return []
    names = (values["LISTEN_FDNAMES"] or "").split(":")
    if len(names) != count:
        names = ["unknown"] * count
    passed = []
    for fd, name in zip(range(FIRST_FD, FIRST_FD + count), names, strict=True):
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            log.warning("systemd announced an fd that is not open", fd=fd, name=name)
            continue
        fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
        passed.append(Inherited(fd, name))
    return passed


def launchd_fds(
    name: str = SOCKET_NAME,
    activate: Any = None,
    free: Callable[..., object] | None = None,
) -> list[Inherited]:
    """The sockets launchd holds for this job under `name` (the plist's Sockets key).

    [] when launchd does not manage this process or knows no such socket. `activate` and
    `free` default to libSystem's `launch_activate_socket` and `free` (macOS only).
    """
    if activate is None or free is None:
        if sys.platform != "darwin":
            return []
        libc = ctypes.CDLL(None, use_errno=True)
        activate = activate or libc.launch_activate_socket
        free = free or libc.free
    activate.argtypes = [
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.POINTER(ctypes.c_int)),
        ctypes.POINTER(ctypes.c_size_t),
    ]
    activate.restype = ctypes.c_int
    array = ctypes.POINTER(ctypes.c_int)()
    count = ctypes.c_size_t(0)
    err = activate(name.encode(), ctypes.byref(array), ctypes.byref(count))
    if err in (errno.ESRCH, errno.ENOENT):
        return []
    if err:
        raise ActivationError(f"launch_activate_socket({name!r}) failed: {os.strerror(err)}")
    try:
        fds = [array[i] for i in range(count.value)]
    finally:
        if array:
            free(array)
    for fd in fds:
        os.set_inheritable(fd, False)
    return [Inherited(fd, name) for fd in fds]


def _listening_unix(fd: int) -> socket.socket | None:
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        usable = (
            sock.family == socket.AF_UNIX
            and sock.type == socket.SOCK_STREAM
            and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        )
    except OSError:
        usable = False
    if not usable:
        sock.detach()
        return None
    return sock


def _same_path(bound: object, path: str) -> bool:
    if not isinstance(bound, str) or not bound.startswith("/"):
        return False
    if os.path.normpath(bound) == os.path.normpath(path):
        return True
    return os.path.realpath(bound) == os.path.realpath(path)


def choose_listener(
    passed: list[Inherited], path: str | None, manager: str
) -> socket.socket | None:
    """The listening socket bound to `path` among `passed` (with no `path`: the one named
    "control", else the first bound to a file); every other fd is closed.

    None when none of them is a listening Unix stream socket (the daemon binds its own);
    an error when one is, but bound elsewhere: serving a path nobody connects to helps no one.
    """
    candidates: list[tuple[Inherited, socket.socket, object]] = []
    for item in passed:
        sock = _listening_unix(item.fd)
        if sock is not None:
            candidates.append((item, sock, sock.getsockname()))
    if path is None:
        on_disk = [c for c in candidates if isinstance(c[2], str) and c[2].startswith("/")]
        on_disk.sort(key=lambda c: c[0].name != SOCKET_NAME)
        wanted = on_disk[:1]
    else:
        wanted = [c for c in candidates if _same_path(c[2], path)][:1]
    chosen = wanted[0][1] if wanted else None
    for _, sock, _ in candidates:
        if sock is not chosen:
            sock.detach()
    for item in passed:
        if chosen is None or item.fd != chosen.fileno():
            log.info("closed an inherited fd the daemon does not use", fd=item.fd, name=item.name)
            with contextlib.suppress(OSError):
                os.close(item.fd)
    if chosen is None and candidates:
        elsewhere = ", ".join(repr(bound) for _, _, bound in candidates)
        serves = f"this daemon serves {path}" if path else "the daemon needs one on disk"
        raise ActivationError(
            f"{manager} passed a socket bound to {elsewhere}, but {serves}; "
            "make the unit's socket and the daemon's --socket the same path"
        )
    if chosen is not None:
        log.info(
            "using a socket the service manager passed",
            manager=manager,
            socket=chosen.getsockname(),
        )
    return chosen


STORED_PREFIX = "pty-"
"""Names of terminal masters this daemon kept in systemd's fd store (FDNAME=pty-<id>)."""


def inherited_listener(
    path: str | None,
    env: MutableMapping[str, str] | None = None,
    stored: dict[str, int] | None = None,
) -> socket.socket | None:
    """The control socket the service manager passed for `path` (for any path if None).

    Terminal masters handed back from the fd store go into `stored` (name -> fd) instead
    of being closed."""
    passed = systemd_fds(env)
    if stored is not None:
        for item in [p for p in passed if p.name.startswith(STORED_PREFIX)]:
            stored[item.name] = item.fd
            passed.remove(item)
    if passed:
        return choose_listener(passed, path, "systemd")
    passed = launchd_fds()
    if passed:
        return choose_listener(passed, path, "launchd")
    return None
