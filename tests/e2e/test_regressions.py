"""Behaviours that were once wrong, driven through a real daemon."""

import json
import socket
import time

import pytest

from tests.conftest import Sandbox

pytestmark = pytest.mark.slow


def frame(message: dict) -> bytes:
    data = json.dumps(message).encode()
    return len(data).to_bytes(4, "big") + data


class Raw:
    """A protocol client on a bare socket."""

    def __init__(self, path: str, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(path)
        self.sock.settimeout(10)
        self.buf = b""
        self.sock.sendall(frame({"type": "hello", "protocol": 1}))

    def send(self, message: dict) -> None:
        self.sock.sendall(frame(message))

    def next_json(self) -> dict:
        while True:
            while len(self.buf) >= 4:
                size = int.from_bytes(self.buf[:4], "big")
                if len(self.buf) < 4 + size:
                    break
                payload, self.buf = self.buf[4 : 4 + size], self.buf[4 + size :]
                if payload[:1] == b"{":
                    return json.loads(payload)
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk

    def reply(self, request_id: int) -> dict:
        while True:
            message = self.next_json()
            if message.get("id") == request_id and message["type"] in ("result", "error"):
                return message


def test_a_slow_reader_asking_questions_never_hangs_the_daemon(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "while :; do echo flood flood flood flood; done")
    daemon = sandbox.json("status")["pid"]
    slow = Raw(sandbox.socket, rcvbuf=4096)
    slow.send({"id": 1, "op": "subscribe", "session": sid, "since": 0})
    for i in range(2, 200):
        slow.send({"id": i, "op": "status"})
        slow.sock.recv(512)
        time.sleep(0.01)
    started = time.monotonic()
    assert sandbox.json("status")["pid"] == daemon
    assert time.monotonic() - started < 5
    slow.sock.close()


def test_the_screen_follows_a_resize_made_while_quiet(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "echo ready; exec cat")
    assert sandbox.run("expect", sid, "ready", "--timeout", "10").returncode == 0
    time.sleep(0.3)
    sandbox.ok("resize", sid, "40", "10")
    sandbox.ok("write", sid, "hello", "--enter")
    assert sandbox.run("expect", sid, "hello\r\nhello", "--timeout", "10").returncode == 0
    screen = sandbox.json("screen", sid)
    assert (screen["cols"], screen["rows"]) == (40, 10)


def test_a_spawn_without_env_or_cwd_works_for_its_home(sandbox: Sandbox) -> None:
    sandbox.json("status")
    client = Raw(sandbox.socket)
    client.send({"id": 1, "op": "spawn", "argv": ["/usr/bin/env"], "subscribe": True})
    session = client.reply(1)["result"]
    assert session["context"]["directory"] == session["cwd"]
    assert session["cwd"] != "/"


@pytest.mark.parametrize(
    "args",
    [
        {"argv": ["true"], "cwd": "/\ud800"},
        {"argv": ["tr\ud800ue"]},
        {"argv": ["true"], "env": {"A\ud800": "1"}},
        {"argv": ["true"], "env": {"A": "\ud800"}},
    ],
)
def test_lone_surrogates_are_bad_requests(sandbox: Sandbox, args: dict) -> None:
    sandbox.json("status")
    client = Raw(sandbox.socket)
    client.send({"id": 1, "op": "spawn", **args})
    reply = client.reply(1)
    assert reply["type"] == "error" and reply["code"] == "bad_request", reply


def test_input_reaches_the_terminal_when_only_observers_are_attached(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "read line; echo got-$line")
    watcher = Raw(sandbox.socket)
    watcher.send({"id": 1, "op": "attach", "session": sid, "read_only": True})
    assert watcher.reply(1)["result"]["role"] == "observer"
    typist = Raw(sandbox.socket)
    typist.send({"id": 1, "op": "subscribe", "session": sid, "input": True})
    sub = typist.reply(1)["result"]["sub"]
    data = b"x1\r"
    typist.sock.sendall(
        (5 + len(data)).to_bytes(4, "big") + b"\x01" + sub.to_bytes(4, "big") + data
    )
    assert sandbox.run("expect", sid, "got-x1", "--timeout", "10").returncode == 0


def test_a_title_split_across_reads_is_seen(sandbox: Sandbox) -> None:
    sid = sandbox.spawn(
        "sh", "-c", r"printf '\033]0;split'; sleep 0.3; printf ' title\007'; sleep 300"
    )
    deadline = time.monotonic() + 10
    while sandbox.json("info", sid)["title"] != "split title":
        assert time.monotonic() < deadline, sandbox.json("info", sid)["title"]
        time.sleep(0.1)
