"""This process's terminal: its size, raw mode given back on every way out (by a forked
guardian even if the process is killed outright), and whether it can be handed to the
daemon."""

import contextlib
import os
import signal
import termios
import tty
from collections.abc import Iterator
from typing import Any


def terminal_size_of(fd: int) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return (size.columns, size.lines) if size.columns > 0 and size.lines > 0 else None


@contextlib.contextmanager
def raw_terminal(fd: int, *, output_only: bool = False, give_back: bytes = b"") -> Iterator[None]:
    """Raw mode on `fd` (with `output_only`: only no output processing, for bytes that a
    terminal already processed once), restored on every way out; a forked guardian
    restores it even if this process is killed outright. `give_back` is written to the
    terminal first on every way out: what undoes the modes a program shown in it set."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    guardian = _start_guardian(fd, saved)
    if output_only:
        changed = termios.tcgetattr(fd)
        changed[1] &= ~termios.OPOST
        termios.tcsetattr(fd, termios.TCSANOW, changed)
    else:
        tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        if give_back:
            with contextlib.suppress(OSError):
                os.write(fd, give_back)
        termios.tcsetattr(fd, termios.TCSADRAIN if output_only else termios.TCSAFLUSH, saved)
        if guardian is not None:
            with contextlib.suppress(OSError):
                os.write(guardian, b"x")
                os.close(guardian)


def _start_guardian(fd: int, saved: list[Any]) -> int | None:
    try:
        read_end, write_end = os.pipe()
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # pragma: no cover - the guardian process
        try:
            os.close(write_end)
            for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_IGN)
            if os.fork() == 0:
                _keep_only(fd, read_end)
                if not os.read(read_end, 1):
                    with contextlib.suppress(termios.error, OSError):
                        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
        finally:
            os._exit(0)
    os.close(read_end)
    os.waitpid(pid, 0)
    os.set_inheritable(write_end, False)
    return write_end


def _keep_only(tty_fd: int, pipe_fd: int) -> None:
    """In the guardian: hold no descriptor but the terminal and the pipe, so that
    it keeps neither the daemon connection nor a caller's pipes open."""
    keep = sorted({tty_fd, pipe_fd})
    low = 0
    for fd in keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def terminal_to_pass(stdin: int, stdout: int) -> int | None:
    """The terminal to hand to the daemon: when input and output are the same terminal and
    this process is in its foreground (in the background, the daemon would read keys meant
    for the foreground job)."""
    try:
        if not (os.isatty(stdin) and os.isatty(stdout)):
            return None
        if os.fstat(stdin).st_rdev != os.fstat(stdout).st_rdev:
            return None
        if os.tcgetpgrp(stdin) != os.getpgrp():
            return None
    except OSError:
        return None
    return stdout
