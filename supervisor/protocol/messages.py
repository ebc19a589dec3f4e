"""Control messages: what each end can receive, as small typed tuples.

Plain tuple classes rather than NamedTuple: every `ptysup` call imports this module, and
`typing` alone would cost it several milliseconds.
"""

from __future__ import annotations

from _operator import itemgetter  # operator.itemgetter, without loading operator.py

from supervisor.protocol.codes import BAD_REQUEST, ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Self

RequestId = int | str
MAX_ID_INT = 2**53 - 1
MAX_ID_LEN = 64


def _item(index: int) -> Any:
    return property(itemgetter(index))


class _Message(tuple):  # type: ignore[type-arg]
    """A tuple whose items are named by the class's annotations, in order."""

    __slots__ = ()

    def __repr__(self) -> str:
        names = self.__class__.__annotations__
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(names, self, strict=True))
        return f"{type(self).__name__}({shown})"


class Hello(_Message):
    protocol: int = _item(0)
    capabilities: tuple[str, ...] = _item(1)
    info: dict[str, Any] = _item(2)

    def __new__(cls, protocol: int, capabilities: tuple[str, ...], info: dict[str, Any]) -> Self:
        return tuple.__new__(cls, (protocol, capabilities, info))


class Request(_Message):
    id: RequestId = _item(0)
    op: str = _item(1)
    args: dict[str, Any] = _item(2)

    def __new__(cls, id: RequestId, op: str, args: dict[str, Any]) -> Self:
        return tuple.__new__(cls, (id, op, args))


class Input(_Message):
    sub: int = _item(0)
    data: bytes = _item(1)

    def __new__(cls, sub: int, data: bytes) -> Self:
        return tuple.__new__(cls, (sub, data))


class Written(_Message):
    """A client that holds its terminal in the daemon's hands has written a subscription's
    output up to `offset` itself: the daemon may write to the terminal directly again."""

    sub: int = _item(0)
    offset: int = _item(1)

    def __new__(cls, sub: int, offset: int) -> Self:
        return tuple.__new__(cls, (sub, offset))


class Violation(_Message):
    """A bad message that the peer is told about; the connection goes on, unless `fatal`:
    framing is lost, so answer, then close the connection."""

    id: RequestId | None = _item(0)
    code: str = _item(1)
    message: str = _item(2)
    fatal: bool = _item(3)

    def __new__(cls, id: RequestId | None, code: str, message: str, fatal: bool = False) -> Self:
        return tuple.__new__(cls, (id, code, message, fatal))


class Result(_Message):
    id: RequestId = _item(0)
    result: dict[str, Any] = _item(1)

    def __new__(cls, id: RequestId, result: dict[str, Any]) -> Self:
        return tuple.__new__(cls, (id, result))


class Error(_Message):
    id: RequestId | None = _item(0)
    code: str = _item(1)
    message: str = _item(2)
    sub: int | None = _item(3)

    def __new__(cls, id: RequestId | None, code: str, message: str, sub: int | None = None) -> Self:
        return tuple.__new__(cls, (id, code, message, sub))


class Event(_Message):
    event: str = _item(0)
    sub: int | None = _item(1)
    fields: dict[str, Any] = _item(2)

    def __new__(cls, event: str, sub: int | None, fields: dict[str, Any]) -> Self:
        return tuple.__new__(cls, (event, sub, fields))


class Output(_Message):
    sub: int = _item(0)
    offset: int = _item(1)
    data: bytes = _item(2)

    def __new__(cls, sub: int, offset: int, data: bytes) -> Self:
        return tuple.__new__(cls, (sub, offset, data))


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
