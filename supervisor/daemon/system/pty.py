"""A new pseudo-terminal and a child started on it as the leader of a new session."""

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import struct
import sys
import termios
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from supervisor.daemon.system.fd import OwnedFd

_DEFAULT_SIGNALS = frozenset(
    s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)
)


class SpawnError(Exception):
    """The child could not be started; the message says why in a user's words."""

    def __init__(self, message: str, *, limit: bool = False) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Child:
    pid: int
    master: OwnedFd
    tty: str


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def find_program(program: str, path: str | None, cwd: str) -> str:
    """Resolve argv[0] as execvp would, against the child's PATH and cwd."""
    if "/" in program:
        full = program if program.startswith("/") else os.path.join(cwd, program)
        if not os.path.exists(full):
            raise SpawnError(f"program not found: {program} (looked for {full})")
        if os.path.isdir(full):
            raise SpawnError(f"program is a directory: {full}")
        if not os.access(full, os.X_OK):
            raise SpawnError(f"program is not executable: {full}")
        return full
    search = path if path is not None else os.defpath
    found = shutil.which(
        program,
        path=os.pathsep.join(
            d if os.path.isabs(d) else os.path.join(cwd, d or ".") for d in search.split(os.pathsep)
        ),
    )
    if found is None:
        raise SpawnError(f"program not found: {program} (searched PATH={search})")
    return found


def _open_pty(
    cols: int, rows: int, *, echo: bool = True, output_processing: bool = True
) -> tuple[int, int, str]:
    try:
        master, slave = os.openpty()
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            raise SpawnError(f"out of file descriptors: {exc.strerror}", limit=True) from None
        if exc.errno in (errno.ENOSPC, errno.EAGAIN, errno.ENXIO):
            raise SpawnError(f"no pseudo-terminal left: {exc.strerror}", limit=True) from None
        raise SpawnError(f"cannot open a pseudo-terminal: {exc.strerror}") from None
    try:
        tty = os.ttyname(slave)
        set_size(master, cols, rows)
        attrs = termios.tcgetattr(slave)
        attrs[0] |= getattr(termios, "IUTF8", 0)
        if not output_processing:
            attrs[1] &= ~termios.OPOST
        if not echo:
            attrs[3] &= ~(termios.ECHO | termios.ECHONL)
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    return master, slave, tty


def spawn(
    argv: Sequence[str],
    cwd: str,
    env: Mapping[str, str],
    cols: int,
    rows: int,
    *,
    echo: bool = True,
    output_processing: bool = True,
) -> Child:
    """Start argv as the leader of a new session whose controlling terminal is a new PTY."""
    if not os.path.isdir(cwd):
        raise SpawnError(f"working directory does not exist: {cwd}")
    program = find_program(argv[0], env.get("PATH"), cwd)
    master, slave, tty = _open_pty(cols, rows, echo=echo, output_processing=output_processing)
    try:
        if sys.platform == "linux" and hasattr(os, "posix_spawn"):
            pid = _spawn_posix(program, argv, cwd, env, tty)
        else:
            pid = _spawn_fork(program, argv, cwd, env, slave)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return Child(pid, OwnedFd(master), tty)


def _spawn_posix(
    program: str, argv: Sequence[str], cwd: str, env: Mapping[str, str], tty: str
) -> int:
    # posix_spawn has no chdir action in Python; the daemon is single-threaded
    # and never uses relative paths, so changing its cwd for the call is safe.
    here = os.getcwd()
    try:
        os.chdir(cwd)
        try:
            return os.posix_spawn(
                program,
                list(argv),
                dict(env),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, tty, os.O_RDWR, 0),
                    (os.POSIX_SPAWN_DUP2, 0, 1),
                    (os.POSIX_SPAWN_DUP2, 0, 2),
                ],
                setsid=True,
                setsigdef=_DEFAULT_SIGNALS,
                setsigmask=(),
            )
        except OSError as exc:
            raise _spawn_error(program, exc) from None
    finally:
        os.chdir(here)


def _spawn_fork(
    program: str, argv: Sequence[str], cwd: str, env: Mapping[str, str], slave: int
) -> int:
    errors_r, errors_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(errors_r)
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            for sig in _DEFAULT_SIGNALS:
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            os.chdir(cwd)
            os.execve(program, list(argv), dict(env))
        except OSError as exc:
            os.write(errors_w, str(exc.errno).encode())
        finally:
            os._exit(127)
    os.close(errors_w)
    try:
        report = os.read(errors_r, 64)
    finally:
        os.close(errors_r)
    if report:
        os.waitpid(pid, 0)
        code = int(report)
        raise _spawn_error(program, OSError(code, os.strerror(code)))
    return pid


def _spawn_error(program: str, exc: OSError) -> SpawnError:
    if exc.errno in (errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE):
        return SpawnError(f"cannot start {program}: {exc.strerror}", limit=True)
    if exc.errno == errno.ENOEXEC:
        return SpawnError(f"cannot start {program}: not an executable format")
    return SpawnError(f"cannot start {program}: {exc.strerror}")
