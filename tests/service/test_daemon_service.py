"""The daemon under a service manager: a socket systemd-socket-activate passes it, and
sd_notify to a socket the test binds."""

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PTYSUP, Sandbox, alive, wait_until

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def started(argv: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_serves_clients_on_the_socket_systemd_socket_activate_passes(sandbox: Sandbox) -> None:
    activate = shutil.which("systemd-socket-activate")
    assert activate, "systemd-socket-activate is needed: run `scripts/setup --tests`"
    directory = os.path.dirname(sandbox.socket)
    os.makedirs(directory, mode=0o700)
    with started([activate, "-l", sandbox.socket, PTYSUP, "daemon"], sandbox.env) as proc:
        assert wait_until(lambda: os.path.exists(sandbox.socket), 10)
        status = sandbox.json("status", "--no-start")
        assert status["pid"] == proc.pid
        assert status["socket"] == sandbox.socket
        assert stat.S_IMODE(os.stat(sandbox.socket).st_mode) == 0o600
        sid = sandbox.spawn("sleep", "300")
        child = sandbox.json("info", sid)["pid"]
        assert not any(k.startswith("LISTEN_") for k in environ_of(child))
        sandbox.ok("--no-start", "stop")
        assert proc.wait(15) == 0
        assert not alive(child)
    assert stat.S_ISSOCK(os.lstat(sandbox.socket).st_mode), "the socket is systemd's to remove"
    assert not os.path.exists(sandbox.socket + ".lock")
    assert sandbox.leftovers() == []
    os.unlink(sandbox.socket)


def test_a_passed_socket_for_another_path_is_refused(sandbox: Sandbox) -> None:
    activate = shutil.which("systemd-socket-activate")
    assert activate, "systemd-socket-activate is needed: run `scripts/setup --tests`"
    other = str(sandbox.root / "other.sock")
    argv = [activate, "-l", other, PTYSUP, "daemon", "--socket", sandbox.socket]
    with started(argv, sandbox.env) as proc:
        assert wait_until(lambda: os.path.exists(other), 10)
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(other)
            assert proc.wait(20) == 1
        assert proc.stdout is not None
        output = proc.stdout.read().decode()
    assert f"bound to '{other}', but this daemon serves {sandbox.socket}" in output


class Datagrams:
    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.received: list[tuple[float, list[str]]] = []

    def until(self, field: str, timeout: float) -> list[str]:
        """Receive until a message with `field`; return every field received meanwhile."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            fields = data.decode().splitlines()
            self.received.append((time.monotonic(), fields))
            seen += fields
            if field in fields:
                return seen
        raise AssertionError(f"no {field} within {timeout} s; got {seen}")

    def drain(self, seconds: float) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                seen += self.sock.recv(4096).decode().splitlines()
            except TimeoutError:
                break
        return seen

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(sandbox: Sandbox) -> Iterator[tuple[str, Datagrams]]:
    path = str(sandbox.root / "notify")
    receiver = Datagrams(path)
    try:
        yield path, receiver
    finally:
        receiver.close()


def test_ready_watchdog_status_and_stopping(
    sandbox: Sandbox, notify_socket: tuple[str, Datagrams]
) -> None:
    path, receiver = notify_socket
    env = dict(sandbox.env, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
    with started([PTYSUP, "daemon"], env) as proc:
        ready = receiver.until("READY=1", 15)
        assert "STATUS=0 sessions (0 running), 0 clients" in ready
        assert sandbox.json("status", "--no-start")["pid"] == proc.pid
        start = time.monotonic()
        receiver.until("WATCHDOG=1", 8)
        receiver.until("WATCHDOG=1", 8 - (time.monotonic() - start))
        assert time.monotonic() - start < 8
        sandbox.spawn("sleep", "300")
        status = receiver.until("STATUS=1 session (1 running), 0 clients", 5)
        assert "READY=1" not in status
        sandbox.ok("--no-start", "stop")
        stopping = receiver.until("STOPPING=1", 10)
        assert any(f.startswith("STATUS=stopping") for f in stopping)
        assert proc.wait(15) == 0


def test_abstract_notify_socket_and_a_watchdog_meant_for_another_pid(sandbox: Sandbox) -> None:
    name = f"ptysup-test-{os.getpid()}-{time.monotonic_ns()}"
    receiver = Datagrams("\0" + name)
    try:
        env = dict(sandbox.env, NOTIFY_SOCKET="@" + name, WATCHDOG_USEC="200000", WATCHDOG_PID="1")
        with started([PTYSUP, "daemon"], env):
            receiver.until("READY=1", 15)
            assert "WATCHDOG=1" not in receiver.drain(1.0)
            sandbox.ok("--no-start", "stop")
            receiver.until("STOPPING=1", 10)
    finally:
        receiver.close()


def test_a_daemon_started_on_demand_is_nobodys_service(
    sandbox: Sandbox, notify_socket: tuple[str, Datagrams]
) -> None:
    path, receiver = notify_socket
    env = dict(sandbox.env, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
    assert sandbox.run("status", env=env).returncode == 0
    assert receiver.drain(1.0) == []
