"""A session as plain data, to hand it to a new image of the daemon (or the next daemon,
after a crash), and back."""

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supervisor.daemon.session.ring import Ring
from supervisor.daemon.session.session import Session
from supervisor.daemon.spawn.context import Context
from supervisor.daemon.system.fd import OwnedFd


@dataclass
class SessionState:
    id: str
    name: str | None
    argv: list[str]
    cwd: str
    pid: int
    tty: str
    master: int | None
    cols: int
    rows: int
    created_at: float
    exited_at: float | None
    exit_code: int | None
    signal: int | None
    state: str
    title: str | None
    context: dict[str, Any] | None
    ring_end: int
    scrollback: bytes = b""
    exit_known: bool = True
    parented: bool = True
    """Whether the daemon is this child's parent (and may wait for it)."""
    gateway_secret: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    screen: dict[str, Any] | None = None
    """The screen engine's state (see ScreenView.export), so that it goes on exactly."""
    input: bytes = b""
    """Input the daemon had queued for the child and not yet written, in order: the new
    image writes it before any other (an upgrade in place only: a crash snapshot is old)."""
    followers: int = 0
    """Lossless subscribers following it, to hold the child for until they come back (an
    upgrade in place only)."""


def export(session: Session, *, screen: bool = True) -> SessionState:
    """`screen`: with the screen engine's state (an upgrade in place; a crash snapshot,
    written every few seconds, goes without it)."""
    start, scrollback = session.ring.snapshot()
    return SessionState(
        id=session.id,
        name=session.name,
        argv=session.argv,
        cwd=session.cwd,
        pid=session.pid,
        tty=session.tty,
        master=None if session.master.closed else session.master.fd,
        cols=session.cols,
        rows=session.rows,
        created_at=session.created_at,
        exited_at=session.exited_at,
        exit_code=session.exit_code,
        signal=session.signal,
        state=session.state,
        title=session.title,
        context=session.context.describe() if session.context else None,
        ring_end=start + len(scrollback),
        scrollback=scrollback,
        exit_known=session.exit_known,
        parented=session.parented,
        gateway_secret=session.gateway_secret,
        labels=dict(session.labels),
        screen=session.view.export() if screen else None,
    )


def restore(saved: SessionState, ring_size: int, on_finished: Callable[[Session], None]) -> Session:
    ring = Ring(ring_size, end=saved.ring_end - len(saved.scrollback))
    ring.append(saved.scrollback)
    if saved.master is not None:
        os.set_inheritable(saved.master, False)
        os.set_blocking(saved.master, False)
    session = Session(
        saved.id,
        saved.name,
        saved.argv,
        saved.cwd,
        pid=saved.pid,
        master=OwnedFd(saved.master if saved.master is not None else -1),
        tty=saved.tty,
        cols=saved.cols,
        rows=saved.rows,
        ring=ring,
        context=Context.from_dict(saved.context) if saved.context else None,
        on_finished=on_finished,
        title=saved.title,
        screen=saved.screen,
    )
    session.created_at = saved.created_at
    session.exited_at = saved.exited_at
    session.exit_code = saved.exit_code
    session.signal = saved.signal
    session.state = saved.state
    session.writer.running = saved.state == "running"
    session.exit_known = saved.exit_known
    session.parented = saved.parented
    session.gateway_secret = saved.gateway_secret
    session.labels = dict(saved.labels)
    session.writer.prime(saved.input)
    if saved.followers:
        session.flow.await_resumes(saved.followers)
    if saved.screen is None and not saved.parented:
        session.view.exact = False  # adopted after a crash: output may have been lost
    if saved.state == "exited":
        session.finished.set()
    return session
