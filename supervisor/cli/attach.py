"""`ptysup attach`: this terminal, in raw mode, joined to a session's terminal."""

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from supervisor.cli import render
from supervisor.cli.rawterm import raw_terminal, terminal_size_of, terminal_to_pass
from supervisor.client.blocking import Client, connect
from supervisor.client.errors import ClientError, ConnectionLost, DaemonError
from supervisor.protocol.messages import Error, Event, Output, Result
from supervisor.screen.modes import detach_sequence

STDIN_READ = 64 * 1024
RECONNECT_TIMEOUT = 30.0
RESTART_PATIENCE = 15.0
"""Seconds keys wait in the terminal after the daemon said it restarts (it hands over for
10 s at most, upgrade.HANDOVER_TIMEOUT): past them, the upgrade failed."""
REDRAW_INTERVAL = 0.5


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
    raise ValueError(f"cannot read {spec!r}; try ctrl-\\, ctrl-a or none")


Request = Callable[[dict[str, Any]], dict[str, Any]]
"""Makes the spawn or attach request, with these extra arguments, on the client it was made
for; returns {"session": ..., "sub": ..., "start": ..., "redraw": ..., "terminal": ...}."""


def has_input(sock: Any) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def handing_over(request: Request, fd: int | None, **extra: Any) -> dict[str, Any]:
    """Make the request with the terminal `fd` handed to the daemon (and `extra`); without
    it when there is none, or when the daemon cannot take it."""
    if fd is not None:
        try:
            return request({"pass_fd": fd, "terminal": True, **extra})
        except DaemonError as exc:
            if not exc.message.startswith("terminal:"):
                raise
    return request({})


