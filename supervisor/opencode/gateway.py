"""A loopback HTTP gateway in front of an OpenCode server for supervised children.

Every session gets its own URL, ``http://127.0.0.1:<port>/s/<secret>``: OpenCode's clients
(``opencode attach``, ``opencode run --attach``, the JS SDK's ``baseUrl``, curl) keep that
path in front of every request. A request without a known secret is refused and never
reaches the OpenCode server; one with it is forwarded with the server's own credentials and,
unless it already names a directory in the session's project, with
``x-opencode-directory`` set to the session's directory. Bodies, server-sent events and
WebSocket upgrades stream through. docs/gateway.md has the evidence and the details.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import h11
import trio

from supervisor import logs
from supervisor.opencode.gateway_directory import (
    ProjectCache,
    anchor,
    named_directories,
    without_keys,
)
from supervisor.opencode.gateway_http import (
    Headers,
    Peer,
    PeerFailed,
    end_to_end,
    json_response,
)
from supervisor.opencode.gateway_upstream import Limits, Upstream, new_secret

log = logs.get_logger("supervisor.gateway")

SECRET_PREFIX = "/s/"
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")
# Query parameters that carry credentials for OpenCode's server; the gateway supplies its own.
_CREDENTIAL_KEYS = frozenset({"auth_token"})
_NOT_FORWARDED = frozenset({b"host", b"authorization", b"expect"})
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, PeerFailed)
__all__ = ["Gateway", "Limits", "Upstream", "new_secret"]


@dataclass(frozen=True)
class _Route:
    directory: str
    path: str
    query: str


@dataclass(frozen=True)
class _Refusal:
    status: int
    message: str


class Gateway:
    """The gateway. ``lookup(secret)`` gives the session's OPENCODE_DIRECTORY, or None."""

    def __init__(
        self,
        upstream: Upstream,
        lookup: Callable[[str], str | None],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits | None = None,
        projects: ProjectCache | None = None,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the gateway listens on loopback only, not {host}")
        self.upstream = upstream
        self.host = host
        self.limits = limits or Limits()
        self._lookup = lookup
        self._requested_port = port
        self._port: int | None = None
        self._projects = projects or ProjectCache()
        self._slots = trio.Semaphore(self.limits.max_connections)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the gateway is not serving")
        return self._port

    def url_for(self, secret: str) -> str:
        """The OPENCODE_SERVER_URL of the session holding ``secret``."""
        if not _SECRET.fullmatch(secret):
            raise ValueError("a secret is 16 to 256 characters of [A-Za-z0-9_-]")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{SECRET_PREFIX}{secret}"

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; ``task_status.started(port)`` once listening."""
        listeners = await trio.open_tcp_listeners(self._requested_port, host=self.host)
        self._port = listeners[0].socket.getsockname()[1]
        log.info("gateway listening", port=self._port, upstream=self.upstream.url)
        task_status.started(self._port)
        try:
            await trio.serve_listeners(self._handle, listeners)
        finally:
            self._port = None

    def route(self, target: bytes) -> _Route | _Refusal:
        """Where a request target goes: the session's directory, the upstream path, the query."""
        text = target.decode("latin-1")
        if not text.startswith("/"):
            return _Refusal(400, "the request target must be a path")
        path, _, query = text.partition("?")
        if not path.startswith(SECRET_PREFIX):
            return _Refusal(401, "this URL carries no session secret; use $OPENCODE_SERVER_URL")
        secret, _, rest = path[len(SECRET_PREFIX) :].partition("/")
        directory = self._lookup(secret) if _SECRET.fullmatch(secret) else None
        if directory is None:
            return _Refusal(403, "unknown or expired session secret")
        return _Route(directory, "/" + rest.lstrip("/"), query)

    async def place(self, home: str, query: str, headers: Headers) -> tuple[str, Headers]:
        """The request as it goes upstream: as it is if every directory it names is in the
        project of ``home``, else naming ``home`` itself."""
        named = named_directories(query, headers)
        if named:
            for directory in named:
                if not await self._projects.inside(home, directory):
                    break
            else:
                return query, headers
        return anchor(query, headers, home)

    def forward_headers(self, headers: Headers, upgrade: bool) -> Headers:
        out = [(b"host", self.upstream.host_header)]
        out += end_to_end(headers, _NOT_FORWARDED)
        authorization = self.upstream.authorization()
        if authorization is not None:
            out.append((b"authorization", authorization))
        if upgrade:
            out.append((b"connection", b"upgrade"))
            out += [(name, value) for name, value in headers if name == b"upgrade"]
        else:
            out.append((b"connection", b"close"))
        return out

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await _refuse_raw(stream, 503, "too many connections to the gateway")
            return
        try:
            async with stream:
                await _Connection(self, stream).run()
        except Exception:
            log.exception("gateway connection failed")
        finally:
            self._slots.release()


async def _refuse_raw(stream: trio.SocketStream, status: int, message: str) -> None:
    conn = h11.Connection(h11.SERVER)
    response, body = json_response(status, message)
    with trio.move_on_after(1), contextlib.suppress(*_GONE):
        await stream.send_all(conn.send(response) + conn.send(h11.Data(data=body)))
    with contextlib.suppress(*_GONE):
        await stream.aclose()


class _Connection:
    """One client connection: its requests in turn, each over a fresh upstream connection."""

    def __init__(self, gateway: Gateway, stream: trio.SocketStream) -> None:
        self.gateway = gateway
        self.limits = gateway.limits
        self.stream = stream
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        self.client = Peer("client", conn, stream, self.limits.receive_size)

    async def run(self) -> None:
        try:
            while True:
                with trio.move_on_after(self.limits.idle_timeout) as idle:
                    event = await self.client.next_event()
                if idle.cancelled_caught or not isinstance(event, h11.Request):
                    return
                if not await self.serve(event):
                    return
                self.client.conn.start_next_cycle()
        except PeerFailed as exc:
            if exc.peer == "client":
                await self.fail(exc.status_hint, f"bad request: {exc.reason}")

    async def serve(self, request: h11.Request) -> bool:
        """Answer one request; whether the connection can carry another."""
        route = self.gateway.route(request.target)
        if isinstance(route, _Refusal):
            log.info("gateway refused a request", status=route.status)
            return await self.fail(route.status, route.message)
        if request.method == b"CONNECT":
            return await self.fail(405, "CONNECT is not supported")
        query = without_keys(route.query, _CREDENTIAL_KEYS)
        query, headers = await self.gateway.place(route.directory, query, list(request.headers))
        upgrade = any(name == b"upgrade" for name, _ in headers)
        target = self.gateway.upstream.base + route.path + (f"?{query}" if query else "")
        forwarded = h11.Request(
            method=request.method,
            target=target.encode("latin-1"),
            headers=self.gateway.forward_headers(headers, upgrade),
        )
        upstream = self.gateway.upstream
        try:
            with trio.fail_after(self.limits.connect_timeout):
                stream = await trio.open_tcp_stream(upstream.host, upstream.port)
        except (OSError, trio.TooSlowError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "timed out"
            log.warning("OpenCode server unreachable", upstream=upstream.url, error=reason)
            return await self.fail(
                502, f"the OpenCode server at {upstream.url} is unreachable: {reason}"
            )
        async with stream:
            up = Peer("upstream", h11.Connection(h11.CLIENT), stream, self.limits.receive_size)
            try:
                await up.send(forwarded)
                body_done = await self.forward_held_body(up)
            except PeerFailed as exc:
                if exc.peer == "client":
                    raise
                return await self.fail(502, f"the OpenCode server at {upstream.url} hung up")
            if self.client.conn.they_are_waiting_for_100_continue:
                await self.client.send(h11.InformationalResponse(status_code=100, headers=[]))
            return await self.relay(up, upgrade, body_done)

    async def forward_held_body(self, up: Peer) -> bool:
        """Forward what h11 already holds of the request body; whether that was all of it.

        An empty or small body is then complete before any response can arrive.
        """
        while (event := self.client.held_event()) is not None:
            if isinstance(event, h11.Data):
                await up.send(h11.Data(data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                await up.send(h11.EndOfMessage())
                return True
            else:
                raise PeerFailed("client", "closed before the end of its request")
        return False

    async def relay(self, up: Peer, upgrade: bool, body_complete: bool) -> bool:
        """Stream the request body up and the response down at the same time."""
        failures: list[PeerFailed] = []
        body_done = trio.Event()
        if body_complete:
            body_done.set()
        pump_exited = trio.Event()
        pump_scope = trio.CancelScope()
        complete = False
        async with trio.open_nursery() as nursery:

            async def pump() -> None:
                try:
                    with pump_scope:
                        await self.pump_body(up, body_done)
                except PeerFailed as exc:
                    if exc.peer == "client":
                        failures.append(exc)
                        nursery.cancel_scope.cancel()
                finally:
                    pump_exited.set()

            nursery.start_soon(pump)
            try:
                complete = await self.respond(up, upgrade, body_done, pump_scope, pump_exited)
            except PeerFailed as exc:
                failures.append(exc)
            nursery.cancel_scope.cancel()
        if failures and not complete:
            first = failures[0]
            if first.peer == "upstream":
                log.warning("OpenCode server broke off", error=first.reason)
                await self.fail(502, f"the OpenCode server broke off: {first.reason}")
            else:
                await self.fail(first.status_hint, f"bad request: {first.reason}")
        return complete and body_done.is_set() and self.client.finished()

    async def pump_body(self, up: Peer, body_done: trio.Event) -> None:
        """Forward the request body; then watch the client until the response is done."""
        while not body_done.is_set():
            event = await self.client.next_event()
            if isinstance(event, h11.Data):
                try:
                    await up.send(h11.Data(data=event.data))
                except PeerFailed:
                    return
            elif isinstance(event, h11.EndOfMessage):
                try:
                    await up.send(h11.EndOfMessage())
                except PeerFailed:
                    return
                body_done.set()
            else:
                raise PeerFailed("client", "closed before the end of its request")
        # A client that hangs up mid-response (a closed event stream) ends the exchange now;
        # bytes it sends meanwhile are a pipelined request or early WebSocket data, kept by h11.
        buffered = 0
        while buffered <= self.limits.max_header_bytes:
            data = await self.client.receive()
            if not data:
                raise PeerFailed("client", "closed")
            self.client.conn.receive_data(data)
            buffered += len(data)
        await trio.sleep_forever()

    async def respond(
        self,
        up: Peer,
        upgrade: bool,
        body_done: trio.Event,
        pump_scope: trio.CancelScope,
        pump_exited: trio.Event,
    ) -> bool:
        """Relay the response; whether it was complete."""
        while True:
            event = await up.next_event()
            if isinstance(event, h11.InformationalResponse):
                if event.status_code != 101 or not upgrade:
                    continue
                if not body_done.is_set():
                    raise PeerFailed("upstream", "switched protocols before the request ended")
                pump_scope.cancel()
                await pump_exited.wait()
                await self.client.send(
                    h11.InformationalResponse(
                        status_code=101, headers=list(event.headers), reason=event.reason
                    )
                )
                await self.splice(up)
                return False
            if isinstance(event, h11.Response):
                await self.client.send(
                    h11.Response(
                        status_code=event.status_code,
                        headers=end_to_end(list(event.headers)),
                        reason=event.reason,
                    )
                )
            elif isinstance(event, h11.Data):
                await self.client.send(h11.Data(data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                await self.client.send(h11.EndOfMessage())
                return True
            else:
                raise PeerFailed("upstream", "closed before the end of its response")

    async def splice(self, up: Peer) -> None:
        """After a 101: raw bytes both ways until either side closes."""
        async with trio.open_nursery() as nursery:

            async def copy(source: Peer, sink: Peer, early: bytes) -> None:
                with contextlib.suppress(*_GONE):
                    if early:
                        await sink.send_raw(early)
                    while data := await source.receive():
                        await sink.send_raw(data)
                nursery.cancel_scope.cancel()

            nursery.start_soon(copy, self.client, up, self.client.conn.trailing_data[0])
            nursery.start_soon(copy, up, self.client, up.conn.trailing_data[0])

    async def fail(self, status: int, message: str) -> bool:
        """Answer with an error, if no response has started, and close; always False."""
        if self.client.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            response, body = json_response(status, message)
            with contextlib.suppress(*_GONE), trio.move_on_after(5):
                await self.client.send(response)
                await self.client.send(h11.Data(data=body))
                await self.client.send(h11.EndOfMessage())
                await self.linger()
        return False

    async def linger(self) -> None:
        """Read what the client still sends for a moment: closing on unread data resets the
        connection, and the client may lose the error response with it."""
        with contextlib.suppress(*_GONE), trio.move_on_after(self.limits.linger_timeout):
            await self.stream.send_eof()
            left = self.limits.linger_bytes
            while left > 0 and (data := await self.stream.receive_some(self.limits.receive_size)):
                left -= len(data)
