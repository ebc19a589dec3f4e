"""A daemon killed outright is restarted the way systemd restarts it: with the terminal
masters it kept in the fd store passed back. The test plays systemd: it receives the
notifications (and their fds) and starts the new daemon with LISTEN_FDS."""

import array
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PTYSUP, Sandbox, alive, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

LAUNCH = """
import os, sys
fds = [int(f) for f in sys.argv[1].split(",")]
for i, fd in enumerate(fds):
    os.dup2(fd, 3 + i, inheritable=True)
os.environ["LISTEN_FDS"] = str(len(fds))
os.environ["LISTEN_FDNAMES"] = sys.argv[2]
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[3], [sys.argv[3], "daemon"])
"""


class FakeSystemd:
    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(10)
        self.store: dict[str, int] = {}
        self.seen: list[str] = []

    def receive(self) -> str:
        fds = array.array("i")
        data, ancdata, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        text = data.decode()
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        if fields.get("FDSTORE") == "1":
            self.store[fields["FDNAME"]] = fds[0]
        if fields.get("FDSTOREREMOVE") == "1":
            os.close(self.store.pop(fields["FDNAME"]))
        self.seen.append(text)
        return text

    def until(self, predicate, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, self.seen
            self.receive()

    def close(self) -> None:
        for fd in self.store.values():
            os.close(fd)
        self.sock.close()


def test_terminals_survive_a_daemon_crash_through_the_fd_store(
    sandbox: Sandbox, short_tmp: Path
) -> None:
    systemd = FakeSystemd(short_tmp)
    env = dict(sandbox.env, NOTIFY_SOCKET=systemd.path)
    first = subprocess.Popen([PTYSUP, "daemon"], env=env, stderr=subprocess.DEVNULL)
    second = None
    try:
        systemd.until(lambda: any("READY=1" in m for m in systemd.seen))
        typist = sandbox.spawn("sh", "-c", "while read line; do echo got-$line; done")
        nine = sandbox.spawn("sh", "-c", "echo bye; exit 9")
        assert sandbox.run("wait", nine, "--timeout", "10").returncode == 9
        sandbox.ok("write", typist, "one", "--enter")
        assert sandbox.run("expect", typist, "got-one", "--timeout", "10").returncode == 0
        systemd.until(lambda: {"pty-1", "pty-2"} <= systemd.store.keys())
        before = {s["id"]: s for s in sandbox.json("list")}
        time.sleep(2.5)  # a snapshot is written every 2 s

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert alive(before[typist]["pid"])

        names = sorted(systemd.store)
        fds = [systemd.store[n] for n in names]
        second = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, ",".join(map(str, fds)), ":".join(names), PTYSUP],
            env=env,
            pass_fds=fds,
            stderr=subprocess.DEVNULL,
        )
        systemd.until(lambda: sum("READY=1" in m for m in systemd.seen) >= 2)
        after = {s["id"]: s for s in sandbox.json("list")}
        assert after.keys() == before.keys()
        assert after[typist]["pid"] == before[typist]["pid"]
        assert after[typist]["state"] == "running"
        assert after[nine]["exit_code"] == 9
        assert b"got-one" in sandbox.run("read", typist).stdout

        sandbox.ok("write", typist, "two", "--enter")
        assert sandbox.run("expect", typist, "got-two", "--timeout", "10").returncode == 0
        sandbox.ok("kill", typist)
        assert wait_until(lambda: not alive(before[typist]["pid"]), 10)
        ended = sandbox.json("info", typist)
        assert ended["state"] == "exited"
        assert ended["exit_known"] is False and ended["exit_code"] is None
        new = sandbox.spawn("true")
        assert int(new) > max(int(i) for i in before)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                sandbox.run("--no-start", "stop")
                proc.wait(timeout=20)
        systemd.close()
