"""Issue 23, item 2: a client sends nothing to a socket another user could have placed.

The attack: with XDG_RUNTIME_DIR unset, another user makes `/tmp/pty-supervisor-<uid>/`
(0755) first, with a 0777 socket of a daemon (or relay) of their own; the victim's CLI used
to connect and send its whole environment. Here `nobody` plays that user in a sticky,
world-writable directory standing for /tmp, and the fake daemon records every connection
and byte. The Node plugin's side is in opencode-plugin/test/trust.test.js."""

import contextlib
import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from supervisor.client import UntrustedSocket, connect
from supervisor.client.aio import open_client
from supervisor.paths import default_socket_dir
from tests.conftest import Sandbox
from tests.reliability.helpers import NOBODY

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.getuid() != 0, reason="becoming another user needs root"),
]

SECRET = "sk-test-0123456789abcdef"

# Run as nobody with the system python: make `directory` (mode argv[2]) unless it exists,
# listen on `socket` (0777), greet every connection as a daemon would, and log to `log`
# each connection and everything it sends.
FAKE_DAEMON = r"""
import json, os, socket, sys
directory, mode, path, log = sys.argv[1], int(sys.argv[2], 8), sys.argv[3], sys.argv[4]
if not os.path.isdir(directory):
    os.mkdir(directory)
    os.chmod(directory, mode)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    with open(log, "a") as f:
        f.write("connection\n")
    hello = json.dumps({"type": "hello", "protocol": 1, "capabilities": [],
                        "server": "pty-supervisor", "pid": os.getpid(), "uid": os.getuid()})
    data = b""
    try:
        c.sendall(len(hello).to_bytes(4, "big") + hello.encode())
        c.settimeout(3)
        while chunk := c.recv(65536):
            data += chunk
    except OSError:
        pass
    with open(log, "a") as f:
        f.write(f"bytes {len(data)} {data!r}\n")
    c.close()
"""


class Fake:
    def __init__(self, socket: str, log: Path) -> None:
        self.socket = socket
        self.log = log

    def record(self) -> str:
        time.sleep(0.2)
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def world(short_tmp: Path) -> Path:
    """A directory like /tmp: everyone may create in it, nobody may remove another's."""
    os.chmod(short_tmp, 0o755)
    world = short_tmp / "tmp"
    world.mkdir()
    os.chmod(world, 0o1777)
    return world


