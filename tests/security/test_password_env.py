"""Issue 23, item 8: the OpenCode server's password is not readable from the daemon's
environment (/proc/<pid>/environ, readable by every process of the user, the daemon's own
children first), neither after the start nor after an upgrade in place, and the gateway
still sends it upstream."""

import base64
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from supervisor.daemon.lifecycle import credentials
from tests.conftest import Sandbox

PASSWORD = "upstream-pw-7c1e9d"
USERNAME = "gw-user-3b"


class _EchoAuthorization(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (self.headers.get("Authorization") or "none").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    """An HTTP server on loopback that answers with the Authorization it was sent."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoAuthorization)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def environ_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


# What a child of the daemon runs: the daemon's environment as any process of the user
# reads it, then a request through the gateway.
ATTACK = 'tr "\\0" "\\n" < /proc/"$1"/environ; echo "auth=$(curl -s "$OPENCODE_SERVER_URL/whoami")"'


def attack(sandbox: Sandbox, daemon: int) -> str:
    return sandbox.ok("run", "--", "sh", "-c", ATTACK, "sh", str(daemon))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc/<pid>/environ")
def test_a_child_cannot_read_the_password_from_the_daemon_before_or_after_an_upgrade(
    sandbox: Sandbox, upstream: str
) -> None:
    sandbox.env.update(
        PTYSUP_OPENCODE_UPSTREAM=upstream,
        OPENCODE_SERVER_PASSWORD=PASSWORD,
        OPENCODE_SERVER_USERNAME=USERNAME,
    )
    daemon = sandbox.json("status")["pid"]
    expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    for when in ("after the start", "after an upgrade in place"):
        if when == "after an upgrade in place":
            sandbox.ok("upgrade")
            assert sandbox.json("status")["pid"] == daemon
        environ = environ_of(daemon)
        assert PASSWORD.encode() not in environ, when
        assert b"OPENCODE_SERVER_USERNAME=" not in environ, when
        seen = attack(sandbox, daemon)
        assert PASSWORD not in seen and USERNAME not in seen, (when, seen)
        assert f"PTYSUP_OPENCODE_UPSTREAM={upstream}" in seen  # it did read the environment
        assert f"auth={expected}" in seen, (when, seen)


def test_credentials_go_over_a_pipe_and_nothing_else_is_taken_for_one() -> None:
    saved = credentials.held()
    env = {"OPENCODE_SERVER_PASSWORD": "pw", "OPENCODE_SERVER_USERNAME": "me", "HOME": "/h"}
    try:
        assert credentials.take(env) is True
        assert env == {"HOME": "/h"}
        fd = credentials.hand_over()
        assert os.get_inheritable(fd)
        credentials._held.clear()
        assert credentials.take({credentials.FD_VARIABLE: str(fd)}) is False
        assert credentials.held() == {
            "OPENCODE_SERVER_PASSWORD": "pw",
            "OPENCODE_SERVER_USERNAME": "me",
        }
        with pytest.raises(OSError):
            os.fstat(fd)  # read once, then closed
        # an fd that is no pipe, or a pipe still open for writing, is left alone
        read, write = os.pipe()
        with open(os.devnull) as null:
            for text in ("0", "x", str(null.fileno()), str(read), "99999"):
                assert credentials.receive(text) == {}
            os.fstat(null.fileno())
        assert os.get_blocking(read)
        os.close(read)
        os.close(write)
        credentials._held["OPENCODE_SERVER_PASSWORD"] = "p" * credentials.MAX_SIZE
        with pytest.raises(credentials.HandOverError):
            credentials.hand_over()
    finally:
        credentials._held.clear()
        credentials._held.update(saved)
