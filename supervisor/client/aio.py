"""The trio client: many requests and subscriptions in flight on one connection."""

import base64
import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import trio

from supervisor import __version__
from supervisor.client.autostart import start_daemon
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
from supervisor.protocol.client import ClientConnection
from supervisor.protocol.messages import Error, Event, Hello, Output, RequestId, Result

RECV_SIZE = 256 * 1024
SUBSCRIPTION_QUEUE = 1024

Item = Output | Event
_Channel = tuple[trio.MemorySendChannel[Item], trio.MemoryReceiveChannel[Item]]


class Subscription:
    """Output frames and events of one subscription, as an async iterator that ends
    after the `end` event."""

    def __init__(
        self, sub: int, result: dict[str, Any], receive: trio.MemoryReceiveChannel[Item]
    ) -> None:
        self.sub = sub
        self.start: int = result.get("start", 0)
        self.end: int = result.get("end", 0)
        self.truncated: bool = result.get("truncated", False)
        self.result = result
        self._receive = receive

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Item:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class AsyncClient:
    def __init__(self, stream: trio.SocketStream, path: str) -> None:
        self.stream = stream
        self.path = path
        self.protocol = ClientConnection()
        self.server: Hello | None = None
        self._hello = trio.Event()
        self._replies: dict[RequestId, tuple[trio.Event, list[Result | Error]]] = {}
        self._subs: dict[
            int, tuple[trio.MemorySendChannel[Item], trio.MemoryReceiveChannel[Item]]
        ] = {}
        self._send_lock = trio.Lock()
        self._lost: ConnectionLost | None = None

    async def _send(self, data: bytes) -> None:
        async with self._send_lock:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionLost(f"the connection to the daemon broke: {exc}") from None

    async def _reader(self) -> None:
        try:
            while True:
                try:
                    data = await self.stream.receive_some(RECV_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    raise ConnectionLost("the daemon closed the connection")
                try:
                    events = self.protocol.receive_data(data)
                except ProtocolError as exc:
                    raise ConnectionLost(f"the daemon sent something unreadable: {exc}") from None
                for event in events:
                    await self._dispatch(event)
        except ConnectionLost as exc:
            self._lost = exc
            self._hello.set()
            for done, _ in self._replies.values():
                done.set()
            for send, _ in self._subs.values():
                send.close()

    async def _dispatch(self, event: Hello | Result | Error | Event | Output) -> None:
        if isinstance(event, Hello):
            self.server = event
            self._hello.set()
        elif isinstance(event, Result | Error) and event.id in self._replies:
            done, slot = self._replies[event.id]
            slot.append(event)
            done.set()
        elif isinstance(event, Output | Event) and event.sub is not None:
            send, _ = self._channel(event.sub)
            try:
                await send.send(event)
            except trio.ClosedResourceError:
                return
            if isinstance(event, Event) and event.event == "end":
                send.close()
        elif isinstance(event, Error) and event.id is None and not self._hello.is_set():
            self._lost = ConnectionLost(event.message)
            self._hello.set()

    def _channel(self, sub: int) -> _Channel:
        if sub not in self._subs:
            self._subs[sub] = trio.open_memory_channel[Item](SUBSCRIPTION_QUEUE)
        return self._subs[sub]

    async def _handshake(self) -> None:
        await self._send(self.protocol.hello(PROTOCOL_VERSION, [], client=f"ptysup/{__version__}"))
        await self._hello.wait()
        if self._lost is not None:
            raise DaemonUnavailable(f"the daemon on {self.path} refused us: {self._lost}")

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        if self._lost is not None:
            raise self._lost
        request_id, frame = self.protocol.request(op, args)
        done = trio.Event()
        slot: list[Result | Error] = []
        self._replies[request_id] = (done, slot)
        try:
            await self._send(frame)
            await done.wait()
        finally:
            del self._replies[request_id]
        if not slot:
            raise self._lost or ConnectionLost("the daemon closed the connection")
        reply = slot[0]
        if isinstance(reply, Error):
            raise DaemonError(reply.code, reply.message)
        return reply.result

    async def send_input(self, sub: int, data: bytes) -> None:
        await self._send(self.protocol.input(sub, data))

    # -- conveniences -----------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        return await self.call("status")

    async def spawn(self, argv: list[str], **options: Any) -> dict[str, Any]:
        return await self.call("spawn", argv=argv, **options)

    async def list(self, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        args = {"labels": labels} if labels else {}
        return (await self.call("list", **args))["sessions"]

    async def info(self, session: str) -> dict[str, Any]:
        return await self.call("info", session=session)

    async def write(self, session: str, data: bytes | str) -> int:
        if isinstance(data, str):
            return (await self.call("write", session=session, data=data))["written"]
        encoded = base64.b64encode(data).decode("ascii")
        return (await self.call("write", session=session, data_b64=encoded))["written"]

    async def subscribe(
        self, session: str, since: int | None = 0, *, follow: bool = True, input: bool = False
    ) -> Subscription:
        result = await self.call(
            "subscribe", session=session, since=since, follow=follow, input=input
        )
        _, receive = self._channel(result["sub"])
        return Subscription(result["sub"], result, receive)

    async def read(self, session: str, since: int = 0) -> tuple[int, int, bool, bytes]:
        sub = await self.subscribe(session, since, follow=False)
        data = b"".join([item.data async for item in sub if isinstance(item, Output)])
        self._subs.pop(sub.sub, None)
        return sub.start, sub.end, sub.truncated, data

    async def wait(self, session: str, timeout: float | None = None) -> dict[str, Any]:
        return await self.call("wait", session=session, timeout=timeout)

    async def kill(self, session: str, signal: str | int | None = None) -> dict[str, Any]:
        return await self.call("kill", session=session, signal=signal)

    async def resize(self, session: str, cols: int, rows: int) -> dict[str, Any]:
        return await self.call("resize", session=session, cols=cols, rows=rows)

    async def remove(self, session: str) -> dict[str, Any]:
        return await self.call("remove", session=session)


async def _connect(path: str) -> trio.SocketStream:
    """A connection to `path`, once its directory and the daemon's uid are the user's own."""
    try:
        check_socket_dir(path)
    except Untrusted as exc:
        raise UntrustedSocket(str(exc)) from None
    stream = await trio.open_unix_socket(path)
    try:
        check_peer(path, stream.socket)
    except Untrusted as exc:
        await stream.aclose()
        raise UntrustedSocket(str(exc)) from None
    return stream


@asynccontextmanager
async def open_client(
    socket_path: str | None = None, *, autostart: bool = True
) -> AsyncIterator[AsyncClient]:
    """Connect to the daemon (starting one if none answers and `autostart`)."""
    path = resolve_socket(socket_path)
    if problem := check_socket_path(path):
        raise DaemonUnavailable(problem)
    try:
        stream = await _connect(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED) or not autostart:
            raise DaemonUnavailable(f"no daemon answers on {path}: {exc.strerror}") from None
        with suppress(DaemonUnavailable):
            await trio.to_thread.run_sync(start_daemon, path)
        try:
            stream = await _connect(path)
        except OSError as exc2:
            raise DaemonUnavailable(f"cannot connect to {path}: {exc2.strerror}") from None
    async with stream, trio.open_nursery() as nursery:
        client = AsyncClient(stream, path)
        nursery.start_soon(client._reader)
        with trio.fail_after(30):
            await client._handshake()
        try:
            yield client
        finally:
            nursery.cancel_scope.cancel()