class Attachment:
    """One attached terminal. Handed to the daemon (the usual way), the daemon writes the
    output to it and reads the keys from it itself, and this process waits for events and
    window sizes; relayed, this process carries both over the socket."""

    def __init__(
        self,
        client: Client,
        detach_key: int | None,
        *,
        read_only: bool = False,
        relay: bool = False,
    ) -> None:
        self.client = client
        self.sid = ""
        self.sub = 0
        self.detach_key = detach_key
        self.read_only = read_only
        self.relay = relay
        self.direct = False
        """The daemon holds the terminal now."""
        self.unnoted = False
        """Output frames were written that the daemon has not been told of."""
        self.observing = False
        """Told that another client has control."""
        self.restarting: float | None = None
        """The daemon is about to restart in place: until this client is attached again (or
        this monotonic time, should the upgrade fail), the keys wait in the terminal instead
        of going to a daemon that may not read them."""
        self.stdin = sys.stdin.fileno()
        self.stdout = sys.stdout.fileno()
        self.redraws: set[Any] = set()
        self.reason = ""
        self.status = 0
        self.last_redraw = 0.0
        self.offset: int | None = None
        """Where the output shown so far ends, when this process knows: an attach after
        the daemon restarted in place resumes there (or else redraws the screen)."""
        self.clients = [client]

    def _begin(self, request: Request) -> None:
        """Make the request: with the terminal handed over where it can be."""
        fd = None if self.relay else terminal_to_pass(self.stdin, self.stdout)
        result = handing_over(request, fd, detach_key=self.detach_key)
        self.sid = result["session"]["id"]
        self.sub = result["sub"]
        self.direct = bool(result.get("terminal"))
        if result.get("redraw"):
            self._write(str(result["redraw"]).encode("utf-8", "replace"))
        self.offset = None if self.direct else result["start"]

    def run(self, request: Request) -> int:
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
        try:
            with raw_terminal(self.stdin, give_back=detach_sequence().encode()):
                self._begin(request)
                while True:
                    try:
                        self._loop(wake_r, got)
                        break
                    except ConnectionLost:
                        if not self._reconnect():
                            if not self.reason:
                                self.reason, self.status = "the daemon went away", 1
                            break
        finally:
            for extra in self.clients[1:]:
                extra.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
            os.close(wake_r)
            os.close(wake_w)
        sys.stderr.write(f"\r\n[ptysup: {self.reason}]\r\n")
        sys.stderr.flush()
        return self.status

    def _loop(self, wake_r: int, got: dict[str, bool]) -> None:
        client = self.client
        stdin_open = True
        while True:
            while client.pending():
                if self._handle(client.next_event(0)):
                    return
            if self.unnoted and self.offset is not None and not has_input(client.sock):
                client.send_written(self.sub, self.offset)
                self.unnoted = False
            if self.restarting is not None and time.monotonic() > self.restarting:
                self.restarting = None  # the upgrade failed: the old daemon serves on
            reading = stdin_open and not self.direct and self.restarting is None
            watch = [client.sock, wake_r] + ([self.stdin] if reading else [])
            try:
                wait = None if self.restarting is None else 1.0
                readable, _, _ = select.select(watch, [], [], wait)
            except InterruptedError:
                readable = []
            if wake_r in readable:
                with contextlib.suppress(OSError):
                    os.read(wake_r, 64)
            if got["quit"]:
                self.reason = "the client was told to stop; the session goes on"
                return
            if got["winch"]:
                got["winch"] = False
                size = terminal_size_of(self.stdin)
                if size is not None:
                    client.send_request(
                        "resize", session=self.sid, cols=size[0], rows=size[1], sub=self.sub
                    )
            if reading and self.stdin in readable:
                data = os.read(self.stdin, STDIN_READ)
                if not data:
                    stdin_open = False
                    continue
                if self.detach_key is not None and self.detach_key in data:
                    before = data[: data.index(self.detach_key)]
                    if before and not self.read_only:
                        client.send_input(self.sub, before)
                    self.reason = f"detached from session {self.sid}"
                    return
                if not self.read_only:
                    client.send_input(self.sub, data)
            if client.sock in readable:
                client.receive(None)

    def _reconnect(self) -> bool:
        """After the daemon restarted in place: attach again from where the output shown
        ends, so that nothing is missed or repeated."""
        self.restarting = None
        deadline = time.monotonic() + RECONNECT_TIMEOUT
        size = terminal_size_of(self.stdin)
        while time.monotonic() < deadline:
            try:
                client = connect(self.client.path, autostart=False, timeout=5)
            except ClientError:
                time.sleep(0.02)
                continue
            self.clients.append(client)
            if client.daemon_pid != self.clients[0].daemon_pid:
                self.reason = "the daemon was replaced by a new one; the session is gone"
                self.status = 1
                return False

            def request(extra: dict[str, Any], client: Client = client) -> dict[str, Any]:
                return client.call(
                    "attach",
                    session=self.sid,
                    since=self.offset,
                    read_only=self.read_only,
                    cols=size[0] if size else None,
                    rows=size[1] if size else None,
                    **extra,
                )

            try:
                self._begin(request)
            except DaemonError as exc:
                self.reason, self.status = f"cannot attach again: {exc.message}", 1
                self._ended_meanwhile(client)
                return False
            except ClientError:
                continue
            self.client = client
            return True
        return False

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.stdout, view) :]

    def _notice(self, text: str) -> None:
        self._write(f"\r\n[ptysup: {text}]\r\n".encode())

    def _handle(self, event: Any) -> bool:
        """Act on one event; True when the attachment is over."""
        if isinstance(event, Output) and event.sub == self.sub:
            self._write(event.data)
            self.offset = event.offset + len(event.data)
            self.unnoted = self.direct
        elif isinstance(event, Event) and event.sub == self.sub:
            return self._handle_event(event)
        elif isinstance(event, Event) and event.event == "restarting":
            self.restarting = time.monotonic() + RESTART_PATIENCE
        elif isinstance(event, Result) and event.id in self.redraws:
            self.redraws.discard(event.id)
            self._write(str(event.result.get("ansi", "")).encode("utf-8", "replace"))
            self.offset = event.result.get("offset")
        elif isinstance(event, Error) and (event.sub == self.sub or event.id in self.redraws):
            self.reason, self.status = f"error: {event.message}", 1
            return True
        return False

    def _ended_meanwhile(self, client: Client) -> None:
        """The session ended while the daemon restarted: say so, with the child's status."""
        try:
            session = client.info(self.sid)
        except (DaemonError, ClientError):
            return
        if session.get("state") == "exited":
            self.reason = f"session ended ({render.exit_text(session)})"
            self.status = render.exit_status(session)

    def _handle_event(self, event: Event) -> bool:
        if event.event == "end":
            fields = event.fields
            if fields.get("reason") == "removed":
                self.reason, self.status = "the session was removed", 1
            else:
                session = {"state": "exited", **fields, "signal_name": None}
                self.reason = f"session ended ({render.exit_text(session)})"
                self.status = render.exit_status(session)
            return True
        if event.event == "detached":
            self.reason = f"detached from session {self.sid}"
            return True
        if event.event == "hangup":
            self.reason, self.status = "the terminal went away; the session goes on", 1
            return True
        if event.event == "redraw":  # this terminal's size is not the session's
            self._write(str(event.fields.get("ansi", "")).encode("utf-8", "replace"))
            offset = event.fields.get("offset")
            self.offset = offset if isinstance(offset, int) else self.offset
            return False
        if event.event == "relayed":
            self.direct = self.unnoted = False
            offset = event.fields.get("offset")
            if isinstance(offset, int):
                self.offset = max(offset, self.offset or 0)
        elif event.event == "role":
            role = event.fields.get("role")
            if role == "observer" and not self.read_only:
                self._notice("another client took control; you are observing")
            elif role == "controller" and self.observing:
                self._notice("you are in control again")
            self.observing = role == "observer"
        elif event.event == "skipped":
            self.offset = None
            now = time.monotonic()
            if not self.redraws and now - self.last_redraw >= REDRAW_INTERVAL:
                self.last_redraw = now
                self.redraws.add(self.client.send_request("screen", session=self.sid, ansi=True))
        return False


def attach_loop(
    client: Client,
    request: Request,
    detach_key: int | None,
    *,
    read_only: bool = False,
    relay: bool = False,
) -> int:
    attachment = Attachment(client, detach_key, read_only=read_only, relay=relay)
    return attachment.run(request)
