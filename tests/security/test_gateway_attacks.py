"""Issue 23, the gateway: each attack of the review, reproduced against a gateway in front of a
fake OpenCode server. The other local user is uid 65534, through `setpriv` (tests run as
root); those tests are skipped elsewhere."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import h11
import pytest
import trio

from supervisor.daemon.registry import Registry
from supervisor.daemon.spawn.context import Context
from supervisor.opencode import gateway_admission, gateway_peer
from supervisor.opencode.gateway import Gateway, Limits
from supervisor.protocol.requests import SpawnArgs
from supervisor.settings import Settings
from tests.gateway.helpers import SECRET, Client, Exchange, fake_upstream, fetch, running_gateway

OTHER_UID = 65534
SETPRIV = shutil.which("setpriv")

other_user = pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None or not gateway_peer.SUPPORTED,
    reason="needs root and setpriv to act as a second user, and Linux to tell users apart",
)

# Run as the other user: send argv[2] on each of argv[3] connections to port argv[1], wait
# argv[4] seconds holding them, then print what each received before the gateway closed it.
ATTACKER = """
import json, socket, sys, time
port, payload = int(sys.argv[1]), sys.argv[2].encode()
count, hold = int(sys.argv[3]), float(sys.argv[4])
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
for conn in conns:
    conn.sendall(payload)
print("open", flush=True)
time.sleep(hold)
received = []
for conn in conns:
    conn.settimeout(5)
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except OSError as exc:
        data += f"<{type(exc).__name__}>".encode()
    received.append(data.decode("latin-1"))
print(json.dumps(received))
"""


@asynccontextmanager
async def attacker(
    port: int, payload: bytes, count: int, hold: float
) -> AsyncIterator[trio.Process]:
    """The other user's connections, open (and their requests sent) on entry."""
    assert SETPRIV is not None
    argv = [SETPRIV, f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups"]
    argv += [sys.executable, "-I", "-c", ATTACKER, str(port), payload.decode(), str(count)]
    argv += [str(hold)]
    process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, cwd="/")
    assert process.stdout is not None
    try:
        with trio.fail_after(20):
            assert await process.stdout.receive_some(5) == b"open\n"
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await process.stdout.aclose()


async def received(process: trio.Process) -> list[str]:
    """What each of the attacker's connections got, once it is done."""
    assert process.stdout is not None
    out = b""
    with trio.fail_after(30):
        while chunk := await process.stdout.receive_some(65536):
            out += chunk
        await process.wait()
    return json.loads(out)


def request(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    return head.encode() + f"content-length: {len(body)}\r\n\r\n".encode() + body


async def raw(port: int, data: bytes) -> bytes:
    """Send bytes on a fresh connection; everything the gateway answers until it closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        answer = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                answer += chunk
        return answer


async def closed_within(stream: trio.SocketStream, seconds: float) -> bool:
    with trio.move_on_after(seconds):
        while await stream.receive_some(65536):
            pass
        return True
    return False


# -- 1. another user, holding the secret (it is on command lines, `ps` shows it) -------------


@other_user
async def test_another_user_with_the_secret_is_refused(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get) as gw,
    ):
        body = json.dumps({"command": "/bin/sh", "args": ["-c", "id > /tmp/pwned"]}).encode()
        attack = request(gw.port, "POST", f"/s/{SECRET}/pty", body)
        async with attacker(gw.port, attack, 1, 0) as process:
            [answer] = await received(process)
        assert answer.startswith("HTTP/1.1 403 "), answer
        assert f"serves only the processes of uid {os.geteuid()}" in answer
        assert fake.connections == 0 and fake.seen == []
        assert (await fetch(f"{gw.url_for(SECRET)}/pty", "POST", body)).status == 200
    logged = capfd.readouterr().err
    assert "gateway refused a connection from another user" in logged
    assert f'"uid": {OTHER_UID}' in logged


def without_sock_diag(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Make the gateway read /proc/net/tcp; the owners it finds there, in turn."""

    def unavailable(*args: object) -> int:
        raise OSError(errno.EPROTONOSUPPORT, "no sock_diag")

    found: list[int | None] = []
    read_proc = gateway_peer._proc_uid

    def proc_uid(*args: Any) -> int | None:
        found.append(read_proc(*args))
        return found[-1]

    monkeypatch.setattr(gateway_peer, "_netlink_uid", unavailable)
    monkeypatch.setattr(gateway_peer, "_proc_uid", proc_uid)
    monkeypatch.setattr(gateway_peer._state, "netlink_works", False)
    return found


HIT_AND_RUN = """
import socket, sys
for _ in range(20):
    conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    conn.sendall(sys.argv[2].encode())
    conn.close()
"""


@other_user
@pytest.mark.parametrize("source", ["sock_diag", "proc"])
async def test_another_user_that_hangs_up_at_once_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """A socket closed by its owner turns into a time-wait one, whose owner Linux reports as
    uid 0: requests left behind must not pass for root's."""
    look_up = gateway_admission.peer_uid

    async def late(sock: trio.socket.SocketType) -> int | None:
        await trio.sleep(0.2)
        return await look_up(sock)

    monkeypatch.setattr(gateway_admission, "peer_uid", late)
    found = without_sock_diag(monkeypatch) if source == "proc" else []
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get) as gw,
    ):
        attack = request(gw.port, "GET", f"/s/{SECRET}/project/current")
        assert SETPRIV is not None
        argv = [SETPRIV, f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups"]
        argv += [sys.executable, "-I", "-c", HIT_AND_RUN, str(gw.port), attack.decode()]
        await trio.run_process(argv, cwd="/")
        await trio.sleep(0.5)
        assert fake.seen == []
    assert OTHER_UID not in found and os.geteuid() not in found


@other_user
async def test_the_owner_is_read_from_proc_without_sock_diag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = without_sock_diag(monkeypatch)
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get) as gw,
    ):
        attack = request(gw.port, "GET", f"/s/{SECRET}/project/current")
        async with attacker(gw.port, attack, 1, 0) as process:
            [answer] = await received(process)
        assert answer.startswith("HTTP/1.1 403 "), answer
        assert (await fetch(f"{gw.url_for(SECRET)}/project/current")).status == 200
        assert len(fake.seen) == 1
    assert found == [OTHER_UID, os.geteuid()]


