"""`ptysup run`: spawn, feed it this process's stdin, stream its output, exit with its status."""

import argparse
import contextlib
import os
import select
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from supervisor.cli import render
from supervisor.cli.common import (
    Failure,
    client,
    follow_again,
    notice,
    spawn_request,
    terminal_size,
    write_out,
)

if TYPE_CHECKING:
    from supervisor.client.blocking import Client

STDIN_READ = 64 * 1024
SEND_AHEAD = 256 * 1024
EOF_CHAR = b"\x04"


def stdin_mode(args: argparse.Namespace) -> str:
    """`none`, `terminal` (raw, key by key) or `stream` (a pipe or a file, then EOF)."""
    if args.no_stdin:
        return "none"
    try:
        os.fstat(0)
    except OSError:
        return "none"
    return "terminal" if os.isatty(0) else "stream"


class Feed:
    """This process's stdin on its way to the child, never blocking the output's way back."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.open = mode != "none"
        self.pending = bytearray()
        self.last = b"\n"
        self.read_eof = False

    def wants_read(self, direct: bool) -> bool:
        """Read stdin now? Not while the daemon reads the keys from the terminal itself."""
        if not self.open or self.read_eof or len(self.pending) >= SEND_AHEAD:
            return False
        return not (direct and self.mode == "terminal")

    def read(self, c: "Client", sub: int) -> None:
        try:
            data = os.read(0, STDIN_READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.last = data[-1:]
            self.pending += c.protocol.input(sub, data)
            return
        self.read_eof = True
        if self.mode == "stream":
            # As `script` does: an EOF character ends the child's input; after a partial
            # last line, a first one hands that line over and a second one ends the input.
            eof = EOF_CHAR if self.last in (b"\n", b"\r") else EOF_CHAR * 2
            self.pending += c.protocol.input(sub, eof)
        else:
            self.open = False

    def send(self, sock: socket.socket) -> None:
        try:
            sent = sock.send(self.pending, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        del self.pending[:sent]
        if self.read_eof and not self.pending:
            self.open = False


def _output_terminal(relay: bool) -> int | None:
    out = sys.stdout.fileno()
    return out if os.isatty(out) and not relay else None


def cmd_run(args: argparse.Namespace) -> int:
    from supervisor.cli.attach import handing_over, has_input
    from supervisor.cli.rawterm import raw_terminal, terminal_to_pass
    from supervisor.client.errors import ClientError, ConnectionLost
    from supervisor.protocol.messages import Event, Output

    mode = stdin_mode(args)
    out_tty = os.isatty(sys.stdout.fileno())
    with contextlib.ExitStack() as stack:
        c = stack.enter_context(client(args))
        # Set before the spawn: the daemon may write to this terminal itself from the start.
        if mode == "terminal":
            stack.enter_context(raw_terminal(0))
        if out_tty and not (mode == "terminal" and _same_terminal(0, 1)):
            # The child's terminal already turned its newlines into CR LF: ours must not again.
            stack.enter_context(raw_terminal(1, output_only=True))
        request: dict[str, Any] = {"lossless": True, **spawn_request(args, terminal_size())}
        request["subscribe"] = True
        if mode != "none":
            request["input"] = True
        if not out_tty and not args.terminal_bytes:
            request["output_processing"] = False
        if mode == "stream" and not args.terminal_bytes:
            request["echo"] = False
        # Handed over with input, the daemon reads keys from the terminal: only when they
        # are meant for the child. A piped stdin goes over the socket, and so does the output.
        if args.relay or mode == "stream":
            hand = None
        elif mode == "terminal":
            hand = terminal_to_pass(0, 1)
        else:
            hand = _output_terminal(args.relay)
        try:
            session = handing_over(lambda extra: c.call("spawn", **request, **extra), hand)
        except ClientError as exc:
            if "output_processing" in str(exc) or "echo" in str(exc):
                raise Failure(
                    "this daemon cannot spawn without echo or output processing; "
                    "run `ptysup upgrade`, or give --terminal-bytes"
                ) from None
            raise
        sid, sub = session["id"], session["sub"]
        direct = bool(session.get("terminal"))
        """The daemon writes the output to our terminal; frames come only for floods."""
        feed = Feed(mode)
        unnoted = False
        daemon_pid = c.daemon_pid
        offset = 0
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        interrupts = 0

        def on_signal(signum: int, _frame: object) -> None:
            nonlocal interrupts
            interrupts += 1
            raise KeyboardInterrupt

        resized = [False]

        def on_winch(signum: int, _frame: object) -> None:
            resized[0] = True  # the wake-up descriptor ends the wait; the loop resizes

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        wake_r, wake_w = os.pipe()
        for fd in (wake_r, wake_w):
            os.set_blocking(fd, False)
        stack.callback(os.close, wake_r)
        stack.callback(os.close, wake_w)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        stack.callback(signal.set_wakeup_fd, old_wakeup)
        if out_tty or mode == "terminal":
            previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, on_winch)
            # A change before the handler was in place went unheard: compare once.
            resized[0] = terminal_size() not in (None, (request.get("cols"), request.get("rows")))
        timed_out = False
        try:
            while True:
                try:
                    if unnoted and not c.pending() and not has_input(c.sock):
                        c.send_written(sub, offset)
                        unnoted = False
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        timed_out = True
                        c.kill(sid)
                        deadline = None
                        continue
                    if resized[0]:
                        resized[0] = False
                        size = terminal_size()
                        if size is not None:  # the child's terminal follows ours, as in tmux
                            by = {"sub": sub} if mode == "terminal" else {}
                            c.send_request("resize", session=sid, cols=size[0], rows=size[1], **by)
                    event = c.next_event(0) if c.pending() else None
                    if event is None:
                        _wait(c, sub, feed, direct, left, wake_r)
                        continue
                except KeyboardInterrupt:
                    c.send_request("kill", session=sid, signal="INT" if interrupts < 2 else None)
                    continue
                except ConnectionLost:
                    c, sub, offset = follow_again(args.socket, sid, offset, daemon_pid)
                    stack.enter_context(c)
                    direct = unnoted = False
                    feed.open = False  # what was typed meanwhile is not ours to replay
                    continue
                if isinstance(event, Output) and event.sub == sub:
                    if event.offset > offset and not direct:
                        notice(f"skipped bytes {offset}..{event.offset}")
                    try:
                        write_out(event.data[max(0, offset - event.offset) :])
                    except BrokenPipeError:
                        # Whoever read our output is gone: end the child, as SIGPIPE would.
                        c.remove(sid)
                        raise
                    offset = max(offset, event.offset + len(event.data))
                    unnoted = direct
                elif isinstance(event, Event) and event.sub == sub:
                    if event.event == "relayed":
                        direct = unnoted = False
                        offset = max(offset, int(event.fields.get("offset") or 0))
                    elif event.event == "hangup":
                        c.remove(sid)  # our terminal went away: end the child, as SIGHUP would
                        raise Failure("the terminal went away")
                    elif event.event == "end":
                        break
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        final = c.info(sid)
        if not args.keep:
            c.remove(sid)
    if timed_out:
        notice(f"timed out after {args.timeout} s")
        return 124
    return render.exit_status(final)


def _same_terminal(a: int, b: int) -> bool:
    try:
        return os.isatty(a) and os.isatty(b) and os.fstat(a).st_rdev == os.fstat(b).st_rdev
    except OSError:
        return False


def _wait(
    c: "Client", sub: int, feed: Feed, direct: bool, timeout: float | None, wake: int
) -> None:
    """Until the socket or stdin has something, the socket can take pending input, or a
    signal arrived (its byte on `wake`)."""
    reading = feed.wants_read(direct)
    watched = [c.sock, wake, 0] if reading else [c.sock, wake]
    readable, writable, _ = select.select(watched, [c.sock] if feed.pending else [], [], timeout)
    if wake in readable:
        with contextlib.suppress(OSError):
            os.read(wake, 256)
    if writable:
        feed.send(c.sock)
    if reading and 0 in readable:
        feed.read(c, sub)
    if c.sock in readable:
        c.receive(0)
