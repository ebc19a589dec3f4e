"""Where the control socket lives. Cheap to import: the CLI needs it on every call."""

import os
import stat
import sys

SOCKET_NAME = "control.sock"
DIR_NAME = "pty-supervisor"
MAX_SOCKET_PATH = 104 if sys.platform == "darwin" else 108


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


class NotPrivate(Exception):
    """The socket directory is not the user's own and closed to others."""


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
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise NotPrivate(f"socket directory {path} is a symlink; use the real directory")
    if not stat.S_ISDIR(info.st_mode):
        raise NotPrivate(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise NotPrivate(
            f"socket directory {path} belongs to uid {info.st_uid}, not to you "
            f"(uid {os.getuid()}); choose another socket with --socket"
        )
    if info.st_mode & 0o077:
        raise NotPrivate(
            f"socket directory {path} is open to other users "
            f"(mode {stat.S_IMODE(info.st_mode):o}); fix it with: chmod 700 {path}"
        )


def daemon_argv(socket_path: str, *extra: str) -> list[str]:
    """The command that runs the daemon of this installation on `socket_path`."""
    return [sys.executable, "-m", "supervisor", "daemon", "--socket", socket_path, *extra]
