"""Framing: a 4-byte big-endian length, then the payload.

A payload starting with `{` is a UTF-8 JSON object. A payload starting with 0x00
is an output frame (daemon to client): u32 subscription, u64 absolute offset, raw
bytes. A payload starting with 0x01 is an input frame (client to daemon): u32
subscription, raw bytes.
"""

from __future__ import annotations

import struct

from supervisor.protocol.codes import BAD_REQUEST, LIMIT, ProtocolError
from supervisor.protocol.wirejson import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_MAX_FRAME = 8 * 1024 * 1024
KIND_OUTPUT = 0x00
KIND_INPUT = 0x01
KIND_JSON = 0x7B  # "{"

_LEN = struct.Struct(">I")
_OUTPUT_HEAD = struct.Struct(">IBIQ")
_INPUT_HEAD = struct.Struct(">IBI")
OUTPUT_OVERHEAD = _OUTPUT_HEAD.size - _LEN.size
INPUT_OVERHEAD = _INPUT_HEAD.size - _LEN.size
MAX_SUB = 2**32 - 1
MAX_OFFSET = 2**64 - 1
MAX_JSON_DEPTH = 32


def encode_control(message: dict[str, Any]) -> bytes:
    payload = dumps(message).encode("utf-8")
    return _LEN.pack(len(payload)) + payload


def output_header(sub: int, offset: int, length: int) -> bytes:
    """The bytes that precede `length` bytes of output in an output frame."""
    return _OUTPUT_HEAD.pack(length + OUTPUT_OVERHEAD, KIND_OUTPUT, sub, offset)


def encode_output(sub: int, offset: int, data: bytes) -> bytes:
    return output_header(sub, offset, len(data)) + data


def encode_input(sub: int, data: bytes) -> bytes:
    return _INPUT_HEAD.pack(len(data) + INPUT_OVERHEAD, KIND_INPUT, sub) + data


class FrameDecoder:
    """Splits a byte stream into payloads.

    `feed()` takes bytes; `next_payload()` returns one whole payload or None when
    more bytes are needed. A length over the limit raises a fatal ProtocolError:
    the stream cannot be trusted past it.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._pos = 0

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_payload(self) -> bytes | None:
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 4:
            return None
        (length,) = _LEN.unpack_from(buf, pos)
        if length > self.max_frame:
            raise ProtocolError(
                LIMIT,
                f"frame of {length} bytes is over the limit of {self.max_frame} bytes",
                fatal=True,
            )
        end = pos + 4 + length
        if len(buf) < end:
            return None
        payload = bytes(buf[pos + 4 : end])
        if end == len(buf):
            buf.clear()
            self._pos = 0
        else:
            self._pos = end
        return payload


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ProtocolError(BAD_REQUEST, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        for item in value.values():
            _check_depth(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_depth(item, depth + 1)


def decode_json(payload: bytes) -> dict[str, Any]:
    """Parse a control payload into a dict, or raise a (non-fatal) ProtocolError."""
    try:
        text = payload.decode("utf-8")
        value = loads(text)
    except UnicodeDecodeError as exc:
        raise ProtocolError(BAD_REQUEST, f"control message is not UTF-8: {exc.reason}") from None
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(BAD_REQUEST, f"control message is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(BAD_REQUEST, "control message must be a JSON object")
    _check_depth(value)
    return value


def split_output(payload: bytes) -> tuple[int, int, bytes]:
    if len(payload) < OUTPUT_OVERHEAD:
        raise ProtocolError(BAD_REQUEST, "output frame shorter than its header")
    _, sub, offset = struct.unpack_from(">BIQ", payload)
    return sub, offset, payload[OUTPUT_OVERHEAD:]


def split_input(payload: bytes) -> tuple[int, bytes]:
    if len(payload) < INPUT_OVERHEAD:
        raise ProtocolError(BAD_REQUEST, "input frame shorter than its header")
    _, sub = struct.unpack_from(">BI", payload)
    return sub, payload[INPUT_OVERHEAD:]
