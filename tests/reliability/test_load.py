"""Load: hundreds of spawn/wait/kill/rm cycles from several clients at once, hundreds of
idle connections, hundreds of readers. Each test prints its figures (`pytest -rP` shows
them); docs/reliability.md quotes the last run."""

import contextlib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import trio

from stress.daemon import rss_kib
from stress.wire import HELLO, Closed, Connection, control
from supervisor.client import connect
from tests.conftest import Sandbox, wait_until
from tests.reliability.helpers import children, fd_count, frame

pytestmark = pytest.mark.slow

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
CYCLES: list[tuple[list[str], float]] = [
    (["sh", "-c", "exit 0"], 10.0),
    (["sleep", "30"], 0.1),
    (["sh", "-c", "trap '' HUP; sleep 30 & sleep 30"], 0.1),
    (["sh", "-c", "echo out; exit 3"], 10.0),
]
"""What a cycle runs, and how long it waits before the kill: exits by itself; dies of the
hangup; ignores the hangup and leaves a grandchild (SIGTERM after the grace period)."""
EXPECTED = [(0, None), (None, 1), (None, 15), (3, None)]


def settle(sandbox: Sandbox, daemon: int) -> int:
    """The daemon's fd count once only the asking connection is left."""
    assert wait_until(lambda: sandbox.json("status")["connections"] == 1, 10)
    time.sleep(0.3)
    return fd_count(daemon)


def test_220_spawn_wait_kill_rm_cycles_from_5_clients_leave_no_fd_and_no_zombie(
    sandbox: Sandbox,
) -> None:
    daemon = sandbox.json("status")["pid"]
    baseline = settle(sandbox, daemon)
    rss_before = rss_kib(daemon)
    clients, per_client = 5, 44

    def work(n: int) -> list[tuple[int | None, int | None]]:
        seen = []
        with connect(sandbox.socket, autostart=False) as client:
            for i in range(per_client):
                argv, patience = CYCLES[(n + i) % len(CYCLES)]
                sid = client.spawn(argv, cwd="/", env=ENV, name=f"c{n}-{i}")["id"]
                client.wait(sid, timeout=patience)
                session = client.kill(sid)
                client.remove(sid)
                seen.append((session["exit_code"], session["signal"]))
        return seen

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        outcomes = list(pool.map(work, range(clients)))
    elapsed = time.monotonic() - started
    for n, seen in enumerate(outcomes):
        assert seen == [EXPECTED[(n + i) % len(EXPECTED)] for i in range(per_client)]
    assert sandbox.json("list") == []
    end = settle(sandbox, daemon)
    assert abs(end - baseline) <= 3, (baseline, end)
    assert wait_until(lambda: children(daemon) == {}, 5), children(daemon)
    assert sandbox.leftovers() == [daemon]
    print(
        f"figures: {clients * per_client} cycles from {clients} clients in {elapsed:.1f} s; "
        f"fds {baseline} before, {end} after; RSS {rss_before} -> {rss_kib(daemon)} KiB; "
        "children left 0"
    )


def test_400_idle_connections_do_not_delay_a_status_call(sandbox: Sandbox) -> None:
    sandbox.env["PTYSUP_HELLO_TIMEOUT"] = "60"  # the silent ones stay for the whole test
    sid = sandbox.spawn("sh", "-c", "while :; do echo tick; sleep 0.1; done")
    daemon = sandbox.json("status")["pid"]
    baseline = settle(sandbox, daemon)
    idle: list[socket.socket] = []
    try:
        for i in range(400):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(sandbox.socket)
            # silent, greeted, greeted with half a request, greeted and subscribed
            if i % 4 >= 1:
                sock.sendall(HELLO)
            if i % 4 == 2:
                sock.sendall(frame({"id": 1, "op": "status"})[:9])
            if i % 4 == 3:
                sock.sendall(frame({"id": 1, "op": "subscribe", "session": sid}))
            idle.append(sock)
        assert wait_until(lambda: sandbox.json("status")["connections"] == 401, 10)
        started = time.monotonic()
        status = sandbox.json("status")
        cli = time.monotonic() - started
        assert status["pid"] == daemon and status["connections"] == 401
        raw = []
        for _ in range(20):
            with socket.socket(socket.AF_UNIX) as probe:
                begin = time.monotonic()
                probe.connect(sandbox.socket)
                probe.settimeout(5)
                probe.sendall(HELLO + frame({"id": 1, "op": "status"}))
                data = b""
                while b'"type":"result"' not in data:
                    data += probe.recv(65536)
                raw.append(time.monotonic() - begin)
        assert cli < 5 and max(raw) < 5
        assert sandbox.run("expect", sid, "tick", "--timeout", "5").returncode == 0
    finally:
        for sock in idle:
            sock.close()
    end = settle(sandbox, daemon)
    assert abs(end - baseline) <= 3, (baseline, end)
    print(
        f"figures: 400 idle connections; `ptysup status` {cli * 1000:.0f} ms; raw status "
        f"round trip median {sorted(raw)[10] * 1000:.1f} ms, max {max(raw) * 1000:.1f} ms; "
        f"fds {baseline} before, {end} after"
    )


