"""Clients of the daemon: a blocking one (scripts, the CLI) and a trio one."""

from supervisor.client.blocking import Client, connect
from supervisor.client.errors import ClientError, DaemonError, DaemonUnavailable, UntrustedSocket

__all__ = [
    "Client",
    "ClientError",
    "DaemonError",
    "DaemonUnavailable",
    "UntrustedSocket",
    "connect",
]
