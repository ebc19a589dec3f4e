"""One daemon per socket, stale sockets, settings, stop, other users."""

import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PTYSUP, Sandbox, alive, wait_until

pytestmark = pytest.mark.slow


def test_stop_leaves_no_child_no_daemon_no_socket(sandbox: Sandbox) -> None:
    ids = [
        sandbox.spawn("sleep", "300"),
        sandbox.spawn("bash", "-c", "trap '' HUP TERM; sleep 300"),
    ]
    pids = [sandbox.json("info", i)["pid"] for i in ids]
    daemon = sandbox.json("status")["pid"]
    sandbox.ok("stop")
    assert not alive(daemon)
    assert all(not alive(p) for p in pids)
    assert not os.path.exists(sandbox.socket)
    assert not os.path.exists(sandbox.socket + ".lock")
    assert sandbox.leftovers() == []
    again = sandbox.run("stop")
    assert again.returncode == 1 and b"no daemon is running" in again.stderr


def test_sigterm_ends_children_and_cleans_up(sandbox: Sandbox) -> None:
    pid = sandbox.json("info", sandbox.spawn("sleep", "300"))["pid"]
    daemon = sandbox.json("status")["pid"]
    os.kill(daemon, signal.SIGTERM)
    assert wait_until(lambda: not alive(daemon), 10)
    assert not alive(pid)
    assert not os.path.exists(sandbox.socket)


def test_second_daemon_is_refused_and_the_first_undisturbed(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sleep", "300")
    first = sandbox.json("status")["pid"]
    second = subprocess.run([PTYSUP, "daemon"], env=sandbox.env, capture_output=True, timeout=20)
    assert second.returncode == 1
    assert f"another daemon (pid {first}) is already serving".encode() in second.stderr
    assert sandbox.json("status")["pid"] == first
    assert sandbox.json("info", sid)["state"] == "running"


def test_stale_socket_of_a_killed_daemon_is_recovered(sandbox: Sandbox) -> None:
    sandbox.spawn("sleep", "300")
    first = sandbox.json("status")["pid"]
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: not alive(first), 5)
    assert os.path.exists(sandbox.socket)
    status = sandbox.json("status")
    assert status["pid"] != first
    assert status["sessions"] == 0
    # the orphaned child of the killed daemon: cleaned up by the sandbox's teardown
    for pid in sandbox.leftovers():
        if pid != status["pid"]:
            os.kill(pid, signal.SIGKILL)


def test_a_foreign_file_at_the_socket_path_is_not_removed(sandbox: Sandbox) -> None:
    os.makedirs(os.path.dirname(sandbox.socket), mode=0o700, exist_ok=True)
    with open(sandbox.socket, "w") as f:
        f.write("not a socket")
    proc = sandbox.run("status")
    assert proc.returncode == 1
    assert b"exists and is not a socket" in proc.stderr
    assert Path(sandbox.socket).read_text() == "not a socket"


def test_refuses_a_socket_directory_open_to_others(sandbox: Sandbox) -> None:
    directory = os.path.dirname(sandbox.socket)
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o777)
    proc = sandbox.run("status")
    assert proc.returncode == 1
    assert f"chmod 700 {directory}".encode() in proc.stderr


def test_bad_settings_are_refused_naming_the_setting(sandbox: Sandbox) -> None:
    env = dict(sandbox.env, PTYSUP_RING_SIZE="lots")
    proc = subprocess.run([PTYSUP, "daemon"], env=env, capture_output=True, timeout=20)
    assert proc.returncode == 2
    assert b"PTYSUP_RING_SIZE" in proc.stderr
    config = sandbox.root / "config" / "pty-supervisor" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("max_sessions = 0\n")
    proc = subprocess.run([PTYSUP, "daemon"], env=sandbox.env, capture_output=True, timeout=20)
    assert proc.returncode == 2 and b"max_sessions in " in proc.stderr
    config.write_text("ring_sise = 4096\n")
    proc = subprocess.run([PTYSUP, "daemon"], env=sandbox.env, capture_output=True, timeout=20)
    assert proc.returncode == 2 and b"unknown setting 'ring_sise'" in proc.stderr
    auto = sandbox.run("status")
    assert auto.returncode == 1 and b"ring_sise" in auto.stderr
    config.write_text("ring_size = 65536\n")
    assert sandbox.json("status")["limits"]["ring_size"] == 65536


def test_socket_path_too_long_is_refused_clearly(sandbox: Sandbox) -> None:
    long_path = "/tmp/" + "x" * 120 + "/control.sock"
    proc = sandbox.run("--socket", long_path, "status")
    assert proc.returncode == 1 and b"over the limit" in proc.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="becoming another user needs root")
def test_another_user_is_refused_even_on_a_loosened_socket(sandbox: Sandbox) -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    sid = sandbox.spawn("sleep", "300")
    directory = os.path.dirname(sandbox.socket)
    os.chmod(directory, 0o777)
    os.chmod(sandbox.socket, 0o777)
    for parent in (sandbox.root, sandbox.root / "run"):
        os.chmod(parent, 0o755)
    script = (
        "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
        "s.settimeout(5); print(s.recv(4096))"
    )
    proc = subprocess.run(
        [
            setpriv,
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "python3",
            "-c",
            script,
            sandbox.socket,
        ],
        capture_output=True,
        timeout=20,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert b"forbidden" in proc.stdout, proc
    assert b"this daemon serves only its own user" in proc.stdout
    os.chmod(directory, 0o700)  # the owner's own clients refuse an open directory
    assert sandbox.json("info", sid)["state"] == "running"
    log = Path(sandbox.socket + ".log").read_text()
    assert "refused a peer of another user" in log


def test_garbage_on_the_socket_gets_errors_and_harms_nothing(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "while :; do echo tick; sleep 0.05; done")
    daemon = sandbox.json("status")["pid"]

    def exchange(payload: bytes) -> bytes:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sandbox.socket)
        s.settimeout(5)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        return data

    assert b'"code":"bad_request"' in exchange(b"\x00\x00\x00\x05hello")
    assert b'"code":"limit"' in exchange(b"\xff\xff\xff\xff" + b"x" * 100)
    assert b'"code":"bad_request"' in exchange(b"\x00\x00\x00\x03{x}")
    hello = b'{"type":"hello","protocol":1}'
    frame = len(hello).to_bytes(4, "big") + hello
    unknown = b'{"id":1,"op":"frobnicate"}'
    reply = exchange(frame + len(unknown).to_bytes(4, "big") + unknown)
    assert b'"code":"unsupported"' in reply and b"frobnicate" in reply
    bad_version = b'{"type":"hello","protocol":99}'
    assert b'"code":"unsupported"' in exchange(len(bad_version).to_bytes(4, "big") + bad_version)
    half = exchange(b"\x00\x00")  # half a length, then EOF: the hello, then a clean close
    assert b'"type":"hello"' in half and b'"type":"error"' not in half
    assert sandbox.json("status")["pid"] == daemon
    assert sandbox.json("info", sid)["state"] == "running"
    # the session still produces output for clients after all that
    end = sandbox.json("info", sid)["end"]
    time.sleep(0.2)
    assert sandbox.json("info", sid)["end"] > end


def test_stat_of_files_the_daemon_creates(sandbox: Sandbox) -> None:
    sandbox.json("status")
    log = sandbox.socket + ".log"
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(sandbox.socket + ".lock").st_mode) == 0o600
