"""Other users: refused on a socket and directory loosened by mistake, whatever they send
and however they got their uid; every refusal logged; and no daemon starts on a socket
directory that is not private (tmux's rule), saying how to fix it.

tests/e2e/test_lifecycle.py already checks that a raw connect from `nobody` gets
`forbidden` and that a world-open directory is refused; these go further."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PTYSUP, Sandbox, wait_until
from tests.reliability.helpers import NOBODY, as_nobody

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.getuid() != 0, reason="becoming another user needs root"),
]

# Run as nobody with the system python: connect, send a hello and requests that would
# stop the daemon or start a program, and print everything that comes back.
INTRUDER = r"""
import json, socket, sys
def frame(m):
    data = json.dumps(m).encode()
    return len(data).to_bytes(4, "big") + data
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(10)
try:
    s.sendall(frame({"type": "hello", "protocol": 1}) + frame({"id": 1, "op": "stop"})
              + frame({"id": 2, "op": "spawn", "argv": ["/usr/bin/touch", sys.argv[2]]}))
except (BrokenPipeError, ConnectionResetError):
    pass  # the daemon may close before everything was sent
data = b""
try:
    while chunk := s.recv(65536):
        data += chunk
except ConnectionResetError:
    pass
out = []
while data:
    size = int.from_bytes(data[:4], "big")
    out.append(json.loads(data[4:4 + size]))
    data = data[4 + size:]
print(json.dumps(out))
"""


def loosen(sandbox: Sandbox) -> None:
    """Open everything on the way to the socket, as a careless chmod -R would."""
    for path in (sandbox.root, sandbox.root / "run"):
        os.chmod(path, 0o755)
    os.chmod(os.path.dirname(sandbox.socket), 0o777)
    os.chmod(sandbox.socket, 0o777)


def tighten(sandbox: Sandbox) -> None:
    """Undo `loosen` for the directory: the owner's own clients refuse an open one."""
    refused = sandbox.run("status")
    assert refused.returncode == 1 and b"is open to other users" in refused.stderr
    os.chmod(os.path.dirname(sandbox.socket), 0o700)


def refusals(sandbox: Sandbox) -> list[dict]:
    lines = Path(sandbox.socket + ".log").read_text().splitlines()
    return [
        entry
        for entry in (json.loads(line) for line in lines if line.startswith("{"))
        if entry.get("event") == "refused a peer of another user"
    ]


@pytest.mark.parametrize("euid_only", [False, True], ids=["nobody", "euid-nobody"])
def test_another_user_can_neither_stop_nor_spawn_and_each_try_is_logged(
    sandbox: Sandbox, euid_only: bool
) -> None:
    sid = sandbox.spawn("sleep", "300")
    daemon = sandbox.json("status")["pid"]
    loosen(sandbox)
    witness = sandbox.root / "touched-by-nobody"
    before = len(refusals(sandbox))
    attempts = 3
    for _ in range(attempts):
        proc = as_nobody(
            "/usr/bin/python3", "-c", INTRUDER, sandbox.socket, str(witness), euid_only=euid_only
        )
        assert proc.returncode == 0, proc.stderr.decode()
        replies = json.loads(proc.stdout)
        # one error instead of the hello, then the close: nothing was read, nothing ran
        assert replies == [
            {
                "type": "error",
                "id": None,
                "code": "forbidden",
                "message": "this daemon serves only its own user",
            }
        ]
    assert not witness.exists()
    tighten(sandbox)
    assert sandbox.json("status")["pid"] == daemon
    assert [s["id"] for s in sandbox.json("list")] == [sid]
    assert sandbox.json("info", sid)["state"] == "running"
    assert wait_until(lambda: len(refusals(sandbox)) == before + attempts, 5)
    for entry in refusals(sandbox)[before:]:
        assert entry["peer_uid"] == NOBODY and entry["level"] == "warning"
        assert isinstance(entry["peer_pid"], int)


def test_the_cli_run_by_another_user_is_told_and_starts_no_daemon_of_its_own(
    sandbox: Sandbox,
) -> None:
    daemon = sandbox.json("status")["pid"]
    loosen(sandbox)
    env = {"PATH": "/usr/bin:/bin", "PTYSUP_SOCKET": sandbox.socket, "HOME": "/nonexistent"}
    for args in (["status"], ["spawn", "--", "/bin/true"], ["stop"]):
        proc = as_nobody(PTYSUP, *args, env=env)
        assert proc.returncode == 1, proc
        # its client refuses the directory before it connects (tests/security); the daemon
        # would refuse it too (test_a_refused_client_is_told_why_even_after_the_close)
        assert f"belongs to uid 0, not to you (uid {NOBODY})".encode() in proc.stderr, proc.stderr
    tighten(sandbox)
    assert sandbox.json("status")["pid"] == daemon
    assert sandbox.json("list") == []
    # still the one daemon: nobody's CLI did not take the socket over
    assert sandbox.daemon_pid() == daemon


