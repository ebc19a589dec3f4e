"""Linux: a pidfd becomes readable when its process ends, whoever's child it is (with no
descriptor left for one, the process is polled)."""

import errno
import os

import trio

from supervisor.daemon.system import _exit_poll


async def wait_ended(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
            raise
        # Out of descriptors: the process is watched all the same, by asking.
        await _exit_poll.wait_ended(pid)
        return
    try:
        await trio.lowlevel.wait_readable(fd)
    finally:
        trio.lowlevel.notify_closing(fd)
        os.close(fd)
