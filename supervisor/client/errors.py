"""What can go wrong when talking to the daemon."""


class ClientError(Exception):
    """Base class of every error a client raises."""


class DaemonUnavailable(ClientError):
    """No daemon answers on the socket (and none could be started)."""


class UntrustedSocket(DaemonUnavailable):
    """The socket's directory is not private, or the daemon on it runs as another user:
    nothing was sent to it."""


class DaemonError(ClientError):
    """The daemon answered with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConnectionLost(ClientError):
    """The daemon closed the connection."""
