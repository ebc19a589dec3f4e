"""Waiting for a child to exit without a thread per child or a global waitpid. The waiting
itself is the platform's (`_exit_*`), chosen once here."""

import os
import select
import sys

if sys.platform == "linux" and hasattr(os, "pidfd_open"):
    from supervisor.daemon.system._exit_linux import wait_ended
elif hasattr(select, "KQ_FILTER_PROC"):
    from supervisor.daemon.system._exit_kqueue import wait_ended
else:
    from supervisor.daemon.system._exit_poll import wait_ended

WATCHED: set[int] = set()
"""Children whose exit a watcher waits for: nobody else may reap them."""


async def wait_exit(pid: int) -> int:
    """Wait for child `pid` to exit, reap it and return its wait status."""
    WATCHED.add(pid)
    try:
        await wait_ended(pid)
        while True:
            try:
                return os.waitpid(pid, 0)[1]
            except ChildProcessError:
                return 0
            except InterruptedError:
                continue
    finally:
        WATCHED.discard(pid)


async def wait_gone(pid: int) -> None:
    """Wait for a process that is not our child to end; its exit status is not ours to know."""
    await wait_ended(pid)
