"""Control messages: what each end can receive, as named tuples (cheap to define)."""

from typing import Any, NamedTuple

from supervisor.protocol.codes import BAD_REQUEST, ProtocolError

RequestId = int | str
MAX_ID_INT = 2**53 - 1
MAX_ID_LEN = 64


class Hello(NamedTuple):
    protocol: int
    capabilities: tuple[str, ...]
    info: dict[str, Any]


class Request(NamedTuple):
    id: RequestId
    op: str
    args: dict[str, Any]


class Input(NamedTuple):
    sub: int
    data: bytes


class Written(NamedTuple):
    """A client that holds its terminal in the daemon's hands has written a subscription's
    output up to `offset` itself: the daemon may write to the terminal directly again."""

    sub: int
    offset: int


class Violation(NamedTuple):
    """A bad message that the peer is told about; the connection goes on."""

    id: RequestId | None
    code: str
    message: str
    fatal: bool = False
    """Framing is lost: answer, then close the connection."""


class Result(NamedTuple):
    id: RequestId
    result: dict[str, Any]


class Error(NamedTuple):
    id: RequestId | None
    code: str
    message: str
    sub: int | None = None


class Event(NamedTuple):
    event: str
    sub: int | None
    fields: dict[str, Any]


class Output(NamedTuple):
    sub: int
    offset: int
    data: bytes


def valid_request_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value <= MAX_ID_INT
    if isinstance(value, str):
        return 0 < len(value) <= MAX_ID_LEN
    return False


def parse_hello(message: dict[str, Any]) -> Hello:
    protocol = message.get("protocol")
    if isinstance(protocol, bool) or not isinstance(protocol, int):
        raise ProtocolError(BAD_REQUEST, "hello: 'protocol' must be an integer")
    caps = message.get("capabilities", [])
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise ProtocolError(BAD_REQUEST, "hello: 'capabilities' must be a list of strings")
    info = {k: v for k, v in message.items() if k not in ("type", "protocol", "capabilities")}
    return Hello(protocol, tuple(caps), info)


def hello_message(protocol: int, capabilities: list[str], **info: Any) -> dict[str, Any]:
    return {"type": "hello", "protocol": protocol, "capabilities": capabilities, **info}


def result_message(request_id: RequestId, result: dict[str, Any]) -> dict[str, Any]:
    return {"type": "result", "id": request_id, "result": result}


def error_message(
    request_id: RequestId | None, code: str, message: str, *, sub: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "id": request_id, "code": code, "message": message}
    if sub is not None:
        body["sub"] = sub
    return body


def event_message(event: str, sub: int | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "event", "event": event}
    if sub is not None:
        body["sub"] = sub
    body.update(fields)
    return body
