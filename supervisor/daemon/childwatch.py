"""Waiting for a child to exit without a thread per child or a global waitpid."""

import contextlib
import os
import select
import sys

import trio

WATCHED: set[int] = set()
"""Children whose exit a watcher waits for: nobody else may reap them."""


async def wait_exit(pid: int) -> int:
    """Wait for child `pid` to exit, reap it and return its wait status."""
    WATCHED.add(pid)
    try:
        return await _wait_exit(pid)
    finally:
        WATCHED.discard(pid)


async def _wait_exit(pid: int) -> int:
    if sys.platform == "linux" and hasattr(os, "pidfd_open"):
        fd = os.pidfd_open(pid)
        try:
            await trio.lowlevel.wait_readable(fd)
        finally:
            trio.lowlevel.notify_closing(fd)
            os.close(fd)
    elif hasattr(select, "KQ_FILTER_PROC"):
        await _wait_kqueue(pid)
    else:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            await trio.sleep(0.05)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue


async def _wait_kqueue(pid: int) -> None:
    kqueue = trio.lowlevel.current_kqueue()
    event = select.kevent(
        pid,
        filter=select.KQ_FILTER_PROC,
        flags=select.KQ_EV_ADD | select.KQ_EV_ONESHOT,
        fflags=select.KQ_NOTE_EXIT,
    )
    try:
        kqueue.control([event], 0)
    except ProcessLookupError:
        return

    def abort(_: object) -> trio.lowlevel.Abort:
        event.flags = select.KQ_EV_DELETE
        with contextlib.suppress(OSError):
            kqueue.control([event], 0)
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_kevent(pid, select.KQ_FILTER_PROC, abort)


async def wait_gone(pid: int) -> None:
    """Wait for a process that is not our child to end; its exit status is not ours to know."""
    if sys.platform == "linux" and hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            await trio.lowlevel.wait_readable(fd)
        finally:
            trio.lowlevel.notify_closing(fd)
            os.close(fd)
        return
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        await trio.sleep(0.1)