# -- 1. a secret ends with its session ------------------------------------------------------


async def test_a_secret_ends_when_its_session_exits(tmp_path: Path) -> None:
    streaming = trio.Event()

    async def stream_forever(exchange: Exchange) -> None:
        await exchange.read_body()
        if exchange.seen.target != "/event":
            await exchange.reply(200, b"ok")
            return
        headers = [("content-type", "text/event-stream")]
        await exchange.send(h11.Response(status_code=200, headers=headers))
        await exchange.send(h11.Data(data=b"data: connected\n\n"))
        streaming.set()
        await trio.sleep_forever()

    async with fake_upstream(stream_forever) as fake, trio.open_nursery() as nursery:
        registry = Registry(Settings(shim=False), str(tmp_path / "sock"), nursery)
        registry.gateway = Gateway(fake.upstream(), registry.gateway_secrets.get)
        await nursery.start(registry.gateway.serve)
        args = SpawnArgs.validate({"argv": ["sleep", "30"], "cwd": str(tmp_path)}, [])
        assert args is not None
        context = Context(directory=str(tmp_path), project_id="global", source="cwd")
        session = registry.spawn(args, context)
        assert session.gateway_secret is not None
        url = registry.gateway.url_for(session.gateway_secret)
        assert (await fetch(f"{url}/project/current")).status == 200

        async with Client.connect(registry.gateway.port) as events:
            await events.start("GET", url.partition(str(registry.gateway.port))[2] + "/event")
            await events.send(h11.EndOfMessage())
            assert (await events.head()).status_code == 200
            await streaming.wait()
            os.kill(session.pid, signal.SIGTERM)
            with trio.fail_after(10):
                await session.finished.wait()
            assert await closed_within(events.stream, 5)

        reply = await fetch(f"{url}/project/current")
        assert reply.status == 403
        assert session.gateway_secret not in registry.gateway_secrets
        await registry.remove(session)
        nursery.cancel_scope.cancel()


# -- 3. exhaustion ----------------------------------------------------------------------------


@other_user
async def test_another_users_idle_connections_crowd_no_one_out(tmp_path: Path) -> None:
    limits = Limits(linger_timeout=10)
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get, limits=limits) as gw,
        attacker(gw.port, b"", 300, 3) as process,
    ):
        for _ in range(5):
            assert (await fetch(f"{gw.url_for(SECRET)}/session")).status == 200
        answers = await received(process)
    assert len(answers) == 300
    answered = [a for a in answers if a.startswith("HTTP/1.1 403 ")]
    assert len(answered) == limits.max_refusing_per_peer
    assert all(a in ("", *answered) for a in answers), {a[:40] for a in answers}


@other_user
async def test_another_user_gets_only_its_share_of_answers(tmp_path: Path) -> None:
    limits = Limits(max_refusing_per_peer=2, linger_timeout=5)
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get, limits=limits) as gw,
        attacker(gw.port, b"", 10, 0) as process,
    ):
        answers = await received(process)
    assert sum(a.startswith("HTTP/1.1 403 ") for a in answers) == 2
    assert answers.count("") == 8


