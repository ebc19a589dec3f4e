"""The OpenCode server's credentials, kept out of the daemon's environment.

What the kernel shows of a process's environment (`/proc/<pid>/environ`, `ps e`, macOS's
KERN_PROCARGS2) is the block the process was executed with; taking a variable out of
`os.environ` does not change it. So a daemon started with OPENCODE_SERVER_PASSWORD or
OPENCODE_SERVER_USERNAME takes them out and executes itself again at once (the same pid, the
same arguments) without them, handing them to its new image through a pipe whose fd is named
by PTYSUP_CREDENTIALS_FD. An upgrade in place hands them over the same way.
"""

import contextlib
import json
import os
import stat
import sys
from collections.abc import MutableMapping

NAMES = ("OPENCODE_SERVER_USERNAME", "OPENCODE_SERVER_PASSWORD")
FD_VARIABLE = "PTYSUP_CREDENTIALS_FD"
MAX_SIZE = 4096
"""What one write to a fresh pipe always takes (PIPE_BUF): handing over never blocks."""

_held: dict[str, str] = {}


class HandOverError(Exception):
    pass


def held() -> dict[str, str]:
    """The credentials this process holds, as an environment would name them."""
    return dict(_held)


def take(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Take the credentials out of `environ`, and those a previous image handed over;
    True when `environ` had some, which the kernel still shows until the process executes
    itself again (`reexec`)."""
    passed = environ.pop(FD_VARIABLE, None)
    if passed is not None:
        _held.update(receive(passed))
    found = {name: environ.pop(name) for name in NAMES if name in environ}
    _held.update(found)
    return bool(found)


def hand_over() -> int:
    """An inheritable fd, the read end of a pipe holding the credentials for the image this
    process executes next; its writer is closed, so the reader gets them and then EOF."""
    data = json.dumps(_held).encode()
    if len(data) > MAX_SIZE:
        raise HandOverError(f"the credentials take {len(data)} bytes, over {MAX_SIZE}")
    read, write = os.pipe()
    try:
        os.set_blocking(write, False)
        if os.write(write, data) != len(data):
            raise HandOverError("the pipe did not take the credentials whole")
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    os.set_inheritable(read, True)
    return read


def receive(text: str) -> dict[str, str]:
    """The credentials in the pipe `text` names; nothing unless it is such a pipe."""
    try:
        fd = int(text)
    except ValueError:
        return {}
    if fd <= 2:
        return {}
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return {}
    except OSError:
        return {}
    chunks = []
    blocking = os.get_blocking(fd)
    try:
        os.set_blocking(fd, False)
        while chunk := os.read(fd, MAX_SIZE + 1):
            chunks.append(chunk)
    except OSError:
        with contextlib.suppress(OSError):
            os.set_blocking(fd, blocking)
        return {}  # a writer still open (EAGAIN): not a pipe handed over
    os.close(fd)
    try:
        value = json.loads(b"".join(chunks))
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {name: value[name] for name in NAMES if isinstance(value.get(name), str)}


def reexec() -> None:
    """Execute this program again, the same pid and arguments, with the environment as it is
    now (the credentials taken out) and the credentials in a pipe. Returns only if that
    failed (HandOverError or OSError)."""
    fd = hand_over()
    try:
        os.execve(sys.executable, sys.orig_argv, {**os.environ, FD_VARIABLE: str(fd)})
    finally:
        os.close(fd)
