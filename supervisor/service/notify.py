"""The sd_notify protocol: datagrams of KEY=VALUE lines to $NOTIFY_SOCKET, fds attached
with SCM_RIGHTS when asked (the fd store)."""

import array
import contextlib
import os
import socket
import time
from collections.abc import Mapping, Sequence

from supervisor import logs

log = logs.get_logger("supervisor.service")


def _address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_usec(env: Mapping[str, str], pid: int) -> int | None:
    """The watchdog period systemd asks of process `pid`, or None when it asks nothing."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner is not None:
        try:
            if int(owner) != pid:
                return None
        except ValueError:
            return None
    return usec


class Notifier:
    """Tells the service manager how the daemon is doing; does nothing when none listens."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec if address else None
        self._sock: socket.socket | None = None

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> "Notifier":
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        address = _address(raw) if raw else None
        if raw and address is None:
            log.warning("NOTIFY_SOCKET is of a kind not supported; not notifying", value=raw)
        return cls(address, watchdog_usec(env, os.getpid()))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between two WATCHDOG=1: half the period, as sd_watchdog_enabled advises."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2e6

    def send(self, *fields: str, fds: Sequence[int] = ()) -> bool:
        if self.address is None:
            return False
        message = "".join(f"{field}\n" for field in fields).encode()
        ancillary = []
        if fds:
            ancillary.append((socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds)))
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendmsg([message], ancillary, 0, self.address)
        except OSError as exc:
            log.warning("cannot notify the service manager", error=str(exc), fields=fields)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.send(*_status(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        """Before a reload (an in-place upgrade); `ready()` again once it is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


def _status(text: str | None) -> list[str]:
    return [] if text is None else ["STATUS=" + " ".join(text.splitlines())]