async def test_a_connection_has_seconds_to_present_its_secret(tmp_path: Path) -> None:
    limits = Limits(head_timeout=0.5)
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get, limits=limits) as gw,
    ):
        silent = await trio.open_tcp_stream("127.0.0.1", gw.port)
        slow = await trio.open_tcp_stream("127.0.0.1", gw.port)
        async with silent, slow, Client.connect(gw.port) as child:
            await slow.send_all(f"GET /s/{SECRET}/session HTTP/1.1\r\n".encode())
            assert (await child.request("GET", f"/s/{SECRET}/a")).status == 200
            start = trio.current_time()
            assert await closed_within(silent, 3)
            assert await closed_within(slow, 3)
            assert trio.current_time() - start < 1.5
            assert (await child.request("GET", f"/s/{SECRET}/b")).status == 200
        assert [seen.target for seen in fake.seen] == ["/a", "/b"]


async def test_unauthenticated_connections_do_not_keep_clients_out(tmp_path: Path) -> None:
    """Where the gateway cannot tell users apart (macOS), anyone may hold connections open."""
    limits = Limits(max_pending=8, head_timeout=30)
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get, limits=limits) as gw,
        Client.connect(gw.port) as child,
    ):
        assert (await child.request("GET", f"/s/{SECRET}/before")).status == 200
        idle = [await trio.open_tcp_stream("127.0.0.1", gw.port) for _ in range(50)]
        await trio.sleep(0.2)
        assert (await fetch(f"{gw.url_for(SECRET)}/newcomer")).status == 200
        assert (await child.request("GET", f"/s/{SECRET}/after")).status == 200
        evicted = 0
        for stream in idle:
            evicted += await closed_within(stream, 0.05)
            await stream.aclose()
        assert evicted >= 50 - limits.max_pending


# -- also: framing, dot segments, Host ------------------------------------------------------


async def test_content_length_with_transfer_encoding_is_refused(tmp_path: Path) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get) as gw,
    ):
        smuggled = b"0\r\n\r\nGET /s/" + SECRET.encode() + b"/smuggled HTTP/1.1\r\n\r\n"
        head = (
            f"POST /s/{SECRET}/session HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\n"
            f"Content-Length: {len(smuggled)}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        answer = await raw(gw.port, head.encode() + smuggled)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert b"both Content-Length and Transfer-Encoding" in answer
        assert fake.seen == []


async def test_a_response_with_both_lengths_loses_content_length(tmp_path: Path) -> None:
    """h11 drops it when it frames the relayed response chunked."""

    async def both(exchange: Exchange) -> None:
        await exchange.read_body()
        headers = [("transfer-encoding", "chunked"), ("content-length", "999")]
        await exchange.send(h11.Response(status_code=200, headers=headers))
        await exchange.send(h11.Data(data=b"hello"))
        await exchange.send(h11.EndOfMessage())

    async with (
        fake_upstream(both) as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get) as gw,
    ):
        reply = await fetch(f"{gw.url_for(SECRET)}/x")
        assert reply.body == b"hello"
        assert b"content-length" not in reply.headers


@pytest.mark.parametrize(
    "rest",
    [
        "/../x",
        "/..",
        "/./x",
        "/a/../../x",
        "/%2e%2e/x",
        "/%2E./x",
        "/.%2e",
        "/a/..%2f..%2fx",
        "/a/..%5cx",
        "/a\\..\\x",
        "//../x",
    ],
)
async def test_dot_segments_after_the_secret_are_refused(tmp_path: Path, rest: str) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get) as gw,
    ):
        answer = await raw(gw.port, request(gw.port, "GET", f"/s/{SECRET}{rest}"))
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert b"'..' segment" in answer
        assert fake.seen == []
        assert (await fetch(f"{gw.url_for(SECRET)}/a..b/.x/x.")).status == 200


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("attacker.example:{port}", 421),
        ("127.0.0.1", 421),
        ("127.0.0.1:1{port}", 421),
        ("127.0.0.2:{port}", 421),
        ("localhost.attacker.example:{port}", 421),
        (None, 400),
    ],
)
async def test_foreign_hosts_are_refused(tmp_path: Path, host: str | None, status: int) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get) as gw,
    ):
        header = "" if host is None else f"Host: {host.format(port=gw.port)}\r\n"
        version = "1.0" if host is None else "1.1"
        head = f"GET /s/{SECRET}/project/current HTTP/{version}\r\n{header}\r\n"
        answer = await raw(gw.port, head.encode())
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer
        assert b"Host" in answer
        assert fake.seen == []


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
async def test_the_gateways_own_names_are_served(tmp_path: Path, host: str) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(tmp_path)}.get) as gw,
    ):
        head = f"GET /s/{SECRET}/x HTTP/1.1\r\nHost: {host.format(port=gw.port)}\r\n"
        answer = await raw(gw.port, head.encode() + b"Connection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 "), answer
