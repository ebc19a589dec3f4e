"""A tiny HTTP client and a scriptable fake OpenCode server for the gateway tests, on h11."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11
import trio

from supervisor.opencode.gateway import Gateway, Upstream

SECRET = "s3cret-" + "x" * 25
PASSWORD = "upstream-password-9f2c"


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


class Client:
    """One HTTP/1.1 connection; requests go over it one after the other."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)
        host, port = stream.socket.getpeername()[:2]
        self.host = f"{host}:{port}"

    @classmethod
    @asynccontextmanager
    async def connect(cls, port: int) -> AsyncIterator[Client]:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            yield cls(stream)

    async def send(self, event: h11.Event) -> None:
        await self.stream.send_all(self.conn.send(event) or b"")

    async def event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(await self.stream.receive_some(65536))

    async def start(
        self, method: str, target: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        fields = [("host", self.host), *(headers or [])]
        await self.send(h11.Request(method=method, target=target, headers=fields))

    async def head(self) -> h11.Response:
        while True:
            event = await self.event()
            if isinstance(event, h11.Response):
                return event
            assert isinstance(event, h11.InformationalResponse), event

    async def rest(self, response: h11.Response) -> Reply:
        body = bytearray()
        while True:
            event = await self.event()
            if isinstance(event, h11.EndOfMessage):
                return Reply(response.status_code, dict(response.headers), bytes(body))
            assert isinstance(event, h11.Data), event
            body += event.data

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Reply:
        fields = list(headers or [])
        if body is not None:
            fields.append(("content-length", str(len(body))))
        await self.start(method, target, fields)
        if body:
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())
        return await self.rest(await self.head())


async def fetch(
    url: str, method: str = "GET", body: bytes | None = None, **kwargs: list[tuple[str, str]]
) -> Reply:
    """One request on a fresh connection to the URL's port."""
    parts = urlsplit(url)
    assert parts.port is not None
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    async with Client.connect(parts.port) as client:
        return await client.request(method, target, body, **kwargs)


@asynccontextmanager
async def running_gateway(
    upstream: Upstream, lookup: Callable[[str], str | None], **options: object
) -> AsyncIterator[Gateway]:
    gateway = Gateway(upstream, lookup, **options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        yield gateway
        nursery.cancel_scope.cancel()


@dataclass
class Seen:
    """A request as the fake upstream received it."""

    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = [v.decode() for n, v in self.headers if n == name.encode()]
        return ", ".join(values) if values else None


class Exchange:
    """One request at the fake upstream, for a handler to answer."""

    def __init__(self, conn: h11.Connection, stream: trio.SocketStream, seen: Seen) -> None:
        self.conn = conn
        self.stream = stream
        self.seen = seen

    async def next(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(await self.stream.receive_some(65536))

    async def chunk(self) -> bytes | None:
        """The next piece of the request body, None at its end."""
        event = await self.next()
        if isinstance(event, h11.Data):
            self.seen.body += event.data
            return bytes(event.data)
        assert isinstance(event, h11.EndOfMessage), event
        return None

    async def read_body(self) -> bytes:
        while await self.chunk() is not None:
            pass
        return self.seen.body

    async def send(self, event: h11.Event) -> None:
        await self.stream.send_all(self.conn.send(event) or b"")

    async def reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        headers = [("content-type", content_type), ("content-length", str(len(body)))]
        await self.send(h11.Response(status_code=status, headers=headers))
        await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())


Handler = Callable[[Exchange], Awaitable[None]]


async def echo(exchange: Exchange) -> None:
    """The default: a JSON description of the request."""
    body = await exchange.read_body()
    seen = exchange.seen
    doc = {
        "method": seen.method,
        "target": seen.target,
        "headers": [[n.decode(), v.decode()] for n, v in seen.headers],
        "length": len(body),
    }
    await exchange.reply(200, json.dumps(doc).encode(), "application/json")


@dataclass
class FakeUpstream:
    """An HTTP server on loopback that records what reaches it."""

    handler: Handler = echo
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    closed: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def upstream(self) -> Upstream:
        return Upstream(self.url, password=PASSWORD)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            async with stream:
                while True:
                    exchange = Exchange(conn, stream, Seen("", "", []))
                    event = await exchange.next()
                    if not isinstance(event, h11.Request):
                        return
                    exchange.seen = Seen(
                        event.method.decode(), event.target.decode(), list(event.headers)
                    )
                    self.seen.append(exchange.seen)
                    await self.handler(exchange)
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        return
                    conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        finally:
            self.closed += 1


@asynccontextmanager
async def fake_upstream(handler: Handler = echo) -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream(handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.serve)
        yield fake
        nursery.cancel_scope.cancel()
