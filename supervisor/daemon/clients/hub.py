"""What every request may reach: the sessions, the settings, the connections, and the two
things only the main loop does (stop, upgrade)."""

import os
import time
from typing import Any

import trio

import supervisor
from supervisor.daemon.clients.client import Client
from supervisor.daemon.registry import Registry
from supervisor.daemon.spawn.context import ProjectCache
from supervisor.protocol import PROTOCOL_VERSION
from supervisor.protocol.messages import event_message, hello_message
from supervisor.settings import Settings

CAPABILITIES = [
    "sessions",
    "output-frames",
    "input-frames",
    "subscribe",
    "wait",
    "kill-session",
    "context",
    "attach",
    "screen",
    "events",
    "upgrade",
    "labels",
    "rename",
]


class Upgrade:
    """An `upgrade` request between the op and the main loop that performs it."""

    def __init__(self) -> None:
        self.checked = trio.Event()
        self.error: str | None = None


class Hub:
    def __init__(self, settings: Settings, socket_path: str, nursery: trio.Nursery) -> None:
        self.settings = settings
        self.socket_path = socket_path
        self.registry = Registry(settings, socket_path, nursery)
        self.clients: set[Client] = set()
        self.projects = ProjectCache()
        self.started_at = time.time()
        self.stop_requested = trio.Event()
        self.wake = trio.Event()
        """Set when the main loop has something to do: stop, or an upgrade."""
        self.upgrade: Upgrade | None = None

    def hello(self) -> dict[str, Any]:
        return hello_message(
            PROTOCOL_VERSION,
            CAPABILITIES,
            server="pty-supervisor",
            version=supervisor.__version__,
            pid=os.getpid(),
            uid=os.getuid(),
        )

    def request_stop(self) -> None:
        self.stop_requested.set()
        self.wake.set()

    def tell_restarting(self) -> None:
        for client in self.clients:
            client.relay_terminals()
            client.send(event_message("restarting", pid=os.getpid()))