async def follow(conn: Connection, sid: str, since: int | None, live: bool) -> dict[str, Any]:
    """Subscribe and collect every byte until the subscription ends."""
    message: dict[str, Any] = {"id": 1, "op": "subscribe", "session": sid, "follow": live}
    if since is not None:
        message["since"] = since
    await conn.send(control(message))
    data = bytearray()
    sub, offset, problems = None, 0, []
    while True:
        item = await conn.next()
        reply = item.message
        if reply is None:
            if item.offset != offset:
                problems.append(f"gap at {offset}: frame at {item.offset}")
            data += item.data
            offset = item.offset + len(item.data)
        elif reply.get("id") == 1:
            assert reply["type"] == "result", reply
            sub, offset = reply["result"]["sub"], reply["result"]["start"]
        elif reply.get("event") == "skipped":
            problems.append(f"skipped {reply}")
        elif reply.get("event") == "end" and reply.get("sub") == sub:
            return {"data": bytes(data), "reason": reply["reason"], "problems": problems}


async def test_200_clients_reading_at_once_all_get_every_byte(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "stty -echo; read go; seq 1 30000")
    lines = 30000
    conns = []
    for _ in range(200):
        conn = await Connection.open(sandbox.socket)
        await conn.send(HELLO)
        await conn.hello()
        conns.append(conn)
    live: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        async with trio.open_nursery() as nursery:

            async def one(conn: Connection) -> None:
                live.append(await follow(conn, sid, 0, True))

            for conn in conns:
                nursery.start_soon(one, conn)
            await trio.to_thread.run_sync(
                lambda: wait_until(lambda: sandbox.json("info", sid)["subscribers"] == 200, 10)
            )
            await trio.to_thread.run_sync(sandbox.ok, "write", sid, "go", "--enter")
        live_elapsed = time.monotonic() - started
        expected = "".join(f"{i}\r\n" for i in range(1, lines + 1)).encode()
        assert len(live) == 200
        for got in live:
            assert got["problems"] == [] and got["reason"] == "exited"
            assert got["data"] == expected
        started = time.monotonic()
        replays: list[dict[str, Any]] = []
        async with trio.open_nursery() as nursery:

            async def again(conn: Connection) -> None:
                replays.append(await follow(conn, sid, 0, False))

            for conn in conns:
                nursery.start_soon(again, conn)
        replay_elapsed = time.monotonic() - started
        assert all(r["data"] == expected and r["reason"] == "complete" for r in replays)
    except Closed:
        pytest.fail("the daemon closed a reader's connection")
    finally:
        for conn in conns:
            conn.close()
    print(
        f"figures: 200 live readers each got all {len(expected)} bytes in "
        f"{live_elapsed:.2f} s; 200 replays from offset 0 in {replay_elapsed:.2f} s; "
        "no gap, no skip"
    )


def test_a_flood_of_bad_frames_from_one_client_does_not_stall_the_others(
    sandbox: Sandbox,
) -> None:
    sandbox.json("status")
    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(sandbox.socket)
            sock.settimeout(10)
            sock.sendall(HELLO)
            n = 0
            while not done.is_set():
                n += 1
                begin = time.monotonic()
                sock.sendall(frame({"id": n, "op": "status"}))
                data = b""
                while f'"id":{n},'.encode() not in data:
                    data += sock.recv(65536)
                latencies.append(time.monotonic() - begin)
                time.sleep(0.005)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        time.sleep(0.3)
        with socket.socket(socket.AF_UNIX) as flood:
            flood.connect(sandbox.socket)
            flood.settimeout(1.5)
            # The flood reads none of its error replies: the daemon stops reading it once
            # they pile up, so the send may never finish. That is the daemon's right.
            with contextlib.suppress(TimeoutError):
                flood.sendall(HELLO + b"\x00\x00\x00\x01{" * 65536)
            time.sleep(1.5)
    finally:
        done.set()
        prober.join()
    print(
        "figures: status round trips while one client floods 65536 bad frames: "
        f"max {max(latencies) * 1000:.0f} ms"
    )
    assert max(latencies) < 0.05
