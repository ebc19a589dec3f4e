"""Where the control socket lives. Cheap to import: the CLI needs it on every call."""

import os
import sys
import tempfile

SOCKET_NAME = "control.sock"
DIR_NAME = "pty-supervisor"
MAX_SOCKET_PATH = 104 if sys.platform == "darwin" else 108


def default_socket_dir(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and sys.platform != "darwin":
        return os.path.join(runtime, DIR_NAME)
    if sys.platform == "darwin":
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
