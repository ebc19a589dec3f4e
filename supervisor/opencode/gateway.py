"""A loopback HTTP gateway in front of an OpenCode server for supervised children.

Every session gets its own URL, ``http://127.0.0.1:<port>/s/<secret>``: OpenCode's clients
(``opencode attach``, ``opencode run --attach``, the JS SDK's ``baseUrl``, curl) keep that
path in front of every request. A request without a known secret is refused and never
reaches the OpenCode server; one with it is forwarded with the server's own credentials and,
unless it already names a directory in the session's project, with
``x-opencode-directory`` set to the session's directory. Bodies, server-sent events and
WebSocket upgrades stream through. Only the gateway's own user may connect (where the
platform tells), and a connection has a few seconds to present a secret.
docs/gateway.md has the evidence, the threat model and the details.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable

import h11
import trio

from supervisor import logs
from supervisor.opencode.gateway_admission import Admission
from supervisor.opencode.gateway_directory import (
    ProjectCache,
    anchor,
    named_directories,
    without_keys,
)
from supervisor.opencode.gateway_http import (
    GONE,
    Headers,
    Peer,
    PeerFailed,
    end_to_end,
    json_response,
)
from supervisor.opencode.gateway_request import (
    SECRET,
    SECRET_PREFIX,
    Refusal,
    Route,
    allowed_hosts,
    check,
    route,
)
from supervisor.opencode.gateway_upstream import Limits, Upstream, new_secret

log = logs.get_logger("supervisor.gateway")

# Query parameters that carry credentials for OpenCode's server; the gateway supplies its own.
_CREDENTIAL_KEYS = frozenset({"auth_token"})
__all__ = ["Gateway", "Limits", "Upstream", "new_secret"]


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
        self.admission = Admission(self.limits)
        self._hosts: frozenset[bytes] = frozenset()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the gateway is not serving")
        return self._port

    def url_for(self, secret: str) -> str:
        """The OPENCODE_SERVER_URL of the session holding ``secret``."""
        if not SECRET.fullmatch(secret):
            raise ValueError("a secret is 16 to 256 characters of [A-Za-z0-9_-]")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{SECRET_PREFIX}{secret}"

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; ``task_status.started(port)`` once listening."""
        listeners = await trio.open_tcp_listeners(self._requested_port, host=self.host)
        port = self._port = listeners[0].socket.getsockname()[1]
        self._hosts = allowed_hosts(port)
        log.info("gateway listening", port=port, upstream=self.upstream.url)
        task_status.started(port)
        try:
            await trio.serve_listeners(self._handle, listeners)
        finally:
            self._port = None

    def revoke(self, secret: str) -> None:
        """End the exchanges in flight under ``secret``, whose session has ended. New requests
        with it are refused as soon as ``lookup`` no longer knows it."""
        self.admission.revoke(secret)

    def check(self, request: h11.Request) -> Route | Refusal:
        """Whether a request may go upstream, and where; every request of a connection."""
        return check(request, self._hosts, self._lookup)

    def route(self, target: bytes) -> Route | Refusal:
        """Where a request target goes: the session's directory, the upstream path, the query."""
        return route(target, self._lookup)

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

    async def _handle(self, stream: trio.SocketStream) -> None:
        if not await self.admission.admit(stream):
            return
        try:
            async with stream:
                await _Connection(self, stream).run()
        except Exception:
            log.exception("gateway connection failed")


class _Connection:
    """One client connection: its requests in turn, each over a fresh upstream connection."""

    def __init__(self, gateway: Gateway, stream: trio.SocketStream) -> None:
        self.gateway = gateway
        self.admission = gateway.admission
        self.limits = gateway.limits
        self.stream = stream
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        self.client = Peer("client", conn, stream, self.limits.receive_size)

    async def run(self) -> None:
        try:
            request = await self.authenticate()
            if request is None:
                return
            with self.admission.authenticated() as admitted:
                if not admitted:
                    await self.fail(503, "too many connections to the gateway")
                    return
                while await self.serve(request):
                    self.client.conn.start_next_cycle()
                    with trio.move_on_after(self.limits.idle_timeout) as idle:
                        event = await self.client.next_event()
                    if idle.cancelled_caught or not isinstance(event, h11.Request):
                        return
                    request = event
        except PeerFailed as exc:
            if exc.peer == "client":
                await self.fail(exc.status_hint, f"bad request: {exc.reason}")

    async def authenticate(self) -> h11.Request | None:
        """The connection's first request, if its head came in time and may go upstream;
        else the connection is answered (or just closed) and None."""
        with self.admission.pending():
            try:
                event = await self.client.next_event()
            except PeerFailed as exc:
                await self.fail(exc.status_hint, f"bad request: {exc.reason}")
                return None
            if not isinstance(event, h11.Request):
                return None
            refusal = self.gateway.check(event)
            if isinstance(refusal, Refusal):
                await self.refuse(refusal)
                return None
            return event
        return None

    async def refuse(self, refusal: Refusal) -> bool:
        log.info("gateway refused a request", status=refusal.status, reason=refusal.message)
        return await self.fail(refusal.status, refusal.message)

    async def serve(self, request: h11.Request) -> bool:
        """Answer one request; whether the connection can carry another."""
        route = self.gateway.check(request)
        if isinstance(route, Refusal):
            return await self.refuse(route)
        if request.method == b"CONNECT":
            return await self.fail(405, "CONNECT is not supported")
        with self.admission.exchange(route.secret):
            return await self.forward(request, route)
        log.info("gateway ended an exchange: its session has ended")
        return False

    async def forward(self, request: h11.Request, route: Route) -> bool:
        """Forward a request along its route and relay the answer."""
        query = without_keys(route.query, _CREDENTIAL_KEYS)
        query, headers = await self.gateway.place(route.directory, query, list(request.headers))
        upgrade = any(name == b"upgrade" for name, _ in headers)
        target = self.gateway.upstream.base + route.path + (f"?{query}" if query else "")
        forwarded = h11.Request(
            method=request.method,
            target=target.encode("latin-1"),
            headers=self.gateway.upstream.request_headers(headers, upgrade),
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
                with contextlib.suppress(*GONE):
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
            with contextlib.suppress(*GONE), trio.move_on_after(5):
                await self.client.send(response)
                await self.client.send(h11.Data(data=body))
                await self.client.send(h11.EndOfMessage())
                await self.linger()
        return False

    async def linger(self) -> None:
        """Read what the client still sends for a moment: closing on unread data resets the
        connection, and the client may lose the error response with it."""
        with contextlib.suppress(*GONE), trio.move_on_after(self.limits.linger_timeout):
            await self.stream.send_eof()
            left = self.limits.linger_bytes
            while left > 0 and (data := await self.stream.receive_some(self.limits.receive_size)):
                left -= len(data)
