"""A file descriptor the daemon owns: closed exactly once, and useless once closed."""

import contextlib
import os

import trio


class OwnedFd:
    """Holds one descriptor. Closing sets `fd` to -1 rather than keeping a separate flag, so
    that a use after close fails with EBADF instead of reaching whatever file the kernel
    has since given that number to. trio is told first, so a task waiting on it wakes."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        with contextlib.suppress(RuntimeError):  # outside trio nobody waits on it
            trio.lowlevel.notify_closing(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def release(self) -> int:
        """Give the descriptor up without closing it (it is handed over); -1 if closed."""
        fd, self.fd = self.fd, -1
        return fd

    def __repr__(self) -> str:
        return f"OwnedFd({self.fd})"
