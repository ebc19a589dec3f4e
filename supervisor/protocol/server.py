"""The daemon's end of a connection, sans-io."""

from collections.abc import Iterator

from supervisor.protocol.codes import BAD_REQUEST, ProtocolError
from supervisor.protocol.frames import (
    DEFAULT_MAX_FRAME,
    KIND_INPUT,
    KIND_JSON,
    KIND_OUTPUT,
    MAX_OFFSET,
    MAX_SUB,
    FrameDecoder,
    decode_json,
    split_input,
)
from supervisor.protocol.messages import (
    Hello,
    Input,
    Request,
    Violation,
    Written,
    parse_hello,
    valid_request_id,
)

ServerEvent = Hello | Request | Input | Written | Violation


class ServerConnection:
    """Feed it the bytes a client sent; it returns what they mean.

    Bad frames and messages become Violation events: answer them and go on, except
    after a fatal one (a length over the limit), which is always the last event.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._decoder = FrameDecoder(max_frame)
        self.peer_hello: Hello | None = None
        self.broken = False

    @property
    def buffered(self) -> int:
        return self._decoder.buffered

    def receive_data(self, data: bytes) -> list[ServerEvent]:
        return list(self.events(data))

    def events(self, data: bytes) -> Iterator[ServerEvent]:
        """The events in `data` (and what came before it), decoded one at a time as the
        caller asks, so that a caller can let others run between them."""
        if self.broken:
            return
        self._decoder.feed(data)
        try:
            while (payload := self._decoder.next_payload()) is not None:
                yield self._interpret(payload)
        except ProtocolError as exc:
            self.broken = True
            yield Violation(None, exc.code, exc.message, fatal=True)

    def _interpret(self, payload: bytes) -> ServerEvent:
        if not payload:
            return Violation(None, BAD_REQUEST, "empty frame")
        kind = payload[0]
        if kind == KIND_JSON:
            return self._control(payload)
        if kind == KIND_INPUT:
            if self.peer_hello is None:
                return Violation(None, BAD_REQUEST, "send hello before anything else")
            try:
                sub, data = split_input(payload)
            except ProtocolError as exc:
                return Violation(None, exc.code, exc.message)
            return Input(sub, data)
        if kind == KIND_OUTPUT:
            return Violation(None, BAD_REQUEST, "output frames go from the daemon to clients")
        return Violation(None, BAD_REQUEST, f"unknown frame kind 0x{kind:02x}")

    def _control(self, payload: bytes) -> ServerEvent:
        try:
            message = decode_json(payload)
        except ProtocolError as exc:
            return Violation(None, exc.code, exc.message)
        request_id = message.get("id")
        if request_id is not None and not valid_request_id(request_id):
            return Violation(
                None,
                BAD_REQUEST,
                "'id' must be an integer from 0 to 2**53-1 or a string of 1 to 64 characters",
            )
        if message.get("type") == "hello":
            try:
                hello = parse_hello(message)
            except ProtocolError as exc:
                return Violation(request_id, exc.code, exc.message)
            self.peer_hello = hello
            return hello
        if self.peer_hello is None:
            return Violation(request_id, BAD_REQUEST, "send hello before anything else")
        if message.get("type") == "written":
            return _written(message)
        op = message.get("op")
        if not isinstance(op, str) or not op:
            return Violation(request_id, BAD_REQUEST, "a request needs a string 'op'")
        if request_id is None:
            return Violation(None, BAD_REQUEST, f"request {op!r} has no 'id'")
        args = {k: v for k, v in message.items() if k not in ("id", "op", "type")}
        return Request(request_id, op, args)


def _written(message: dict[str, object]) -> Written | Violation:
    sub, offset = message.get("sub"), message.get("offset")
    for name, value, top in (("sub", sub, MAX_SUB), ("offset", offset, MAX_OFFSET)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            return Violation(None, BAD_REQUEST, f"written: {name!r} must be an integer 0..{top}")
    assert isinstance(sub, int) and isinstance(offset, int)
    return Written(sub, offset)
