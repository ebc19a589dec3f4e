"""The wire format, written from docs/protocol.md rather than imported from the daemon: the
fuzzer holds the daemon to what the document promises, not to what its code happens to do."""

import errno
import json
import struct
from collections import deque
from dataclasses import dataclass
from typing import Any

import trio

LENGTH = struct.Struct(">I")
OUTPUT_HEAD = struct.Struct(">BIQ")
ERROR_CODES = frozenset(
    {"bad_request", "not_found", "forbidden", "conflict", "limit", "unsupported", "internal"}
)


def frame(payload: bytes) -> bytes:
    return LENGTH.pack(len(payload)) + payload


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogatepass")


def control(message: dict[str, Any]) -> bytes:
    return frame(encode(message))


def input_frame(sub: int, data: bytes) -> bytes:
    return frame(b"\x01" + sub.to_bytes(4, "big") + data)


HELLO = control({"type": "hello", "protocol": 1, "capabilities": [], "client": "stress"})


class DaemonBroke(Exception):
    """The daemon sent something the protocol does not allow."""


@dataclass(frozen=True, slots=True)
class Frame:
    message: dict[str, Any] | None
    """A control message, or None for an output frame."""
    sub: int = 0
    offset: int = 0
    data: bytes = b""

    @property
    def type(self) -> str | None:
        return None if self.message is None else self.message.get("type")

    def is_error(self) -> bool:
        return self.type == "error"


class Decoder:
    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = LENGTH.unpack_from(buf, pos)
            if len(buf) - pos - 4 < size:
                break
            payload = bytes(buf[pos + 4 : pos + 4 + size])
            pos += 4 + size
            frames.append(_interpret(payload))
        del buf[:pos]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)


def _interpret(payload: bytes) -> Frame:
    if payload[:1] == b"{":
        try:
            message = json.loads(payload)
        except ValueError as exc:
            raise DaemonBroke(f"the daemon sent invalid JSON: {exc}: {payload[:200]!r}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise DaemonBroke(
                f"the daemon sent a control message without a type: {payload[:200]!r}"
            )
        if message["type"] == "error" and message.get("code") not in ERROR_CODES:
            raise DaemonBroke(f"the daemon sent an unknown error code: {payload[:200]!r}")
        return Frame(message)
    if payload[:1] == b"\x00" and len(payload) >= OUTPUT_HEAD.size:
        _, sub, offset = OUTPUT_HEAD.unpack_from(payload)
        return Frame(None, sub, offset, payload[OUTPUT_HEAD.size :])
    raise DaemonBroke(f"the daemon sent a frame of an unknown kind: {payload[:64]!r}")


class Closed(Exception):
    """The daemon closed the connection (`reset` when it had unread bytes of ours)."""

    def __init__(self, reset: bool) -> None:
        super().__init__("reset" if reset else "end of stream")
        self.reset = reset


class Connection:
    """One client connection, read frame by frame."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self._decoder = Decoder()
        self._frames: deque[Frame] = deque()
        self.closed: Closed | None = None
        self.sent = 0

    @classmethod
    async def open(cls, path: str, rcvbuf: int | None = None) -> "Connection":
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, rcvbuf)
        try:
            await sock.connect(path)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    async def send(self, data: bytes) -> bool:
        """Send everything; False if the daemon had already closed the connection."""
        view = memoryview(data)
        try:
            while view:
                n = await self.sock.send(view)
                view = view[n:]
                self.sent += n
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def shutdown(self) -> None:
        try:
            self.sock.shutdown(trio.socket.SHUT_WR)
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                raise

    async def next(self) -> Frame:
        """The next frame; raises Closed at the end of the stream."""
        while not self._frames:
            if self.closed is not None:
                raise self.closed
            try:
                data = await self.sock.recv(262144)
            except ConnectionResetError:
                data = b""
                self.closed = Closed(reset=True)
            if not data:
                if self.closed is None:
                    self.closed = Closed(reset=False)
                if self._decoder.pending:
                    raise DaemonBroke(
                        f"the stream ended inside a frame ({self._decoder.pending} bytes)"
                    )
                raise self.closed
            self._frames.extend(self._decoder.feed(data))
        return self._frames.popleft()

    async def hello(self) -> dict[str, Any]:
        first = await self.next()
        if first.type != "hello":
            raise DaemonBroke(f"the daemon's first frame is not its hello: {first.message!r}")
        assert first.message is not None
        return first.message

    async def request(self, request_id: int | str, op: str, **args: Any) -> dict[str, Any]:
        """Send a request and return its reply, skipping everything else."""
        await self.send(control({"id": request_id, "op": op, **args}))
        while True:
            reply = await self.next()
            message = reply.message
            if (
                message is not None
                and message.get("id") == request_id
                and message["type"] in ("result", "error")
            ):
                return message

    def close(self) -> None:
        self.sock.close()


async def call(path: str, op: str, **args: Any) -> dict[str, Any]:
    """One request on a connection of its own; the result, or raises on an error."""
    conn = await Connection.open(path)
    try:
        await conn.send(HELLO)
        await conn.hello()
        reply = await conn.request(1, op, **args)
    finally:
        conn.close()
    if reply["type"] != "result":
        raise RuntimeError(f"{op}: {reply.get('code')}: {reply.get('message')}")
    result: dict[str, Any] = reply["result"]
    return result
