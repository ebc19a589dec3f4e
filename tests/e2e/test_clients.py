"""The Python clients against a real daemon: the trio one and the blocking one."""

import sys

import pytest
import trio

from supervisor.client import DaemonError, connect
from supervisor.client.aio import open_client
from supervisor.protocol.messages import Event, Output
from tests.conftest import Sandbox

pytestmark = pytest.mark.slow


@pytest.fixture
def env_socket(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    return sandbox


async def test_async_client_spawns_streams_and_waits(env_socket: Sandbox) -> None:
    async with open_client() as client:
        status = await client.status()
        assert status["socket"] == env_socket.socket
        session = await client.spawn(
            [sys.executable, "-c", "import sys; sys.stdout.write('x' * 300000 + 'END')"],
            cwd="/",
            subscribe=True,
        )
        received = bytearray()
        next_offset = 0
        _, receive = client._channel(session["sub"])
        async for item in _iterate(receive):
            if isinstance(item, Output):
                assert item.offset == next_offset
                received += item.data
                next_offset += len(item.data)
            elif isinstance(item, Event) and item.event == "end":
                assert item.fields["reason"] == "exited"
                assert item.fields["exit_code"] == 0
        assert bytes(received).endswith(b"END") and len(received) == 300003
        waited = await client.wait(session["id"])
        assert waited["session"]["exit_code"] == 0
        start, end, truncated, data = await client.read(session["id"], since=299990)
        assert (start, end, truncated, data) == (299990, 300003, False, received[299990:])


async def _iterate(receive: trio.MemoryReceiveChannel) -> object:
    async for item in receive:
        yield item


async def test_async_client_runs_many_requests_at_once(env_socket: Sandbox) -> None:
    async with open_client() as client:
        ids: list[str] = []

        async def spawn_one(i: int) -> None:
            ids.append((await client.spawn(["sleep", "30"], name=f"s{i}"))["id"])

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(spawn_one, i)
        assert len(set(ids)) == 20
        assert len(await client.list()) == 20
        async with trio.open_nursery() as nursery:
            for sid in ids:
                nursery.start_soon(client.remove, sid)
        assert await client.list() == []
        with pytest.raises(DaemonError) as info:
            await client.info("s1")
        assert info.value.code == "not_found"


def test_blocking_client(env_socket: Sandbox) -> None:
    with connect() as client:
        session = client.spawn(["cat"], cwd="/")
        client.write(session["id"], b"hello\r")
        sub = client.call("subscribe", session=session["id"], since=0, follow=True)["sub"]
        seen = b""
        for item in client.stream(sub, timeout=10):
            if isinstance(item, Output):
                seen += item.data
                if seen.count(b"hello") >= 2:  # the echo, then cat's copy
                    break
        assert seen.count(b"hello") >= 2
        client.kill(session["id"])
        assert client.info(session["id"])["state"] == "exited"
        with pytest.raises(DaemonError) as info:
            client.call("spawn", argv=[], cwd="/")
        assert info.value.code == "bad_request"
