"""Crash safety under systemd: every terminal's master sits in the service's fd store
(FDSTORE=1, FDNAME=pty-<id>, FDPOLL=0) and the sessions are snapshotted every few seconds,
so that a daemon restarted after a crash takes back the terminals whose children live on.
Those children are no longer its children: it watches them end, but their exit status is
not its to know, and it says so (`exit_known: false`)."""

import contextlib
import os
import time

import trio

from supervisor import logs, procfs
from supervisor.daemon.lifecycle import state
from supervisor.daemon.registry import Registry
from supervisor.daemon.session.session import Session
from supervisor.service.activation import STORED_PREFIX
from supervisor.service.notify import Notifier

log = logs.get_logger("supervisor.crash")

SNAPSHOT_NAME = "crash.state"
SNAPSHOT_INTERVAL = 2.0


def store_name(session_id: str) -> str:
    return f"{STORED_PREFIX}{session_id}"


class FdStore:
    """Keeps the service manager's fd store in step with the sessions."""

    def __init__(self, notifier: Notifier, directory: str) -> None:
        self.notifier = notifier
        self.path = os.path.join(directory, SNAPSHOT_NAME)
        self._written: tuple[object, ...] | None = None

    def added(self, session: Session) -> None:
        if not session.master.closed:
            self.notifier.send(
                "FDSTORE=1",
                f"FDNAME={store_name(session.id)}",
                "FDPOLL=0",
                fds=[session.master.fd],
            )

    def removed(self, session: Session) -> None:
        self.notifier.send("FDSTOREREMOVE=1", f"FDNAME={store_name(session.id)}")

    async def keep_snapshot(self, registry: Registry, socket_path: str) -> None:
        """Write the sessions (and their scrollback) whenever they changed, every few seconds."""
        while True:
            await trio.sleep(SNAPSHOT_INTERVAL)
            mark = tuple((s.id, s.state, s.ring.end, s.title) for s in registry.sessions.values())
            if mark == self._written:
                continue
            snapshot = state.DaemonState(
                socket=socket_path,
                next_id=registry.next_id,
                listen_fd=None,
                lock_fd=None,
                daemon_version="",
                sessions=registry.export(screen=False),
            )
            try:
                await trio.to_thread.run_sync(
                    state.write, snapshot, os.path.dirname(self.path), SNAPSHOT_NAME
                )
                self._written = mark
            except OSError as exc:
                log.warning("cannot write the crash snapshot", error=str(exc))

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _still_ours(pid: int, master: int) -> bool:
    """Whether `pid` is still the leader of the session on this terminal, not another
    process that got its number since."""
    try:
        info = procfs.stat(pid)
        slave = os.stat(os.ptsname(master)).st_rdev if hasattr(os, "ptsname") else None
    except OSError:
        return False
    if info is None or info.zombie or info.sid != pid:
        return False
    return slave is None or info.tty is None or info.tty == slave


def recover(registry: Registry, directory: str, stored: dict[str, int], notifier: Notifier) -> int:
    """Take back the terminals a crashed daemon left in the fd store; returns how many."""
    path = os.path.join(directory, SNAPSHOT_NAME)
    try:
        saved = state.read(path)
    except state.StateError as exc:
        log.error("terminals in the fd store, but no snapshot to match them", error=str(exc))
        saved = None
    adopted: list[state.SessionState] = []
    for entry in saved.sessions if saved else []:
        fd = stored.pop(store_name(entry.id), None)
        entry.parented = False
        if fd is None:
            entry.master = None
            if entry.state == "running":
                entry.state = "exited"
                entry.exited_at = entry.exited_at or time.time()
                entry.exit_known = False
        else:
            entry.master = fd
            if entry.state == "running" and not _still_ours(entry.pid, fd):
                entry.state = "exited"
                entry.exited_at = time.time()
                entry.exit_known = False
        adopted.append(entry)
    for name, fd in stored.items():
        log.warning("a stored terminal nobody knows; released", name=name)
        notifier.send("FDSTOREREMOVE=1", f"FDNAME={name}")
        with contextlib.suppress(OSError):
            os.close(fd)
    registry.adopt(adopted, saved.next_id if saved else 1)
    log.info("took back terminals after a crash", sessions=len(adopted))
    return len(adopted)