@contextlib.contextmanager
def fake_daemon(directory: Path, socket: Path, log: Path, mode: int = 0o755) -> Iterator[Fake]:
    proc = subprocess.Popen(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            FAKE_DAEMON,
            str(directory),
            f"{mode:o}",
            str(socket),
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read() if proc.stderr else b""
        yield Fake(str(socket), log)
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def planted(world: Path) -> Iterator[Fake]:
    """nobody's directory (0755) and socket (0777) where the victim's default would be."""
    directory = world / f"pty-supervisor-{os.getuid()}"
    with fake_daemon(directory, directory / "control.sock", world / "nobody.log") as fake:
        yield fake


def victim_env(sandbox: Sandbox, socket: str) -> dict[str, str]:
    env = dict(sandbox.env, PTYSUP_SOCKET=socket, OPENAI_API_KEY=SECRET)
    del env["XDG_RUNTIME_DIR"]
    return env


def test_the_default_without_xdg_runtime_dir_is_a_directory_in_tmp_anyone_can_make() -> None:
    assert default_socket_dir({}) == f"/tmp/pty-supervisor-{os.getuid()}"


def test_the_cli_sends_nothing_to_a_socket_in_a_directory_another_user_made(
    sandbox: Sandbox, planted: Fake
) -> None:
    proc = sandbox.run("run", "--", "id", "-u", env=victim_env(sandbox, planted.socket))
    assert proc.returncode == 125, proc
    directory = os.path.dirname(planted.socket)
    message = proc.stderr.decode()
    assert message.startswith(f"ptysup: refusing to connect to {planted.socket}"), message
    assert f"socket directory {directory} belongs to uid {NOBODY}, not to you (uid 0)" in message
    assert "its mode is 755" in message
    assert "choose another socket with --socket or PTYSUP_SOCKET" in message
    assert planted.record() == ""  # not even a connection
    assert SECRET.encode() not in proc.stdout
    # and no daemon of the victim's was started anywhere
    assert sandbox.leftovers() == []
    assert os.listdir(directory) == ["control.sock"]


def test_the_cli_refuses_such_a_directory_even_when_its_socket_is_gone(
    sandbox: Sandbox, planted: Fake
) -> None:
    """With nothing listening the CLI would start a daemon of its own there: not in a
    directory another user owns (and can read and replace files in)."""
    os.unlink(planted.socket)
    proc = sandbox.run("status", env=victim_env(sandbox, planted.socket))
    assert proc.returncode == 1
    assert f"belongs to uid {NOBODY}".encode() in proc.stderr
    assert not os.path.exists(planted.socket + ".log")
    assert sandbox.leftovers() == []


def test_the_python_clients_refuse_it_too(sandbox: Sandbox, planted: Fake) -> None:
    with pytest.raises(UntrustedSocket, match=f"belongs to uid {NOBODY}"):
        connect(planted.socket, autostart=False)
    with pytest.raises(UntrustedSocket, match=f"belongs to uid {NOBODY}"):
        connect(planted.socket, autostart=True)

    async def use() -> None:
        async with open_client(planted.socket):
            raise AssertionError("connected")

    with pytest.raises(UntrustedSocket, match=f"belongs to uid {NOBODY}"):
        trio.run(use)
    assert planted.record() == ""


def test_a_daemon_of_another_user_behind_a_private_directory_is_refused_before_hello(
    sandbox: Sandbox, world: Path
) -> None:
    """The directory is the victim's and private, but the socket in it was bound by
    nobody's process (a hard link stands for any way it could get there): the peer's uid
    decides, read from the connected socket (SO_PEERCRED) before a byte is sent."""
    theirs = world / "theirs"
    with fake_daemon(theirs, theirs / "s.sock", theirs / "log", mode=0o755) as fake:
        directory = Path(os.path.dirname(sandbox.socket))
        directory.mkdir(mode=0o700)
        os.link(fake.socket, sandbox.socket)
        proc = sandbox.run("run", "--", "id", "-u", env=dict(sandbox.env, OPENAI_API_KEY=SECRET))
        assert proc.returncode == 125, proc
        assert (
            f"refusing to talk to the daemon on {sandbox.socket}: it runs as uid {NOBODY}, "
            "not as you (uid 0)"
        ).encode() in proc.stderr, proc.stderr
        with pytest.raises(UntrustedSocket, match=f"it runs as uid {NOBODY}"):
            connect(sandbox.socket, autostart=False)

        async def use() -> None:
            async with open_client(sandbox.socket, autostart=False):
                raise AssertionError("connected")

        with pytest.raises(UntrustedSocket, match=f"it runs as uid {NOBODY}"):
            trio.run(use)
        record = fake.record()
        # connected (that is how the uid is learnt), then closed without a byte sent
        assert record.count("connection") == 3, record
        assert record.count("bytes 0 b''") == 3, record
        os.unlink(sandbox.socket)


@pytest.mark.parametrize("mode", [0o755, 0o770, 0o701], ids=oct)
def test_an_own_directory_open_to_others_is_refused_and_the_message_says_how_to_fix_it(
    sandbox: Sandbox, mode: int
) -> None:
    daemon = sandbox.json("status")["pid"]
    directory = os.path.dirname(sandbox.socket)
    os.chmod(directory, mode)
    proc = sandbox.run("status")
    assert proc.returncode == 1
    assert (
        f"socket directory {directory} is open to other users (mode {mode:o}, owned by you); "
        f"fix it with: chmod 700 {directory}"
    ).encode() in proc.stderr, proc.stderr
    os.chmod(directory, 0o700)
    assert sandbox.json("status")["pid"] == daemon


def test_a_symlink_in_place_of_the_directory_is_refused(sandbox: Sandbox, short_tmp: Path) -> None:
    real = short_tmp / "real"
    real.mkdir(mode=0o700)
    directory = os.path.dirname(sandbox.socket)
    os.symlink(real, directory)
    env = dict(sandbox.env, PTYSUP_SOCKET=str(real / "control.sock"))
    assert json.loads(sandbox.run("status", "--json", env=env, check=True).stdout)["pid"]
    try:
        proc = sandbox.run("status")
        assert proc.returncode == 1
        assert f"socket directory {directory} is a symlink (to {real}".encode() in proc.stderr
    finally:
        assert sandbox.run("stop", env=env).returncode == 0


def test_a_directory_the_client_makes_itself_is_private_whatever_the_umask(
    sandbox: Sandbox,
) -> None:
    directory = os.path.dirname(sandbox.socket)
    assert not os.path.exists(directory)
    proc = subprocess.run(
        ["sh", "-c", 'umask 000; exec "$@"', "sh", "ptysup", "status"],
        env=sandbox.env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    info = os.lstat(directory)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == os.getuid()
    assert stat.S_IMODE(os.lstat(sandbox.socket).st_mode) == 0o600
