"""A client's end of a connection, sans-io."""

from __future__ import annotations

import itertools

from supervisor.protocol.codes import BAD_REQUEST, ProtocolError
from supervisor.protocol.frames import (
    DEFAULT_MAX_FRAME,
    KIND_JSON,
    KIND_OUTPUT,
    FrameDecoder,
    decode_json,
    encode_control,
    encode_input,
    split_output,
)
from supervisor.protocol.messages import (
    Error,
    Event,
    Hello,
    Output,
    RequestId,
    Result,
    hello_message,
    parse_hello,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ClientEvent = Hello | Result | Error | Event | Output


class ClientConnection:
    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._decoder = FrameDecoder(max_frame)
        self._ids = itertools.count(1)
        self.server_hello: Hello | None = None

    def hello(self, protocol: int, capabilities: list[str], **info: Any) -> bytes:
        return encode_control(hello_message(protocol, capabilities, **info))

    def request(self, op: str, args: dict[str, Any] | None = None) -> tuple[RequestId, bytes]:
        request_id = next(self._ids)
        message = {"id": request_id, "op": op}
        if args:
            message.update({k: v for k, v in args.items() if v is not None})
        return request_id, encode_control(message)

    def input(self, sub: int, data: bytes) -> bytes:
        return encode_input(sub, data)

    def written(self, sub: int, offset: int) -> bytes:
        """Tell the daemon this client has written `sub`'s output up to `offset`."""
        return encode_control({"type": "written", "sub": sub, "offset": offset})

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        self._decoder.feed(data)
        events: list[ClientEvent] = []
        while (payload := self._decoder.next_payload()) is not None:
            events.append(self._interpret(payload))
        return events

    def _interpret(self, payload: bytes) -> ClientEvent:
        if not payload:
            raise ProtocolError(BAD_REQUEST, "daemon sent an empty frame", fatal=True)
        if payload[0] == KIND_OUTPUT:
            return Output(*split_output(payload))
        if payload[0] != KIND_JSON:
            raise ProtocolError(
                BAD_REQUEST, f"daemon sent unknown frame kind 0x{payload[0]:02x}", fatal=True
            )
        message = decode_json(payload)
        kind = message.get("type")
        if kind == "result":
            result = message.get("result")
            return Result(message.get("id"), result if isinstance(result, dict) else {})  # type: ignore[arg-type]
        if kind == "error":
            return Error(
                message.get("id"),
                str(message.get("code", "internal")),
                str(message.get("message", "")),
                message.get("sub"),
            )
        if kind == "event":
            fields = {k: v for k, v in message.items() if k not in ("type", "event", "sub")}
            return Event(str(message.get("event")), message.get("sub"), fields)
        if kind == "hello":
            self.server_hello = parse_hello(message)
            return self.server_hello
        raise ProtocolError(BAD_REQUEST, f"daemon sent unknown message type {kind!r}", fatal=True)
