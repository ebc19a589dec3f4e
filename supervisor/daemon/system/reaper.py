"""Orphans of supervised terminals: the daemon adopts and reaps them (Linux).

A background job of a shell outlives the shell; when it ends, its parent is gone and it
would wait as a zombie for whatever reaps orphans on this machine, which in a container is
often nothing. As a child subreaper the daemon inherits them and reaps them itself.
"""

import os
import signal
import sys
from collections.abc import Callable

import trio

from supervisor import logs, procfs

log = logs.get_logger("supervisor.reaper")

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    if sys.platform != "linux":
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(watched: Callable[[int], bool]) -> int:
    """Reap zombie children that are neither a watched session leader nor one of the
    daemon's own helpers (those share the daemon's session and are waited for by
    whoever started them). Returns how many were reaped."""
    own = os.getsid(0)
    reaped = 0
    for pid in procfs.children_of_self():
        info = procfs.stat(pid)
        if info is None or not info.zombie or info.sid == own or watched(pid):
            continue
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                reaped += 1
        except ChildProcessError:
            continue
    return reaped


async def run(watched: Callable[[int], bool]) -> None:
    if not become_subreaper():
        return
    with trio.open_signal_receiver(signal.SIGCHLD) as signals:
        async for _ in signals:
            count = reap_orphans(watched)
            if count:
                log.debug("reaped orphans", count=count)
