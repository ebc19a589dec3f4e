"""The blocking client: plain sockets, no event loop. The CLI is built on it, so it imports
little: `_socket` rather than `socket` (whose enums cost a `ptysup` call ~6 ms), deque from
`_collections` rather than the collections package (~3 ms), no `typing` at run time."""

from __future__ import annotations

import _socket
import errno
import select
import time
from _collections import deque

from supervisor import __version__
from supervisor.client.errors import (
    ConnectionLost,
    DaemonError,
    DaemonUnavailable,
    UntrustedSocket,
)
from supervisor.paths import (
    Untrusted,
    check_peer,
    check_socket_dir,
    check_socket_path,
    resolve_socket,
)
from supervisor.protocol import PROTOCOL_VERSION, ProtocolError
from supervisor.protocol.client import ClientConnection, ClientEvent
from supervisor.protocol.messages import Error, Event, Hello, Output, RequestId, Result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

RECV_SIZE = 64 * 1024  # larger buffers are mmap-ed and unmapped on every receive
CONNECT_RETRIES = 3


class _Default:
    """Marks an argument left out (None means: wait for ever)."""


DEFAULT = _Default()


def _open_socket(path: str) -> _socket.socket:
    """A connection to `path`, once its directory and the daemon's uid are the user's own."""
    try:
        check_socket_dir(path)
    except Untrusted as exc:
        raise UntrustedSocket(str(exc)) from None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        check_peer(path, sock)
    except Untrusted as exc:
        sock.close()
        raise UntrustedSocket(str(exc)) from None
    except OSError:
        sock.close()
        raise
    return sock


def connect(
    socket_path: str | None = None, *, autostart: bool = True, timeout: float | None = 30.0
) -> Client:
    """Connect to the daemon on `socket_path` (default: $PTYSUP_SOCKET or the usual place),
    starting one first if none answers and `autostart` is true."""
    path = resolve_socket(socket_path)
    if problem := check_socket_path(path):
        raise DaemonUnavailable(problem)
    for attempt in range(CONNECT_RETRIES):
        try:
            return Client(_open_socket(path), path, timeout=timeout)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED):
                raise DaemonUnavailable(f"cannot connect to {path}: {exc.strerror}") from None
            if not autostart:
                raise DaemonUnavailable(
                    f"no daemon is running on {path} (start one with `ptysup daemon`, "
                    "or leave out --no-start)"
                ) from None
            if attempt == CONNECT_RETRIES - 1:
                raise DaemonUnavailable(f"cannot connect to {path}: {exc.strerror}") from None
        from supervisor.client.autostart import start_daemon

        try:
            start_daemon(path)
        except DaemonUnavailable:
            # Another client may have started one at the same moment.
            try:
                return Client(_open_socket(path), path, timeout=timeout)
            except OSError:
                pass
            raise
    raise DaemonUnavailable(f"cannot connect to {path}")


