"""Running out: file descriptors, pseudo-terminals, disk space. Each must give a clear
`limit` error or a clear refusal, never a crash, and service must come back once there is
room again.

PTY exhaustion and full disks are made in a mount namespace of the daemon's own (`unshare
-m`, root only): a devpts instance with a small `max=`, a tiny tmpfs over the socket
directory. Clients reach a daemon whose socket is inside such a tmpfs through `nsenter`."""

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.client import DaemonError, connect
from tests.conftest import PTYSUP, Sandbox, alive, wait_until
from tests.reliability.helpers import HELLO, can_unshare_mounts, fd_count, fd_limit

pytestmark = pytest.mark.slow

needs_namespaces = pytest.mark.skipif(
    not can_unshare_mounts(), reason="needs root and `unshare -m` (mount namespaces)"
)


def serving(sandbox: Sandbox, timeout: float = 15) -> int | None:
    """The daemon's pid once it answers, without starting one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = sandbox.run("--no-start", "status", "--json")
        if proc.returncode == 0:
            return int(json.loads(proc.stdout)["pid"])
        time.sleep(0.05)
    return None


@contextlib.contextmanager
def daemon_under(sandbox: Sandbox, argv: list[str], stderr: object) -> Iterator[int]:
    """Run `argv` (which execs `ptysup daemon`) and yield the daemon's pid; stop it after."""
    proc = subprocess.Popen(
        argv,
        env=sandbox.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,  # type: ignore[arg-type]
        start_new_session=True,
    )
    try:
        yield proc.pid
    finally:
        if proc.poll() is None:
            sandbox.run("--no-start", "stop", timeout=30)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- file descriptors -----------------------------------------------------------


def fill_to(sandbox: Sandbox, pid: int, client, spare: int) -> list[socket.socket]:
    """Spawn sessions, then open idle connections, until exactly `spare` fds are left."""
    idle: list[socket.socket] = []
    free = fd_limit(pid) - fd_count(pid)
    # the master, the pidfd the session's watcher opens once it runs, and on the compiled
    # byte plane the plane's own duplicate of the master
    native = client.call("status")["byte_path"]["byte_path"] == "native"
    per_session = 3 if native else 2
    while free > spare + per_session:
        before = fd_count(pid)
        client.spawn(["sleep", "300"], cwd="/", env={"PATH": "/usr/bin:/bin"})
        assert wait_until(lambda b=before: fd_count(pid) == b + per_session, 5)
        free = fd_limit(pid) - fd_count(pid)
    while free > spare:
        before = fd_count(pid)
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(sandbox.socket)
        sock.sendall(HELLO)  # a silent one would be closed at the hello deadline
        idle.append(sock)
        assert wait_until(lambda b=before: fd_count(pid) == b + 1, 5)
        free -= 1
    return idle


def test_out_of_fds_a_spawn_gets_a_limit_error_and_room_brings_spawns_back(
    sandbox: Sandbox, short_tmp: Path
) -> None:
    with (
        open(short_tmp / "daemon.log", "wb") as log,
        daemon_under(sandbox, ["bash", "-c", f"ulimit -n 40; exec {PTYSUP} daemon"], log) as pid,
    ):
        assert serving(sandbox) == pid
        assert fd_limit(pid) == 40
        with connect(sandbox.socket, autostart=False) as client:
            idle = fill_to(sandbox, pid, client, spare=1)
            with pytest.raises(DaemonError) as refused:
                client.spawn(["sleep", "300"], cwd="/", env={"PATH": "/usr/bin:/bin"})
            assert refused.value.code == "limit"
            assert "out of file descriptors" in refused.value.message
            # no fd leaked by the failed spawn, and the daemon serves on
            assert fd_limit(pid) - fd_count(pid) == 1
            status = client.status()
            assert status["pid"] == pid and status["running"] == status["sessions"]
            held = [s["id"] for s in client.list()]
            client.remove(held[0])
            client.remove(held[1])
            client.spawn(["sleep", "300"], cwd="/", env={"PATH": "/usr/bin:/bin"})
            for sock in idle:
                sock.close()
        # a new client is served again (its connection needed an fd too)
        assert serving(sandbox) == pid
        assert sandbox.run("--no-start", "spawn", "--", "true").returncode == 0


def test_with_two_fds_left_a_spawn_still_works(sandbox: Sandbox, short_tmp: Path) -> None:
    """A spawn needs the terminal's two fds and nothing more: the byte plane's duplicate
    takes the slave's once the child has its terminal, and with no fd left for a pidfd the
    child is watched by polling."""
    with (
        open(short_tmp / "daemon.log", "wb") as log,
        daemon_under(sandbox, ["bash", "-c", f"ulimit -n 40; exec {PTYSUP} daemon"], log) as pid,
    ):
        assert serving(sandbox) == pid
        with connect(sandbox.socket, autostart=False) as client:
            idle = fill_to(sandbox, pid, client, spare=2)
            try:
                session = client.spawn(["sleep", "300"], cwd="/", env={"PATH": "/usr/bin:/bin"})
                time.sleep(0.3)
                assert client.info(session["id"])["state"] == "running"
                client.kill(session["id"])
                assert client.info(session["id"])["signal"] is not None
            finally:
                for sock in idle:
                    sock.close()


# -- pseudo-terminals -----------------------------------------------------------


