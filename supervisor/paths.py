"""Where the control socket lives, and whether a socket there is the user's own. Cheap to
import: the CLI needs it on every call."""

from __future__ import annotations

import os
import stat
import sys

SOCKET_NAME = "control.sock"
DIR_NAME = "pty-supervisor"
MAX_SOCKET_PATH = 104 if sys.platform == "darwin" else 108

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class _Credentialed(Protocol):
        def getsockopt(self, level: int, option: int, buflen: int, /) -> bytes: ...


def default_socket_dir(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and sys.platform != "darwin":
        return os.path.join(runtime, DIR_NAME)
    if sys.platform == "darwin":
        import tempfile

        base = env.get("TMPDIR") or tempfile.gettempdir()
    else:
        base = "/tmp"
    return os.path.join(base, f"{DIR_NAME}-{os.getuid()}")


def resolve_socket(explicit: str | None = None, env: dict[str, str] | None = None) -> str:
    """The --socket flag, else $PTYSUP_SOCKET, else the default; made absolute."""
    env = dict(os.environ) if env is None else env
    path = (
        explicit or env.get("PTYSUP_SOCKET") or os.path.join(default_socket_dir(env), SOCKET_NAME)
    )
    return os.path.abspath(os.path.expanduser(path))


def check_socket_path(path: str) -> str | None:
    """A message if the path cannot be a Unix socket address, else None."""
    size = len(os.fsencode(path))
    if size >= MAX_SOCKET_PATH:
        return f"socket path is {size} bytes long, over the limit of {MAX_SOCKET_PATH - 1}: {path}"
    return None


class Untrusted(Exception):
    """The socket, or the daemon behind it, may not be this user's own."""


class NotPrivate(Untrusted):
    """The socket directory is not the user's own and closed to everyone else."""


def private_dir(path: str) -> None:
    """Make `path` (0700) or check it: a directory, not a symlink, owned by this user and
    closed to everyone else, as tmux insists. Raises NotPrivate saying how to fix it."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path, 0o700)
    check_private_dir(path, os.lstat(path))


def check_private_dir(path: str, info: os.stat_result) -> None:
    """Raise NotPrivate unless `info` (from lstat) shows a private directory of this user."""
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise NotPrivate(
            f"socket directory {path} is a symlink (to {target}, made by uid {info.st_uid}); "
            "use the real directory"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise NotPrivate(f"{path} is not a directory (it belongs to uid {info.st_uid})")
    if info.st_uid != os.getuid():
        raise NotPrivate(
            f"socket directory {path} belongs to uid {info.st_uid}, not to you "
            f"(uid {os.getuid()}); choose another socket with --socket or PTYSUP_SOCKET, "
            f"or have uid {info.st_uid} remove it (its mode is {mode:o})"
        )
    if mode & 0o077:
        raise NotPrivate(
            f"socket directory {path} is open to other users "
            f"(mode {mode:o}, owned by you); fix it with: chmod 700 {path}"
        )


def check_socket_dir(socket_path: str) -> None:
    """What a client checks before it connects: the socket's directory is private and this
    user's, or it is missing (nothing to connect to, then). Raises NotPrivate."""
    directory = os.path.dirname(socket_path)
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise NotPrivate(
            f"refusing to connect to {socket_path}: cannot check its directory: {exc.strerror}"
        ) from None
    try:
        check_private_dir(directory, info)
    except NotPrivate as exc:
        raise NotPrivate(
            f"refusing to connect to {socket_path}, where another user could have put a "
            f"socket of their own: {exc}"
        ) from None


def peer_uid(sock: _Credentialed) -> int:
    """The uid of the process at the other end of a connected Unix socket."""
    if sys.platform == "linux":
        level, option, size = 1, 17, 12  # SOL_SOCKET, SO_PEERCRED: struct ucred {pid, uid, gid}
    else:
        level, option, size = 0, 1, 76  # SOL_LOCAL, LOCAL_PEERCRED: struct xucred
    creds = sock.getsockopt(level, option, size)
    return int.from_bytes(creds[4:8], sys.byteorder)


def check_peer(socket_path: str, sock: _Credentialed) -> None:
    """What a client checks once connected, before it sends a byte: the daemon runs as this
    user. Raises Untrusted."""
    try:
        uid = peer_uid(sock)
    except OSError as exc:
        raise Untrusted(
            f"refusing to talk to the daemon on {socket_path}: cannot learn which user "
            f"runs it ({exc.strerror})"
        ) from None
    if uid != os.getuid():
        raise Untrusted(
            f"refusing to talk to the daemon on {socket_path}: it runs as uid {uid}, not as "
            f"you (uid {os.getuid()}); stop whatever serves that socket, or choose another "
            "with --socket or PTYSUP_SOCKET"
        )


def daemon_argv(socket_path: str, *extra: str) -> list[str]:
    """The command that runs the daemon of this installation on `socket_path`."""
    return [sys.executable, "-m", "supervisor", "daemon", "--socket", socket_path, *extra]