class Client:
    def __init__(self, sock: _socket.socket, path: str, *, timeout: float | None = 30.0) -> None:
        self.sock = sock
        self.path = path
        self.timeout = timeout
        self.protocol = ClientConnection()
        self._events: deque[ClientEvent] = deque()
        self._closed = False
        self.server: Hello | None = None
        # Refused at once, the hello cannot go out: the daemon's reason waits to be read.
        try:  # noqa: SIM105 (contextlib is one more import on every call)
            self.sock.sendall(
                self.protocol.hello(PROTOCOL_VERSION, [], client=f"ptysup/{__version__}")
            )
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.server = self._wait_hello()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def daemon_pid(self) -> int | None:
        """The daemon's pid, from its hello: the same across an upgrade in place."""
        pid = self.server.info.get("pid") if self.server else None
        return pid if isinstance(pid, int) else None

    # -- receiving ----------------------------------------------------------------

    def receive(self, timeout: float | None) -> bool:
        """Read once from the socket into the event queue; False on timeout."""
        if timeout is not None:
            readable, _, _ = select.select([self.sock], [], [], max(timeout, 0))
            if not readable:
                return False
        try:
            data = self.sock.recv(RECV_SIZE)
        except ConnectionResetError:
            data = b""
        if not data:
            raise ConnectionLost("the daemon closed the connection")
        try:
            self._events.extend(self.protocol.receive_data(data))
        except ProtocolError as exc:
            raise ConnectionLost(f"the daemon sent something unreadable: {exc.message}") from None
        return True

    def _wait_hello(self) -> Hello:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Hello):
                    return event
                if isinstance(event, Error):
                    raise DaemonError(event.code, event.message)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise DaemonUnavailable(f"the daemon on {self.path} did not say hello")
            self.receive(left)

    def next_event(self, timeout: float | None = None) -> ClientEvent | None:
        """The next output frame or event (replies included); None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._events:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self.receive(left)
        return self._events.popleft()

    def pending(self) -> bool:
        return bool(self._events)

    # -- requests -----------------------------------------------------------------

    def send_request(self, op: str, *, pass_fd: int | None = None, **args: Any) -> RequestId:
        """Send a request; `pass_fd` goes along with it (SCM_RIGHTS, in the same message)."""
        request_id, frame = self.protocol.request(op, args)
        if pass_fd is None:
            self.sock.sendall(frame)
        else:
            import array

            rights = array.array("i", [pass_fd]).tobytes()
            sent = self.sock.sendmsg([frame], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
            self.sock.sendall(frame[sent:])
        return request_id

    def wait_reply(
        self, request_id: RequestId, timeout: float | _Default | None = DEFAULT
    ) -> dict[str, Any]:
        """Wait for the reply to `request_id`; other events stay queued in order."""
        timeout = self.timeout if isinstance(timeout, _Default) else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = 0
        while True:
            for i in range(seen, len(self._events)):
                event = self._events[i]
                if isinstance(event, Result | Error) and event.id == request_id:
                    del self._events[i]
                    if isinstance(event, Error):
                        raise DaemonError(event.code, event.message)
                    return event.result
                if isinstance(event, Error) and event.id is None and event.sub is None:
                    del self._events[i]
                    raise DaemonError(event.code, event.message)
            seen = len(self._events)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise DaemonUnavailable(f"no reply from the daemon within {timeout} s")
            self.receive(left)

    def call(
        self,
        op: str,
        *,
        reply_timeout: float | _Default | None = DEFAULT,
        pass_fd: int | None = None,
        **args: Any,
    ) -> dict[str, Any]:
        """Send one request and wait for its result (or raise its error)."""
        return self.wait_reply(
            self.send_request(op, pass_fd=pass_fd, **args), timeout=reply_timeout
        )

    def send_input(self, sub: int, data: bytes) -> None:
        self.sock.sendall(self.protocol.input(sub, data))

    def send_written(self, sub: int, offset: int) -> None:
        self.sock.sendall(self.protocol.written(sub, offset))

    # -- conveniences -----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def spawn(self, argv: list[str], **options: Any) -> dict[str, Any]:
        return self.call("spawn", argv=argv, **options)

    def list(self, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        args = {"labels": labels} if labels else {}
        return self.call("list", **args)["sessions"]

    def info(self, session: str) -> dict[str, Any]:
        return self.call("info", session=session)

    def write(self, session: str, data: bytes | str) -> int:
        if isinstance(data, str):
            return self.call("write", session=session, data=data)["written"]
        from base64 import b64encode

        return self.call("write", session=session, data_b64=b64encode(data).decode("ascii"))[
            "written"
        ]

    def read(self, session: str, since: int | None = 0) -> tuple[int, int, bool, bytes]:
        """(start, end, truncated, data): the output kept from `since` to the end."""
        result = self.call("subscribe", session=session, since=since, follow=False)
        sub = result["sub"]
        parts = []
        for event in self.stream(sub):
            if isinstance(event, Output):
                parts.append(event.data)
        return result["start"], result["end"], result["truncated"], b"".join(parts)

    def stream(self, sub: int, timeout: float | None = None) -> Iterator[Output | Event]:
        """Output and events of one subscription until its `end` event (included)."""
        while True:
            for i, event in enumerate(self._events):
                if (isinstance(event, Output | Event) and event.sub == sub) or (
                    isinstance(event, Error) and event.sub == sub
                ):
                    del self._events[i]
                    break
            else:
                self.receive(timeout)
                continue
            if isinstance(event, Error):
                raise DaemonError(event.code, event.message)
            yield event
            if isinstance(event, Event) and event.event == "end":
                return

    def wait(self, session: str, timeout: float | None = None) -> dict[str, Any]:
        return self.call("wait", session=session, timeout=timeout, reply_timeout=None)

    def kill(self, session: str, signal: str | int | None = None) -> dict[str, Any]:
        return self.call("kill", session=session, signal=signal, reply_timeout=None)

    def resize(self, session: str, cols: int, rows: int) -> dict[str, Any]:
        return self.call("resize", session=session, cols=cols, rows=rows)

    def remove(self, session: str) -> dict[str, Any]:
        return self.call("remove", session=session, reply_timeout=None)

    def stop(self, timeout: float = 30.0) -> int:
        """Ask the daemon to stop; return once it has gone. Returns its pid."""
        return self.wait_gone(int(self.call("stop")["pid"]), timeout)

    def wait_gone(self, pid: int, timeout: float = 30.0) -> int:
        """Wait until the daemon `pid` has closed this connection and ended."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.receive(deadline - time.monotonic())
        except ConnectionLost:
            pass
        from supervisor.procfs import alive

        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.01)
        return pid