@needs_namespaces
def test_out_of_ptys_a_spawn_gets_a_limit_error_and_room_brings_spawns_back(
    sandbox: Sandbox, short_tmp: Path
) -> None:
    devpts = "mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,max=4 devpts /dev/pts"
    argv = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        f"{devpts} && exec {PTYSUP} daemon",
    ]
    with (
        open(short_tmp / "daemon.log", "wb") as log,
        daemon_under(sandbox, argv, log) as pid,
    ):
        assert serving(sandbox) == pid
        ids = [sandbox.spawn("sleep", "300") for _ in range(4)]
        refused = sandbox.run("spawn", "--", "sleep", "300")
        assert refused.returncode == 1
        assert b"no pseudo-terminal left" in refused.stderr
        assert sandbox.json("status")["pid"] == pid
        assert [s["state"] for s in sandbox.json("list")] == ["running"] * 4
        sandbox.ok("rm", ids[0])
        again = sandbox.json("spawn", "--", "sleep", "300")
        assert again["tty"].startswith("/dev/pts/") and again["state"] == "running"
        assert sandbox.json("status")["pid"] == pid


# -- full disks -------------------------------------------------------------------


class Jail:
    """A daemon whose socket directory is a small tmpfs only it (and nsenter) can see."""

    def __init__(self, sandbox: Sandbox, pid: int) -> None:
        self.sandbox = sandbox
        self.pid = pid
        self.directory = os.path.dirname(sandbox.socket)

    def ptysup(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "--", PTYSUP, "--no-start", *args],
            env=self.sandbox.env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str) -> str:
        proc = self.ptysup(*args)
        assert proc.returncode == 0, proc
        return proc.stdout.decode()

    def sh(self, script: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "--", "sh", "-c", script],
            capture_output=True,
            timeout=30,
            check=False,
        )

    def fill(self, *also: str) -> None:
        """Fill the tmpfs, then the last page of each file in `also`."""
        self.sh(f"cat /dev/zero > {self.directory}/fill 2>/dev/null")
        for path in also:
            self.sh(f"cat /dev/zero >> {path} 2>/dev/null")
        df = self.sh(f"df --output=avail {self.directory} | tail -1").stdout.strip()
        assert df == b"0", df

    def wait_serving(self, timeout: float = 15) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ptysup("status").returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if alive(self.pid):
            self.ptysup("stop", timeout=30)
        if not wait_until(lambda: not alive(self.pid), 10):
            os.kill(self.pid, 9)


@contextlib.contextmanager
def jailed(sandbox: Sandbox, stderr: object, redirect: str = "") -> Iterator[Jail]:
    directory = os.path.dirname(sandbox.socket)
    os.makedirs(directory, mode=0o700)
    script = (
        f"mount -t tmpfs -o size=256k,mode=0700 tmpfs {directory} && "
        f"exec {PTYSUP} daemon {redirect}"
    )
    proc = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        env=sandbox.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,  # type: ignore[arg-type]
        start_new_session=True,
    )
    jail = Jail(sandbox, proc.pid)
    try:
        yield jail
    finally:
        jail.stop()
        proc.wait(10)


@needs_namespaces
def test_a_full_disk_refuses_an_upgrade_cleanly_and_service_goes_on(
    sandbox: Sandbox, short_tmp: Path
) -> None:
    with (
        open(short_tmp / "daemon.log", "wb") as log,
        jailed(sandbox, log) as jail,
    ):
        assert jail.wait_serving()
        sid = jail.ok("spawn", "--", "sh", "-c", "stty -echo; while read l; do echo got:$l; done")
        sid = sid.strip()
        jail.fill()
        refused = jail.ptysup("upgrade")
        assert refused.returncode == 1
        assert b"cannot write the state file" in refused.stderr
        assert b"No space left on device" in refused.stderr
        # nothing half-written is left behind, and the daemon serves on
        names = set(jail.sh(f"ls -A {jail.directory}").stdout.decode().split())
        assert names == {
            "control.sock",
            "control.sock.lock",
            "control.sock.next-id",
            "shim",
            "shell",
            "fill",
        }, names
        jail.ok("write", sid, "still-here", "--enter")
        assert jail.ptysup("expect", sid, "got:still-here", "--timeout", "10").returncode == 0
        other = jail.ok("spawn", "--", "sh", "-c", "echo spawned-on-a-full-disk").strip()
        assert jail.ptysup("expect", other, "spawned-on-a-full-disk").returncode == 0
        # room again: the same upgrade goes through, same pid, sessions kept
        jail.sh(f"rm {jail.directory}/fill")
        jail.ok("upgrade")
        assert jail.wait_serving()
        assert json.loads(jail.ok("status", "--json"))["pid"] == jail.pid
        assert jail.ptysup("expect", sid, "got:still-here").returncode == 0


@needs_namespaces
def test_a_disk_that_fills_under_the_log_does_not_end_the_daemon(
    sandbox: Sandbox, short_tmp: Path
) -> None:
    directory = os.path.dirname(sandbox.socket)
    log = f"{directory}/control.sock.log"
    with jailed(sandbox, subprocess.DEVNULL, redirect=f"2>>{log}") as jail:
        assert jail.wait_serving()
        keeper = jail.ok("spawn", "--", "sleep", "300").strip()
        jail.fill(log)
        jail.ptysup("spawn", "--", "true")
        time.sleep(1)
        assert alive(jail.pid)
        assert jail.wait_serving(5)
        assert "running" in jail.ok("info", keeper)


def test_a_daemon_whose_log_cannot_be_written_still_serves(sandbox: Sandbox) -> None:
    with (
        open("/dev/full", "wb") as full,
        daemon_under(sandbox, [PTYSUP, "daemon"], full) as pid,
    ):
        assert serving(sandbox, timeout=5) == pid
        sid = sandbox.spawn("sh", "-c", "echo hi")
        assert sandbox.run("wait", sid, "--timeout", "10").returncode == 0
        assert serving(sandbox) == pid
