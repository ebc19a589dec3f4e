"""Error codes shared by both ends, and the exception that carries one."""

BAD_REQUEST = "bad_request"
NOT_FOUND = "not_found"
FORBIDDEN = "forbidden"
CONFLICT = "conflict"
LIMIT = "limit"
UNSUPPORTED = "unsupported"
INTERNAL = "internal"

ERROR_CODES = frozenset({BAD_REQUEST, NOT_FOUND, FORBIDDEN, CONFLICT, LIMIT, UNSUPPORTED, INTERNAL})


class ProtocolError(Exception):
    """An error with a protocol code. `fatal` means framing is lost and the
    connection must be closed after the error is sent."""

    def __init__(self, code: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message
        self.fatal = fatal

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.message!r}, fatal={self.fatal})"
