"""sd_notify as the daemon speaks it, received on sockets the tests bind."""

import array
import os
import socket
import time
from pathlib import Path

import pytest

from supervisor.service.notify import Notifier, watchdog_usec


def receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_path_socket(short_tmp: Path) -> None:
    path = str(short_tmp / "notify")
    with receiver(path) as sock:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
        assert notifier.enabled and notifier.watchdog_interval is None
        assert notifier.ready("3 sessions (1 running), 2 clients")
        assert sock.recv(4096) == b"READY=1\nSTATUS=3 sessions (1 running), 2 clients\n"
        assert notifier.status("two\nlines")
        assert sock.recv(4096) == b"STATUS=two lines\n"
        assert notifier.stopping()
        assert sock.recv(4096) == b"STOPPING=1\n"
        notifier.close()


def test_abstract_socket() -> None:
    name = f"ptysup-test-{os.getpid()}"
    with receiver("\0" + name) as sock:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@" + name})
        assert notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1\n"
        notifier.close()


def test_reloading_carries_the_monotonic_clock(short_tmp: Path) -> None:
    path = str(short_tmp / "notify")
    with receiver(path) as sock:
        notifier = Notifier(path)
        assert notifier.reloading()
        lines = sock.recv(4096).decode().splitlines()
        assert lines[0] == "RELOADING=1"
        usec = int(lines[1].removeprefix("MONOTONIC_USEC="))
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert 0 <= now - usec < 5_000_000
        notifier.close()


def test_fds_travel_with_the_message(short_tmp: Path) -> None:
    path = str(short_tmp / "notify")
    r, w = os.pipe()
    with receiver(path) as sock:
        notifier = Notifier(path)
        assert notifier.send("FDSTORE=1", "FDNAME=pipe", fds=[w])
        data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(4 * 4))
        assert data == b"FDSTORE=1\nFDNAME=pipe\n"
        (level, kind, payload) = ancillary[0]
        assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
        received = array.array("i", payload)[0]
        os.write(received, b"x")
        assert os.read(r, 1) == b"x"
        for fd in (r, w, received):
            os.close(fd)
        notifier.close()


def test_without_a_manager_nothing_is_sent() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled and not notifier.ready() and notifier.watchdog_interval is None
    assert not Notifier.from_environ({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled
    assert not Notifier(str(Path("/nonexistent/notify"))).ready()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "1000000"}, 1_000_000),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "{pid}"}, 1_000_000),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "me"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_only_when_it_is_ours(env: dict[str, str], expected: int | None) -> None:
    env = {k: v.format(pid=os.getpid()) for k, v in env.items()}
    assert watchdog_usec(env, os.getpid()) == expected
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@x", **env})
    expected_interval = None if expected is None else expected / 2e6
    assert notifier.watchdog_interval == expected_interval
