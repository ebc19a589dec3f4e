"""Issue 23, item 7: one local client cannot lock the others out.

Reproduced there: 1,030 connections that never said hello filled the limit, so that even
`ptysup stop` was refused; 200 unfinished 8 MiB frames took the daemon from 27 to 1,648 MiB.
The defences: a hello deadline, a share of the limit per client process with the last slots
kept for a process that holds none, and one budget for unfinished frames."""

import contextlib
import json
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from stress.daemon import rss_kib
from supervisor.daemon.clients.connection import UNCOUNTED_PARTIAL, FrameBudget
from supervisor.daemon.clients.server import refusal, reserved
from supervisor.settings import MiB, Settings
from tests.conftest import Sandbox, wait_until
from tests.reliability.helpers import HELLO, frame, read_frames

slow = pytest.mark.slow


# -- the rules ------------------------------------------------------------------------


def test_a_process_gets_its_share_and_the_last_slots_are_kept_for_a_new_one() -> None:
    settings = Settings(max_connections=64, max_connections_per_peer=40)
    assert reserved(64) == 8 and reserved(1024) == 8 and reserved(8) == 2 and reserved(3) == 0
    assert refusal(0, 0, settings) is None
    assert refusal(39, 39, settings) is None
    assert "its share (PTYSUP_MAX_CONNECTIONS_PER_PEER=40)" in (refusal(40, 40, settings) or "")
    assert refusal(55, 15, settings) is None
    assert "kept for processes that hold none" in (refusal(56, 15, settings) or "")
    assert refusal(56, 0, settings) is None and refusal(63, 0, settings) is None
    assert "its limit (PTYSUP_MAX_CONNECTIONS=64)" in (refusal(64, 0, settings) or "")


def test_the_budget_counts_what_is_over_the_free_part_of_each_connection() -> None:
    budget = FrameBudget(4 * UNCOUNTED_PARTIAL)
    assert budget.update(0, UNCOUNTED_PARTIAL) and budget.held == 0
    assert budget.update(0, 3 * UNCOUNTED_PARTIAL) and budget.held == 2 * UNCOUNTED_PARTIAL
    assert budget.update(0, 3 * UNCOUNTED_PARTIAL) and budget.held == 4 * UNCOUNTED_PARTIAL
    # a third that grows past its free part does not fit; it is dropped from the count
    assert budget.update(0, UNCOUNTED_PARTIAL)
    assert not budget.update(UNCOUNTED_PARTIAL, UNCOUNTED_PARTIAL + 1)
    assert budget.held == 4 * UNCOUNTED_PARTIAL
    # one that finishes its frame gives its part back; shrinking always fits
    assert budget.update(3 * UNCOUNTED_PARTIAL, 0) and budget.held == 2 * UNCOUNTED_PARTIAL
    assert budget.update(0, 3 * UNCOUNTED_PARTIAL + 100) is False
    assert budget.update(0, 3 * UNCOUNTED_PARTIAL) and budget.held == 4 * UNCOUNTED_PARTIAL


# -- against a daemon -------------------------------------------------------------------


def first_frame(sock: socket.socket, timeout: float = 10.0) -> dict:
    sock.settimeout(timeout)
    data = b""
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return json.loads(data[4 : 4 + int.from_bytes(data[:4], "big")])


def frames_until_close(sock: socket.socket, timeout: float = 10.0) -> list[dict]:
    return [f for f in read_frames(sock, timeout) if isinstance(f, dict)]


@pytest.fixture
def many_fds() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"needs {want} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connections(sandbox: Sandbox) -> int:
    return int(sandbox.json("status")["connections"])


def open_many(path: str, count: int, greet: bool) -> list[socket.socket]:
    held = []
    for _ in range(count):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        if greet:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(HELLO)  # a refused one is closed at once, its answer kept
        held.append(sock)
    return held


def closing(held: list[socket.socket]) -> None:
    for sock in held:
        sock.close()


