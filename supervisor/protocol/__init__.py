"""The wire protocol, sans-io: bytes in, events out. No sockets, no trio."""

from supervisor.protocol.codes import (
    BAD_REQUEST,
    CONFLICT,
    ERROR_CODES,
    FORBIDDEN,
    INTERNAL,
    LIMIT,
    NOT_FOUND,
    UNSUPPORTED,
    ProtocolError,
)
from supervisor.protocol.frames import (
    DEFAULT_MAX_FRAME,
    FrameDecoder,
    encode_control,
    encode_input,
    encode_output,
    output_header,
)

PROTOCOL_VERSION = 1

__all__ = [
    "BAD_REQUEST",
    "CONFLICT",
    "DEFAULT_MAX_FRAME",
    "ERROR_CODES",
    "FORBIDDEN",
    "INTERNAL",
    "LIMIT",
    "NOT_FOUND",
    "PROTOCOL_VERSION",
    "UNSUPPORTED",
    "FrameDecoder",
    "ProtocolError",
    "encode_control",
    "encode_input",
    "encode_output",
    "output_header",
]
