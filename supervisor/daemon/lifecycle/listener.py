"""The control socket on disk: a private directory, one daemon per socket, stale ones cleaned."""

import contextlib
import errno
import fcntl
import os
import socket
import stat

from supervisor.paths import NotPrivate, check_socket_path, private_dir


class ListenerError(Exception):
    pass


def _private_dir(path: str) -> None:
    try:
        private_dir(path)
    except NotPrivate as exc:
        raise ListenerError(str(exc)) from None


def _answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _tighten(path: str) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise ListenerError(
            f"the socket the service manager passed is no longer at {path}; restart its unit"
        ) from None
    if stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o177:
        os.chmod(path, 0o600)


class Listener:
    """Holds the lock file and the bound, listening socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock_path = path + ".lock"
        self.sock: socket.socket | None = None
        self.owns_path = False
        self._lock_fd: int | None = None

    def open(self, backlog: int = 512, inherited: socket.socket | None = None) -> socket.socket:
        """Bind the socket, or take over `inherited`, one the service manager bound at this
        path: it stays the manager's, so it is neither cleaned up nor removed at close."""
        if problem := check_socket_path(self.path):
            raise ListenerError(problem)
        _private_dir(os.path.dirname(self.path))
        self._lock()
        try:
            if inherited is not None:
                _tighten(self.path)
                self.sock = inherited
            else:
                self._clear_stale()
                self.sock = self._bind(backlog)
                self.owns_path = True
        except BaseException:
            self._unlock(remove=True)
            raise
        return self.sock

    def resume(self, listen_fd: int, lock_fd: int, *, owns_path: bool) -> socket.socket:
        """Take back the socket and the lock a previous image of this daemon handed over."""
        _private_dir(os.path.dirname(self.path))
        for fd in (listen_fd, lock_fd):
            os.set_inheritable(fd, False)
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock_fd = lock_fd
        self.sock = socket.socket(fileno=listen_fd)
        self.owns_path = owns_path
        return self.sock

    @property
    def lock_fd(self) -> int | None:
        return self._lock_fd

    def hand_over(self) -> tuple[int, int]:
        """The socket's and the lock's fds, made inheritable for a new image of the daemon."""
        assert self.sock is not None and self._lock_fd is not None
        for fd in (self.sock.fileno(), self._lock_fd):
            os.set_inheritable(fd, True)
        return self.sock.fileno(), self._lock_fd

    def take_back(self) -> None:
        """The new image did not start: the fds are this image's again."""
        if self.sock is not None and self._lock_fd is not None:
            for fd in (self.sock.fileno(), self._lock_fd):
                os.set_inheritable(fd, False)

    def _lock(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                who = f" (pid {other})" if other.isdigit() else ""
                raise ListenerError(
                    f"another daemon{who} is already serving {self.path}; "
                    "stop it with `ptysup stop` or choose another socket"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _clear_stale(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise ListenerError(f"{self.path} exists and is not a socket; move it away")
        if _answers(self.path):
            raise ListenerError(
                f"something that holds no lock is already serving {self.path}; "
                "stop it or choose another socket"
            )
        os.unlink(self.path)

    def _bind(self, backlog: int) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(self.path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(backlog)
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.remove_path()
            self.sock.close()
            self.sock = None
        self._unlock(remove=True)

    def remove_path(self) -> None:
        """Unlink the socket so that no new client reaches this daemon (only if it bound it)."""
        if not self.owns_path:
            return
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)

    def _unlock(self, *, remove: bool) -> None:
        if self._lock_fd is None:
            return
        if remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock_path)
        os.close(self._lock_fd)
        self._lock_fd = None