@slow
def test_1030_silent_connections_from_one_process_leave_status_and_stop_working(
    sandbox: Sandbox, many_fds: None
) -> None:
    daemon = sandbox.json("status")["pid"]
    silent = open_many(sandbox.socket, 1030, greet=False)
    try:
        first = [first_frame(sock) for sock in silent]
        admitted = [sock for sock, got in zip(silent, first, strict=True) if got["type"] == "hello"]
        refused = [got for got in first if got["type"] == "error"]
        assert len(admitted) == 512 and len(refused) == 518
        assert {got["code"] for got in refused} == {"limit"}
        assert "its share (PTYSUP_MAX_CONNECTIONS_PER_PEER=512)" in refused[0]["message"]
        status = sandbox.json("status")
        assert status["pid"] == daemon and status["connections"] == 513
        # the hello deadline (5 s) closes every one of them, saying why
        started = time.monotonic()
        told = frames_until_close(admitted[0])
        assert 3.5 < time.monotonic() - started < 8
        assert told == [
            {
                "type": "error",
                "id": None,
                "code": "limit",
                "message": "no hello within 5 s (PTYSUP_HELLO_TIMEOUT); closing the connection",
            }
        ]
        assert wait_until(lambda: connections(sandbox) == 1, 10)
    finally:
        closing(silent)
    # and while a flood holds its share, `ptysup stop` gets through
    again = open_many(sandbox.socket, 1030, greet=False)
    try:
        stopped = sandbox.run("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped the daemon (pid {daemon})".encode() in stopped.stdout
    finally:
        closing(again)


HOLDER = r"""
import json, socket, sys
path, count = sys.argv[1], int(sys.argv[2])
hello = b'{"type":"hello","protocol":1}'
held, first = [], []
for _ in range(count):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    try:
        s.sendall(len(hello).to_bytes(4, "big") + hello)
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused at once: its answer is still there to read
    s.settimeout(10)
    data = s.recv(65536)
    first.append(json.loads(data[4 : 4 + int.from_bytes(data[:4], "big")]))
    held.append(s)
print(json.dumps(first), flush=True)
sys.stdin.read()
"""


def holder(path: str, count: int) -> tuple[subprocess.Popen[bytes], list[dict]]:
    """Another process that opens `count` greeted connections and holds them."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


@slow
def test_greeted_floods_from_two_processes_leave_the_last_slots_to_new_ones(
    sandbox: Sandbox,
) -> None:
    sandbox.env.update(PTYSUP_MAX_CONNECTIONS="64", PTYSUP_MAX_CONNECTIONS_PER_PEER="40")
    daemon = sandbox.json("status")["pid"]
    mine = open_many(sandbox.socket, 64, greet=True)
    others: list[subprocess.Popen[bytes]] = []
    try:
        first = [first_frame(sock) for sock in mine]
        assert sum(got["type"] == "hello" for got in first) == 40
        assert "its share (PTYSUP_MAX_CONNECTIONS_PER_PEER=40)" in first[-1]["message"]
        second, got = holder(sandbox.socket, 64)
        others.append(second)
        assert sum(g["type"] == "hello" for g in got) == 16  # up to 56: the limit less 8 kept
        assert "the last 8 of its limit (PTYSUP_MAX_CONNECTIONS=64) are kept" in got[-1]["message"]
        # a process that holds none gets one of the 8, but no second
        third, got = holder(sandbox.socket, 2)
        others.append(third)
        assert got[0]["type"] == "hello" and got[1]["code"] == "limit"
        assert "kept for processes that hold none" in got[1]["message"]
        status = sandbox.json("status")
        assert status["pid"] == daemon and status["connections"] == 58
        stopped = sandbox.run("stop")
        assert stopped.returncode == 0, stopped.stderr
    finally:
        closing(mine)
        for proc in others:
            proc.kill()
            proc.wait()


@slow
def test_a_connection_that_does_not_finish_its_hello_in_time_is_closed(sandbox: Sandbox) -> None:
    sandbox.env["PTYSUP_HELLO_TIMEOUT"] = "1"
    sandbox.json("status")
    cases = {
        "silent": b"",
        "half a hello": HELLO[:10],
        "a malformed hello": frame({"type": "hello", "protocol": "1"}),
        "a request first": frame({"id": 1, "op": "status"}),
    }
    socks = {}
    for name, sent in cases.items():
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(sandbox.socket)
        sock.sendall(sent)
        socks[name] = sock
    greeted = socket.socket(socket.AF_UNIX)
    greeted.connect(sandbox.socket)
    greeted.sendall(HELLO)
    started = time.monotonic()
    for name, sock in socks.items():
        got = frames_until_close(sock)
        assert got[0]["type"] == "hello", name
        assert got[-1]["message"] == (
            "no hello within 1 s (PTYSUP_HELLO_TIMEOUT); closing the connection"
        ), (name, got)
        sock.close()
    assert time.monotonic() - started < 4
    time.sleep(1.5)
    greeted.sendall(frame({"id": 7, "op": "status"}))
    assert first_frame(greeted)["type"] == "hello"
    reply = first_frame(greeted)
    assert reply["id"] == 7 and reply["type"] == "result"
    greeted.close()


@slow
def test_200_unfinished_8_mib_frames_stay_within_the_budget(sandbox: Sandbox) -> None:
    daemon = sandbox.json("status")["pid"]
    before = rss_kib(daemon)
    assert before is not None
    size = 8 * MiB
    head = size.to_bytes(4, "big")
    body = b"{" + b" " * (size - 2) + b"}"
    held, outcomes = [], {"kept": 0, "closed": 0}
    try:
        for _ in range(200):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(sandbox.socket)
            sock.settimeout(20)
            held.append(sock)
            try:
                sock.sendall(HELLO + head + body[:-1])
                outcomes["kept"] += 1
            except (BrokenPipeError, ConnectionResetError):
                outcomes["closed"] += 1
        peak = rss_kib(daemon)
        assert peak is not None
        growth = (peak - before) / 1024
        print(f"figures: {outcomes}; daemon RSS {before // 1024} -> {peak // 1024} MiB")
        # 64 MiB of budget, 64 KiB outside it per connection, and what Python keeps around
        assert growth < 64 + 200 * 64 / 1024 + 48, growth
        assert outcomes["kept"] <= 64 // 8 + 1 and outcomes["closed"] >= 190
        told = frames_until_close(held[-1])
        assert told[0]["type"] == "hello"
        assert told[-1]["code"] == "limit"
        assert "PTYSUP_PARTIAL_FRAME_BUDGET" in told[-1]["message"]
        assert sandbox.json("status")["pid"] == daemon
    finally:
        closing(held)
    # the budget comes back as they go: a whole 8 MiB frame is read (and answered) again
    assert wait_until(lambda: connections(sandbox) == 1, 10)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(sandbox.socket)
        sock.sendall(HELLO + head + body)
        assert first_frame(sock)["type"] == "hello"
        answer = first_frame(sock)
        assert answer["code"] == "bad_request" and "needs a string 'op'" in answer["message"]
