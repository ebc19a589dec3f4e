"""A client's own terminal, passed over the socket: opened afresh for the daemon's use."""

import contextlib
import os
import stat

from supervisor.daemon.system.fd import OwnedFd


class TerminalError(Exception):
    """The descriptor passed cannot serve as the client's terminal; says why."""


def open_terminal(passed: int) -> OwnedFd:
    """A private open of the terminal behind the descriptor `passed` (which the caller
    still owns): non-blocking without changing the client's own open file, and never
    made the daemon's controlling terminal."""
    info = os.fstat(passed)
    if not stat.S_ISCHR(info.st_mode) or not os.isatty(passed):
        raise TerminalError("terminal: the descriptor passed is not a terminal")
    flags = os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
    paths = [f"/proc/self/fd/{passed}"] if os.path.isdir("/proc/self/fd") else []
    with contextlib.suppress(OSError):
        paths.append(os.ttyname(passed))
    for path in paths:
        try:
            fd = os.open(path, flags)
        except OSError:
            continue
        if os.fstat(fd).st_rdev == info.st_rdev:
            return OwnedFd(fd)
        os.close(fd)
    raise TerminalError("terminal: the daemon cannot open the terminal passed")


def device(fd: int) -> int:
    """The terminal device behind `fd`."""
    return os.fstat(fd).st_rdev
