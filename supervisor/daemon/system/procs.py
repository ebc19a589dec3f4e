"""The processes of a terminal's session: find them, signal them, end them, read a status."""

import contextlib
import errno
import os
import signal
from collections.abc import Iterator, Sequence

import trio

from supervisor import procfs

ESCALATION = (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL)
KILL_WAIT = 5.0

_spare: int | None = None


def keep_spare_fd() -> None:
    """Hold one fd in reserve, so that ending sessions still works when every fd is taken."""
    global _spare
    if _spare is None:
        _spare = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


@contextlib.contextmanager
def _with_spare_fd() -> Iterator[None]:
    global _spare
    if _spare is not None:
        os.close(_spare)
        _spare = None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            keep_spare_fd()


def _every() -> list[procfs.ProcStat]:
    try:
        return procfs.every()
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE):
            raise
    with _with_spare_fd():
        return procfs.every()


def sessions_members(sids: set[int]) -> dict[int, list[int]]:
    """The live processes of each of the sessions `sids`, in one pass over the processes."""
    found: dict[int, list[int]] = {}
    for proc in _every():
        if proc.sid in sids and not proc.zombie:
            found.setdefault(proc.sid, []).append(proc.pid)
    return found


def session_members(sid: int) -> list[int]:
    """Every live process whose session id is `sid`."""
    return sessions_members({sid}).get(sid, [])


def signal_pids(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def decode_status(status: int) -> tuple[int | None, int | None]:
    """(exit_code, signal) from a wait status."""
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status), None
    return None, None


async def end_sessions(sids: set[int], grace: float, poll: float) -> None:
    """End every process of the terminal sessions `sids`: SIGHUP (with SIGCONT, so that
    stopped jobs hear it), then SIGTERM, then SIGKILL, `grace` seconds apart unless they
    are gone sooner; the processes are looked up in one pass per round."""
    for sig in ESCALATION:
        members = [p for pids in sessions_members(sids).values() for p in pids]
        if not members:
            return
        signal_pids(members, sig)
        if sig == signal.SIGHUP:
            signal_pids(members, signal.SIGCONT)
        with trio.move_on_after(KILL_WAIT if sig == signal.SIGKILL else grace):
            while sessions_members(sids):
                await trio.sleep(poll)
