"""`ptysup attach`: this terminal, in raw mode, joined to a session's terminal."""

import contextlib
import os
import select
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from typing import Any

from supervisor.cli import render
from supervisor.client.blocking import Client
from supervisor.client.errors import ConnectionLost
from supervisor.protocol.messages import Error, Event, Output

REPLAY_BYTES = 16 * 1024
STDIN_READ = 64 * 1024


def parse_detach_key(spec: str) -> int | None:
    """`ctrl-\\`, `C-a`, `^A` or a single character; `none` turns detaching off."""
    text = spec.strip()
    if text.lower() == "none":
        return None
    lowered = text.lower()
    for prefix in ("ctrl-", "ctrl+", "c-", "^"):
        if lowered.startswith(prefix) and len(text) == len(prefix) + 1:
            char = text[-1].upper()
            code = ord(char) ^ 0x40
            if code < 0x20 or code == 0x7F:
                return code
            break
    if len(text) == 1:
        return ord(text)
    raise SystemExit(f"ptysup: --detach-key: cannot read {spec!r}; try ctrl-\\ or ctrl-a")


def key_name(code: int | None) -> str:
    if code is None:
        return "none"
    if code < 0x20:
        return "ctrl-" + chr(code ^ 0x40).lower()
    return chr(code)


def replay_point(client: Client, session: dict[str, Any]) -> int:
    """Where to start showing output on attach: the tail, from the start of a line."""
    start = max(session["start"], session["end"] - REPLAY_BYTES)
    if start == session["start"]:
        return start
    _, _, _, data = client.read(session["id"], since=start)
    newline = data.find(b"\n")
    return start + newline + 1 if newline >= 0 else session["end"]


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Raw mode on `fd`, restored on every way out; a forked guardian restores it even
    if this process is killed outright."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    guardian = _start_guardian(fd, saved)
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
        if guardian is not None:
            with contextlib.suppress(OSError):
                os.write(guardian, b"x")
                os.close(guardian)


def _start_guardian(fd: int, saved: list[Any]) -> int | None:
    try:
        read_end, write_end = os.pipe()
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # pragma: no cover - the guardian process
        try:
            os.close(write_end)
            for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_IGN)
            if os.fork() == 0:
                _keep_only(fd, read_end)
                if not os.read(read_end, 1):
                    with contextlib.suppress(termios.error, OSError):
                        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
        finally:
            os._exit(0)
    os.close(read_end)
    os.waitpid(pid, 0)
    os.set_inheritable(write_end, False)
    return write_end


def _keep_only(tty_fd: int, pipe_fd: int) -> None:
    """In the guardian: hold no descriptor but the terminal and the pipe, so that
    it keeps neither the daemon connection nor a caller's pipes open."""
    keep = sorted({tty_fd, pipe_fd})
    low = 0
    for fd in keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def attach_loop(client: Client, session: dict[str, Any], sub: int, detach_key: int | None) -> int:
    sid = session["id"]
    stdin = sys.stdin.fileno()
    stdout = sys.stdout.fileno()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    got: dict[str, bool] = {"winch": False, "quit": False}

    def on_signal(signum: int, _frame: object) -> None:
        got["winch" if signum == signal.SIGWINCH else "quit"] = True
        with contextlib.suppress(OSError):
            os.write(wake_w, b"!")

    previous = {
        s: signal.signal(s, on_signal)
        for s in (signal.SIGWINCH, signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    }
    reason = ""
    status = 0
    stdin_open = True
    try:
        with raw_terminal(stdin):
            while True:
                while client.pending():
                    event = client.next_event(0)
                    done = _handle(event, sub, stdout)
                    if done is not None:
                        reason, status = done
                        break
                if reason:
                    break
                watch = [client.sock, wake_r] + ([stdin] if stdin_open else [])
                try:
                    readable, _, _ = select.select(watch, [], [])
                except InterruptedError:
                    readable = []
                if wake_r in readable:
                    with contextlib.suppress(OSError):
                        os.read(wake_r, 64)
                if got["quit"]:
                    reason = "the client was told to stop; the session goes on"
                    break
                if got["winch"]:
                    got["winch"] = False
                    with contextlib.suppress(OSError):
                        size = os.get_terminal_size(stdin)
                        client.send_request(
                            "resize", session=sid, cols=size.columns, rows=size.lines
                        )
                if stdin_open and stdin in readable:
                    data = os.read(stdin, STDIN_READ)
                    if not data:
                        stdin_open = False
                        continue
                    if detach_key is not None and detach_key in data:
                        before = data[: data.index(detach_key)]
                        if before:
                            client.send_input(sub, before)
                        reason = f"detached from session {sid}"
                        break
                    client.send_input(sub, data)
                if client.sock in readable:
                    client.receive(0)
    except ConnectionLost:
        reason, status = "the daemon went away", 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        os.close(wake_r)
        os.close(wake_w)
    sys.stderr.write(f"\r\n[ptysup: {reason}]\r\n")
    sys.stderr.flush()
    return status


def _handle(event: Any, sub: int, stdout: int) -> tuple[str, int] | None:
    if isinstance(event, Output) and event.sub == sub:
        view = memoryview(event.data)
        while view:
            view = view[os.write(stdout, view) :]
    elif isinstance(event, Event) and event.sub == sub and event.event == "end":
        fields = event.fields
        if fields.get("reason") == "removed":
            return "the session was removed", 1
        session = {"state": "exited", **fields, "signal_name": None}
        return f"session ended ({render.exit_text(session)})", render.exit_status(session)
    elif isinstance(event, Error) and event.sub == sub:
        return f"error: {event.message}", 1
    return None