def test_a_refused_peer_leaves_no_connection_behind(sandbox: Sandbox) -> None:
    sandbox.json("status")
    loosen(sandbox)
    for _ in range(20):
        as_nobody("/usr/bin/python3", "-c", INTRUDER, sandbox.socket, "/nonexistent/x")
    tighten(sandbox)
    assert wait_until(lambda: sandbox.json("status")["connections"] == 1, 5)


MODES = [0o750, 0o705, 0o701, 0o770, 0o711, 0o1777, 0o2700 | 0o070]


def start_daemon(sandbox: Sandbox) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PTYSUP, "daemon"], env=sandbox.env, capture_output=True, timeout=30, check=False
    )


@pytest.mark.parametrize("mode", MODES, ids=[f"{m:o}" for m in MODES])
def test_no_daemon_starts_on_a_socket_directory_open_to_others(sandbox: Sandbox, mode: int) -> None:
    directory = os.path.dirname(sandbox.socket)
    os.makedirs(directory)
    os.chmod(directory, mode)
    proc = start_daemon(sandbox)
    assert proc.returncode == 1
    stderr = proc.stderr.decode()
    assert f"socket directory {directory} is open to other users" in stderr
    assert f"fix it with: chmod 700 {directory}" in stderr
    # refused, and logged as such
    assert any(
        json.loads(line).get("event") == "cannot listen"
        for line in stderr.splitlines()
        if line.startswith("{")
    ), stderr
    # the daemon left the directory as it was, bound nothing and kept no lock
    assert stat.S_IMODE(os.stat(directory).st_mode) == mode
    assert os.listdir(directory) == []
    # once fixed as told, it starts
    os.chmod(directory, 0o700)
    assert sandbox.json("status")["pid"]


def test_no_daemon_starts_on_a_socket_directory_of_another_user(sandbox: Sandbox) -> None:
    directory = os.path.dirname(sandbox.socket)
    os.makedirs(directory, mode=0o700)
    os.chown(directory, NOBODY, NOBODY)
    proc = start_daemon(sandbox)
    assert proc.returncode == 1
    assert (
        f"socket directory {directory} belongs to uid {NOBODY}, not to you (uid 0); "
        "choose another socket with --socket"
    ).encode() in proc.stderr
    assert os.listdir(directory) == []
    auto = sandbox.run("status")
    assert auto.returncode == 1 and f"belongs to uid {NOBODY}".encode() in auto.stderr
    assert os.stat(directory).st_uid == NOBODY
    assert not os.path.exists(sandbox.socket) and not os.path.exists(sandbox.socket + ".lock")
    assert sandbox.leftovers() == []


def test_no_daemon_starts_through_a_symlink_in_place_of_the_directory(
    sandbox: Sandbox, short_tmp: Path
) -> None:
    elsewhere = short_tmp / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    directory = os.path.dirname(sandbox.socket)
    os.symlink(elsewhere, directory)
    proc = start_daemon(sandbox)
    assert proc.returncode == 1
    assert f"socket directory {directory} is a symlink".encode() in proc.stderr
    assert os.listdir(elsewhere) == []


@pytest.mark.parametrize("owner", ["ours-but-open", "theirs"])
def test_the_cli_writes_no_log_through_a_symlink_another_user_planted(
    sandbox: Sandbox, short_tmp: Path, owner: str
) -> None:
    victim = short_tmp / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o600)
    directory = os.path.dirname(sandbox.socket)
    os.makedirs(directory, mode=0o700)
    if owner == "theirs":
        os.chown(directory, NOBODY, NOBODY)
    else:
        os.chmod(directory, 0o777)
    for path in (sandbox.root, sandbox.root / "run"):
        os.chmod(path, 0o755)
    planted = as_nobody("/bin/ln", "-s", str(victim), sandbox.socket + ".log")
    assert planted.returncode == 0, planted.stderr
    proc = sandbox.run("status")
    assert proc.returncode == 1
    assert victim.read_text() == "precious\n"


def test_a_daemon_that_cannot_start_is_reported_in_one_line(sandbox: Sandbox) -> None:
    directory = os.path.dirname(sandbox.socket)
    os.makedirs(directory)
    os.chmod(directory, 0o770)
    proc = sandbox.run("status")
    assert proc.returncode == 1
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert proc.stderr.startswith(b"ptysup")


# The CLI's own connection code, with the daemon given time to refuse before the client
# says hello (as happens when the daemon is quicker than the client).
LATE_HELLO = r"""
import socket, sys, time
from supervisor.client.blocking import Client
from supervisor.client.errors import DaemonError
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.5)
try:
    Client(s, sys.argv[1], timeout=5)
except DaemonError as exc:
    print("told:", exc.code, exc.message)
except OSError as exc:
    print("not told:", exc)
"""


def test_a_refused_client_is_told_why_even_after_the_close(sandbox: Sandbox) -> None:
    sandbox.json("status")
    loosen(sandbox)
    proc = as_nobody(sys.executable, "-c", LATE_HELLO, sandbox.socket)
    assert proc.stdout.decode().strip() == "told: forbidden this daemon serves only its own user"
