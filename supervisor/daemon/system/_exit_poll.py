"""Anywhere else: ask every so often whether the process has ended."""

import os

import trio

INTERVAL = 0.05


def _ended(pid: int) -> bool:
    try:
        # A child that has exited is waited for without being reaped, so its status stays.
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        pass  # not our child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


async def wait_ended(pid: int) -> None:
    while not _ended(pid):
        await trio.sleep(INTERVAL)
