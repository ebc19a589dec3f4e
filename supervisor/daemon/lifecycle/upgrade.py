"""Upgrade in place: the daemon re-executes itself (same pid, so its children stay its
children) and hands the new image its listening socket, its lock, every terminal's master
and a state file with the sessions, their scrollback and the input queued for them. What
children write meanwhile waits in the terminals; before that, it waits (a bounded time, its
children held) until every lossless subscriber has been sent what it was owed, so that a
resumed one goes on from its offset with nothing lost."""

import contextlib
import os
import subprocess
import sys
from typing import NoReturn

import trio

import supervisor
from supervisor import logs
from supervisor.daemon.clients.hub import Hub
from supervisor.daemon.lifecycle import credentials, state
from supervisor.daemon.lifecycle.listener import Listener
from supervisor.daemon.session import flow
from supervisor.daemon.session import plane as byteplane
from supervisor.service.notify import Notifier

log = logs.get_logger("supervisor.upgrade")

STATE_NAME = "upgrade.state"
CHECK_TIMEOUT = 30.0
FLUSH_TIMEOUT = 0.3
HANDOVER_TIMEOUT = 10.0
"""Seconds the upgrade waits, its children held, for lossless subscribers to be handed
what they have not yet been sent: past it, a resumed one is told what it missed."""


def snapshot(daemon: Hub, listener: Listener, *, final: bool = False) -> state.DaemonState:
    """`final`: the state handed over, with the input the clients' queues hold taken out
    of them (the first, to check the new code, leaves it)."""
    assert listener.sock is not None
    sessions = daemon.registry.export()
    if final:
        queued: dict[str, list[bytes]] = {}
        for client in daemon.clients:
            for sid, parts in client.take_queued_input().items():
                queued.setdefault(sid, []).extend(parts)
        for saved in sessions:
            session = daemon.registry.sessions[saved.id]
            saved.input = session.writer.queued() + b"".join(queued.get(saved.id, []))
            saved.followers = sum(
                1 for sub in session.subscribers.values() if sub.lossless and sub.follow
            )
    return state.DaemonState(
        socket=listener.path,
        next_id=daemon.registry.next_id,
        listen_fd=listener.sock.fileno(),
        lock_fd=listener.lock_fd,
        daemon_version=supervisor.__version__,
        owns_path=listener.owns_path,
        gateway_port=daemon.registry.gateway.port if daemon.registry.gateway else None,
        sessions=sessions,
    )


async def check_new_image(path: str) -> str | None:
    """Start the installed code far enough to prove that it imports and reads this state;
    None if it does, else what went wrong."""
    argv = [sys.executable, "-m", "supervisor.daemon", "--check-state", path]
    with trio.move_on_after(CHECK_TIMEOUT):
        done = await trio.run_process(
            argv, stdin=subprocess.DEVNULL, capture_stdout=True, capture_stderr=True, check=False
        )
        if done.returncode == 0:
            return None
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        return detail[-1] if detail else f"the new code exited with status {done.returncode}"
    return f"the new code did not answer within {CHECK_TIMEOUT:.0f} s"


async def perform(daemon: Hub, listener: Listener, notifier: Notifier) -> None:
    """Carry out the pending upgrade; returns only if it was refused or failed."""
    upgrade = daemon.upgrade
    assert upgrade is not None
    directory = os.path.dirname(listener.path)
    notifier.reloading("upgrading in place: checking the new code")
    try:
        path = state.write(snapshot(daemon, listener), directory, STATE_NAME)
        error = await check_new_image(path)
    except OSError as exc:
        error = f"cannot write the state file: {exc}"
    if error is not None:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, STATE_NAME))
        log.warning("upgrade refused", error=error)
        upgrade.error = error
        upgrade.checked.set()
        notifier.ready("upgrade refused; serving on")
        return
    upgrade.checked.set()
    daemon.tell_restarting()
    # What the children write from now on waits in their terminals: the output a lossless
    # subscriber has not been sent stays in the ring, to be sent by the new image.
    plane = byteplane.current()
    if plane is not None:
        plane.freeze(True)
        plane.dispatch()
    flow.hold_all(True)
    await _hand_out(daemon)
    # Nothing awaits from here on: the state written is the state handed over.
    if plane is not None:
        plane.dispatch()
    try:
        final = snapshot(daemon, listener, final=True)
        # The new image reads it at once: syncing it to the disk would only lengthen the
        # pause every session sees.
        path = state.write(final, directory, STATE_NAME, durable=False)
        _exec(listener, final, path, notifier.enabled)
    except OSError as exc:
        listener.take_back()
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, STATE_NAME))
        for saved in final.sessions:
            if saved.master is not None:
                os.set_inheritable(saved.master, False)
        if plane is not None:
            plane.freeze(False)
        flow.hold_all(False)
        log.error("upgrade failed; serving on with the old code", error=str(exc))
        daemon.upgrade = None
        notifier.ready("upgrade failed; serving on")


def _lossless_waiting(daemon: Hub) -> bool:
    """Some lossless subscriber has output queued here or not yet taken by its socket."""
    for client in daemon.clients:
        subs = [s for s in client.subscriptions.values() if s.lossless and not s.native]
        outbox = client.outbox
        settled = outbox.idle and not outbox._unsent  # and nothing taken but unsent
        if subs and (not settled or any(s.queued for s in subs)):
            return True
    return False


async def _hand_out(daemon: Hub) -> None:
    """Let the clients take what is queued for them: every one for FLUSH_TIMEOUT (the
    `restarting` event), lossless subscribers for HANDOVER_TIMEOUT (their output)."""
    began = trio.current_time()
    with trio.move_on_after(HANDOVER_TIMEOUT):
        while _lossless_waiting(daemon) or (
            trio.current_time() - began < FLUSH_TIMEOUT
            and not all(client.outbox.idle for client in daemon.clients)
        ):
            await trio.sleep(0.005)
    if _lossless_waiting(daemon):
        log.warning("upgrade: lossless subscribers still lag; they resume from the ring")


def _exec(listener: Listener, final: state.DaemonState, path: str, notify: bool) -> NoReturn:
    for saved in final.sessions:
        if saved.master is not None:
            os.set_inheritable(saved.master, True)
    listener.hand_over()
    log.info("re-executing", sessions=len(final.sessions), state=path)
    argv = [sys.executable, "-m", "supervisor.daemon", "--socket", listener.path, "--resume", path]
    if not notify:
        argv.append("--no-notify")
    env = dict(os.environ)
    fd = None
    if credentials.held():
        try:
            fd = credentials.hand_over()
        except credentials.HandOverError as exc:
            raise OSError(f"cannot hand the OpenCode server's credentials over: {exc}") from None
        env[credentials.FD_VARIABLE] = str(fd)
    try:
        os.execve(sys.executable, argv, env)
    finally:
        if fd is not None:
            os.close(fd)
