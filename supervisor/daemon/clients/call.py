"""One request as a handler sees it: its validated arguments, the client that sent it and
the descriptors that came with it."""

from dataclasses import dataclass, field

from supervisor.daemon.clients.client import Client
from supervisor.daemon.system.fd import OwnedFd
from supervisor.daemon.system.tty import TerminalError, open_terminal
from supervisor.protocol.messages import RequestId
from supervisor.protocol.requests import Args


@dataclass
class Call:
    id: RequestId
    op: str
    args: Args
    client: Client
    passed: list[int] = field(default_factory=list)
    """Descriptors that came with the request; the connection closes them afterwards."""

    def terminal(self) -> OwnedFd:
        """The terminal that came with the request, opened for the daemon's own use."""
        if len(self.passed) != 1:
            raise TerminalError(
                f"terminal: the request must come with one descriptor "
                f"(it came with {len(self.passed)})"
            )
        return open_terminal(self.passed[0])
