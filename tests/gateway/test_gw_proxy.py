"""The gateway against a fake OpenCode server: access, directories, streaming, errors."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from urllib.parse import quote

import h11
import pytest
import trio

from supervisor.opencode.gateway import Limits, Upstream
from supervisor.opencode.gateway_directory import encode_directory

from .conftest import Repos
from .helpers import (
    PASSWORD,
    SECRET,
    Client,
    Exchange,
    fake_upstream,
    fetch,
    running_gateway,
)

UPSTREAM_AUTH = "Basic " + base64.b64encode(f"opencode:{PASSWORD}".encode()).decode()


def described(reply_body: bytes) -> dict[str, object]:
    doc = json.loads(reply_body)
    doc["headers"] = dict(doc["headers"])
    return doc


async def test_forwards_with_the_upstream_credentials_and_the_session_directory(
    repos: Repos,
) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
    ):
        url = gw.url_for(SECRET)
        reply = await fetch(
            f"{url}/project/current?x=1", headers=[("authorization", "Basic Zm9vOmJhcg==")]
        )
        assert reply.status == 200
        doc = described(reply.body)
        assert doc["target"] == "/project/current?x=1"
        assert doc["headers"]["authorization"] == UPSTREAM_AUTH
        assert doc["headers"]["host"] == f"127.0.0.1:{fake.port}"
        assert doc["headers"]["x-opencode-directory"] == encode_directory(str(repos.a))
        assert PASSWORD not in url


@pytest.mark.parametrize(
    "target",
    ["/project/current", "/", "/s", "/s/", "/s/wrong-secret-wrong-secret/session", "/S/{SECRET}"],
)
async def test_a_request_without_the_secret_never_reaches_the_upstream(
    repos: Repos, target: str
) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
    ):
        reply = await fetch(f"http://127.0.0.1:{gw.port}{target.format(SECRET=SECRET)}")
        assert reply.status in (401, 403)
        assert reply.headers[b"content-type"] == b"application/json"
        assert PASSWORD.encode() not in reply.body
        assert fake.connections == 0 and fake.seen == []


async def test_an_upstream_without_password_gets_no_authorization(repos: Repos) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(Upstream(fake.url), {SECRET: str(repos.a)}.get) as gw,
    ):
        reply = await fetch(
            f"{gw.url_for(SECRET)}/path", headers=[("authorization", "Basic Zm9vOmJhcg==")]
        )
        assert "authorization" not in described(reply.body)["headers"]


async def test_directories_inside_the_project_pass_unchanged(repos: Repos) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
    ):
        url = gw.url_for(SECRET)
        sub = quote(str(repos.a_sub), safe="")
        reply = await fetch(f"{url}/file?path=x&directory={sub}")
        doc = described(reply.body)
        assert doc["target"] == f"/file?path=x&directory={sub}"
        assert "x-opencode-directory" not in doc["headers"]

        raw = str(repos.a_sub)
        reply = await fetch(
            f"{url}/session", "POST", b"{}", headers=[("x-opencode-directory", raw)]
        )
        assert described(reply.body)["headers"]["x-opencode-directory"] == raw


@pytest.mark.parametrize(
    ("query", "header"),
    [
        ("directory={outside}", None),
        ("location%5Bdirectory%5D={b}", None),
        ("", "{b}"),
        ("directory=relative%2Fdir", None),
        ("directory={sub}", "{outside}"),
        ("directory={outside}&directory={sub}", None),
    ],
)
async def test_directories_outside_the_project_are_replaced(
    repos: Repos, query: str, header: str | None
) -> None:
    names = {
        k: quote(str(getattr(repos, k2)), safe="")
        for k, k2 in (("outside", "outside"), ("b", "b"), ("sub", "a_sub"))
    }
    headers = [("x-opencode-directory", header.format(**names))] if header else []
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
    ):
        reply = await fetch(
            f"{gw.url_for(SECRET)}/path?a=1&{query.format(**names)}&auth_token=eHg6eXk=",
            headers=headers,
        )
        doc = described(reply.body)
        assert doc["target"] == "/path?a=1"
        assert doc["headers"]["x-opencode-directory"] == encode_directory(str(repos.a))


async def test_outside_git_only_the_session_directory_and_below_count(repos: Repos) -> None:
    home = repos.outside / "notes"
    (home / "deep").mkdir(parents=True)
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(home)}.get) as gw,
    ):
        url = gw.url_for(SECRET)
        below = quote(str(home / "deep"), safe="")
        assert described((await fetch(f"{url}/path?directory={below}")).body)["target"] == (
            f"/path?directory={below}"
        )
        beside = quote(str(repos.outside), safe="")
        doc = described((await fetch(f"{url}/path?directory={beside}")).body)
        assert doc["target"] == "/path"
        assert doc["headers"]["x-opencode-directory"] == encode_directory(str(home))


async def test_an_upstream_with_a_base_path(repos: Repos) -> None:
    async with fake_upstream() as fake:
        upstream = Upstream(fake.url + "/base/", password=PASSWORD)
        async with running_gateway(upstream, {SECRET: str(repos.a)}.get) as gw:
            reply = await fetch(f"{gw.url_for(SECRET)}/global/health")
            assert described(reply.body)["target"] == "/base/global/health"


async def test_server_sent_events_are_not_buffered(repos: Repos) -> None:
    release = trio.Event()

    async def events(exchange: Exchange) -> None:
        await exchange.read_body()
        headers = [("content-type", "text/event-stream"), ("transfer-encoding", "chunked")]
        await exchange.send(h11.Response(status_code=200, headers=headers))
        await exchange.send(h11.Data(data=b'data: {"type":"server.connected"}\n\n'))
        await release.wait()
        await exchange.send(h11.Data(data=b'data: {"type":"later"}\n\n'))
        await exchange.send(h11.EndOfMessage())

    async with (
        fake_upstream(events) as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
        Client.connect(gw.port) as client,
    ):
        await client.start("GET", f"/s/{SECRET}/event")
        await client.send(h11.EndOfMessage())
        head = await client.head()
        assert head.status_code == 200
        with trio.fail_after(5):
            first = await client.event()
        assert isinstance(first, h11.Data) and b"server.connected" in first.data
        release.set()
        rest = await client.rest(head)
        assert b"later" in rest.body


async def test_a_client_hanging_up_ends_its_upstream_connection(repos: Repos) -> None:
    async def forever(exchange: Exchange) -> None:
        await exchange.read_body()
        await exchange.send(
            h11.Response(status_code=200, headers=[("transfer-encoding", "chunked")])
        )
        await exchange.send(h11.Data(data=b"data: 1\n\n"))
        while await exchange.stream.receive_some(1024):
            pass

    async with (
        fake_upstream(forever) as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
    ):
        async with Client.connect(gw.port) as client:
            await client.start("GET", f"/s/{SECRET}/event")
            await client.send(h11.EndOfMessage())
            await client.head()
        with trio.fail_after(5):
            while fake.closed < 1:
                await trio.sleep(0.01)


async def test_websocket_upgrade_is_spliced(repos: Repos) -> None:
    async def upgrade(exchange: Exchange) -> None:
        await exchange.read_body()
        assert exchange.seen.header("upgrade") == "websocket"
        assert exchange.seen.header("connection") == "upgrade"
        await exchange.send(
            h11.InformationalResponse(
                status_code=101, headers=[("upgrade", "websocket"), ("connection", "Upgrade")]
            )
        )
        stream = exchange.stream
        await stream.send_all(b"hello from upstream;")
        early, _ = exchange.conn.trailing_data
        buffered = early
        while True:
            data = buffered or await stream.receive_some(65536)
            buffered = b""
            if not data:
                return
            await stream.send_all(data.upper())

    async with (
        fake_upstream(upgrade) as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
    ):
        async with Client.connect(gw.port) as client:
            headers = [("upgrade", "websocket"), ("connection", "Upgrade")]
            await client.start("GET", f"/s/{SECRET}/pty/pty_1/connect", headers)
            await client.send(h11.EndOfMessage())
            switched = await client.event()
            assert isinstance(switched, h11.InformationalResponse)
            assert switched.status_code == 101
            assert client.conn.our_state is h11.SWITCHED_PROTOCOL
            received, _ = client.conn.trailing_data
            await client.stream.send_all(b"ping")
            with trio.fail_after(5):
                while not received.endswith(b"PING"):
                    received += await client.stream.receive_some(65536)
            assert received == b"hello from upstream;PING"
        with trio.fail_after(5):
            while fake.closed < 1:
                await trio.sleep(0.01)


async def test_a_large_chunked_upload_streams(repos: Repos) -> None:
    first_arrived = trio.Event()
    chunk = b"x" * (1 << 20)

    async def digest(exchange: Exchange) -> None:
        hasher, total = hashlib.sha256(), 0
        while (data := await exchange.chunk()) is not None:
            hasher.update(data)
            total += len(data)
            first_arrived.set()
            exchange.seen.body = b""
        await exchange.reply(200, f"{total} {hasher.hexdigest()}".encode())

    async with (
        fake_upstream(digest) as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
        Client.connect(gw.port) as client,
    ):
        await client.start("POST", f"/s/{SECRET}/upload", [("transfer-encoding", "chunked")])
        await client.send(h11.Data(data=chunk))
        with trio.fail_after(5):
            await first_arrived.wait()
        expected = hashlib.sha256(chunk)
        for _ in range(31):
            await client.send(h11.Data(data=chunk))
            expected.update(chunk)
        await client.send(h11.EndOfMessage())
        reply = await client.rest(await client.head())
        assert reply.body.decode() == f"{32 << 20} {expected.hexdigest()}"


async def test_a_large_download_streams(repos: Repos) -> None:
    async def download(exchange: Exchange) -> None:
        await exchange.read_body()
        await exchange.send(
            h11.Response(status_code=200, headers=[("content-length", str(16 << 20))])
        )
        for _ in range(16):
            await exchange.send(h11.Data(data=b"y" * (1 << 20)))
        await exchange.send(h11.EndOfMessage())

    async with (
        fake_upstream(download) as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
    ):
        reply = await fetch(f"{gw.url_for(SECRET)}/big")
        assert reply.status == 200 and len(reply.body) == 16 << 20


async def test_expect_100_continue(repos: Repos) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
        Client.connect(gw.port) as client,
    ):
        headers = [("expect", "100-continue"), ("content-length", "5")]
        await client.start("POST", f"/s/{SECRET}/session", headers)
        with trio.fail_after(5):
            informational = await client.event()
        assert isinstance(informational, h11.InformationalResponse)
        assert informational.status_code == 100
        await client.send(h11.Data(data=b"hello"))
        await client.send(h11.EndOfMessage())
        doc = described((await client.rest(await client.head())).body)
        assert doc["length"] == 5 and "expect" not in doc["headers"]


async def test_keep_alive_carries_many_requests(repos: Repos) -> None:
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
        Client.connect(gw.port) as client,
    ):
        for i in range(5):
            body = b"{}" if i % 2 else None
            reply = await client.request("POST" if body else "GET", f"/s/{SECRET}/r{i}", body)
            assert reply.status == 200
            assert described(reply.body)["target"] == f"/r{i}"
        assert len(fake.seen) == 5


async def test_upstream_down_is_502_json(repos: Repos) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with running_gateway(
        Upstream(f"http://127.0.0.1:{port}", password=PASSWORD), {SECRET: str(repos.a)}.get
    ) as gw:
        reply = await fetch(f"{gw.url_for(SECRET)}/project/current")
        assert reply.status == 502
        message = reply.json()["data"]["message"]
        assert "unreachable" in message and PASSWORD not in message


async def test_upstream_hanging_up_is_502(repos: Repos) -> None:
    async def hang_up(exchange: Exchange) -> None:
        await exchange.read_body()
        await exchange.stream.aclose()

    async with (
        fake_upstream(hang_up) as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
    ):
        reply = await fetch(f"{gw.url_for(SECRET)}/project/current")
        assert reply.status == 502
        assert reply.json()["name"] == "GatewayError"


async def raw_exchange(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        received = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                received += chunk
        return received


async def test_garbage_is_400_and_disturbs_no_one(repos: Repos) -> None:
    release = trio.Event()

    async def slow(exchange: Exchange) -> None:
        await exchange.read_body()
        await release.wait()
        await exchange.reply(200, b"fine")

    async with (
        fake_upstream(slow) as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
        trio.open_nursery() as nursery,
    ):
        results: list[bytes] = []

        async def normal() -> None:
            results.append((await fetch(f"{gw.url_for(SECRET)}/slow")).body)

        nursery.start_soon(normal)
        for garbage in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n"):
            answer = await raw_exchange(gw.port, garbage)
            assert answer.startswith(b"HTTP/1.1 400 ")
        big = b"GET /s/" + SECRET.encode() + b"/x HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 200_000
        assert (await raw_exchange(gw.port, big + b"\r\n\r\n")).startswith(b"HTTP/1.1 431 ")
        release.set()
        with trio.fail_after(5):
            while not results:
                await trio.sleep(0.01)
        assert results == [b"fine"]


async def test_connections_are_bounded_and_idle_ones_closed(repos: Repos) -> None:
    limits = Limits(max_connections=1, idle_timeout=0.3)
    async with (
        fake_upstream() as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get, limits=limits) as gw,
        Client.connect(gw.port) as idle,
    ):
        assert (await idle.request("GET", f"/s/{SECRET}/first")).status == 200
        refused = await fetch(f"{gw.url_for(SECRET)}/second")
        assert refused.status == 503
        with trio.fail_after(3):
            assert await idle.stream.receive_some(100) == b""
        with trio.fail_after(3):
            while True:
                reply = await fetch(f"{gw.url_for(SECRET)}/again")
                if reply.status == 200:
                    break
                await trio.sleep(0.05)


async def test_head_and_no_content_responses_keep_the_connection(repos: Repos) -> None:
    async def bodiless(exchange: Exchange) -> None:
        await exchange.read_body()
        status = 200 if exchange.seen.method == "HEAD" else 204
        await exchange.send(h11.Response(status_code=status, headers=[("content-length", "10")]))
        await exchange.send(h11.EndOfMessage())

    async with (
        fake_upstream(bodiless) as fake,
        running_gateway(fake.upstream(), {SECRET: str(repos.a)}.get) as gw,
        Client.connect(gw.port) as client,
    ):
        with trio.fail_after(5):
            head = await client.request("HEAD", f"/s/{SECRET}/doc")
            assert (head.status, head.body, head.headers[b"content-length"]) == (200, b"", b"10")
            deleted = await client.request("DELETE", f"/s/{SECRET}/doc")
            assert (deleted.status, deleted.body) == (204, b"")
