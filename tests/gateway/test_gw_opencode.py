"""The gateway in front of the real OpenCode 1.18.33, protected by a password."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import h11
import pexpect
import pyte
import pytest
import trio

from supervisor.opencode.gateway import Upstream
from supervisor.opencode.gateway_directory import encode_directory
from supervisor.opencode.project import project_for
from supervisor.opencode.sessions import list_sessions
from tests.opencode.helpers import (
    OPENCODE,
    OpenCodeProcess,
    _live_members,
    commit,
    git,
    opencode_server,
    private_env,
)

from .helpers import PASSWORD, SECRET, Client, fetch, running_gateway

pytestmark = [pytest.mark.slow, pytest.mark.opencode]


@dataclass(frozen=True)
class Server:
    url: str
    env: dict[str, str]
    """The environment of a child: no password in it."""
    a: Path
    other: Path

    def upstream(self) -> Upstream:
        return Upstream(self.url, password=PASSWORD)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `opencode serve` for this module, in its own home, started outside repository A."""
    if not (OPENCODE.is_file() and os.access(OPENCODE, os.X_OK)):
        pytest.fail(f"OpenCode is not installed at {OPENCODE}: run `scripts/setup --tests`")
    root = tmp_path_factory.mktemp("gw-oc").resolve()
    env = private_env(root / "oc")
    a, other, serve_dir = root / "A", root / "other", root / "serve"
    for path in (a / "sub", other, serve_dir):
        path.mkdir(parents=True)
    git(a, "init", "-q", env=env)
    commit(a, "a", env=env)
    server_env = {**env, "OPENCODE_SERVER_PASSWORD": PASSWORD}
    with opencode_server(str(OPENCODE), env=server_env, cwd=serve_dir) as url:
        yield Server(url, env, a, other)


async def test_opencode_really_wants_the_password(server: Server) -> None:
    assert (await fetch(f"{server.url}/project/current")).status == 401


async def test_project_current_without_a_directory_is_the_session_project(
    server: Server,
) -> None:
    async with running_gateway(server.upstream(), {SECRET: str(server.a)}.get) as gw:
        url = gw.url_for(SECRET)
        assert PASSWORD not in url
        reply = await fetch(f"{url}/project/current")
        assert reply.status == 200
        project = reply.json()
        assert project["id"] == project_for(str(server.a)).id
        assert project["worktree"] == str(server.a)

        for target in ("/project/current", f"/s/{'x' * 32}/project/current"):
            refused = await fetch(f"http://127.0.0.1:{gw.port}{target}")
            assert refused.status in (401, 403)


async def test_post_session_creates_the_session_in_the_project(server: Server) -> None:
    async with running_gateway(server.upstream(), {SECRET: str(server.a)}.get) as gw:
        reply = await fetch(
            f"{gw.url_for(SECRET)}/session",
            "POST",
            b"{}",
            headers=[("content-type", "application/json")],
        )
        assert reply.status == 200
        created = reply.json()
        assert created["directory"] == str(server.a)
        assert created["projectID"] == project_for(str(server.a)).id


async def test_the_event_stream_starts_at_once(server: Server) -> None:
    async with (
        running_gateway(server.upstream(), {SECRET: str(server.a)}.get) as gw,
        Client.connect(gw.port) as client,
    ):
        await client.start("GET", f"/s/{SECRET}/event", [("accept", "text/event-stream")])
        await client.send(h11.EndOfMessage())
        with trio.fail_after(10):
            head = await client.head()
            assert head.status_code == 200
            assert dict(head.headers)[b"content-type"].startswith(b"text/event-stream")
            data = b""
            while b"\n\n" not in data:
                event = await client.event()
                assert isinstance(event, h11.Data)
                data += event.data
        first = json.loads(data.split(b"\n\n")[0].removeprefix(b"data: "))
        assert first["type"] == "server.connected"


async def test_a_directory_inside_passes_and_one_outside_is_replaced(server: Server) -> None:
    async with running_gateway(server.upstream(), {SECRET: str(server.a)}.get) as gw:
        url = gw.url_for(SECRET)
        sub = quote(str(server.a / "sub"), safe="")
        inside = (await fetch(f"{url}/path?directory={sub}")).json()
        assert inside["directory"] == str(server.a / "sub")

        other = quote(str(server.other), safe="")
        outside = (await fetch(f"{url}/path?directory={other}")).json()
        assert outside["directory"] == str(server.a)

        header = [("x-opencode-directory", encode_directory(str(server.other)))]
        assert (await fetch(f"{url}/path", headers=header)).json()["directory"] == str(server.a)


WS_CLIENT = """
const ws = new WebSocket(process.argv[process.argv.length - 1]);
let got = "";
setTimeout(() => { console.log("timeout " + JSON.stringify(got)); process.exit(2); }, 10000);
ws.onopen = () => ws.send("ping-through-gateway\\n");
ws.onmessage = (e) => {
  got += typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data);
  if (got.includes("ping-through-gateway")) { console.log("echoed"); ws.close(); }
};
ws.onclose = () => process.exit(got.includes("ping-through-gateway") ? 0 : 3);
"""


async def test_a_pty_websocket_round_trips(server: Server, tmp_path: Path) -> None:
    script = tmp_path / "ws.js"
    script.write_text(WS_CLIENT)
    async with running_gateway(server.upstream(), {SECRET: str(server.a)}.get) as gw:
        url = gw.url_for(SECRET)
        body = json.dumps({"command": "/bin/cat"}).encode()
        pty = (
            await fetch(f"{url}/pty", "POST", body, headers=[("content-type", "application/json")])
        ).json()
        assert pty["cwd"] == str(server.a)
        try:
            ws_url = url.replace("http://", "ws://") + f"/pty/{pty['id']}/connect"
            done = await trio.run_process(
                [str(OPENCODE), str(script), ws_url],
                env={**server.env, "BUN_BE_BUN": "1"},
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            assert done.returncode == 0, (done.stdout, done.stderr)
        finally:
            await fetch(f"{url}/pty/{pty['id']}", "DELETE")


async def test_run_attach_from_outside_files_its_session_under_the_project(
    server: Server,
) -> None:
    async with running_gateway(server.upstream(), {SECRET: str(server.a)}.get) as gw:
        url = gw.url_for(SECRET)
        log = server.other / "run.log"
        proc = OpenCodeProcess(
            [
                str(OPENCODE),
                "run",
                "-m",
                "nope/nope",
                "--attach",
                url,
                "--title",
                "gw-outside",
                "hi",
            ],
            cwd=server.other,
            env=server.env,
            log=log,
        )
        try:
            with trio.fail_after(60):
                await trio.to_thread.run_sync(proc.proc.wait)
        finally:
            proc.stop()
        listed = (await fetch(f"{url}/session")).json()
        project_id = project_for(str(server.a)).id
        ours = [s for s in listed if s["title"] == "gw-outside"]
        assert ours, (listed, proc.output())
        assert all(s["directory"] == str(server.a) for s in ours)
        assert all(s["projectID"] == project_id for s in ours)
        stored = await trio.to_thread.run_sync(lambda: list_sessions(project_id, env=server.env))
        assert {s["id"] for s in ours} <= {r.session_id for r in stored}


def _tui_screen(argv: list[str], env: dict[str, str], cwd: Path, want: str) -> str:
    """Run the TUI in a terminal until ``want`` shows on its screen; the screen text."""
    screen = pyte.Screen(160, 40)
    stream = pyte.ByteStream(screen)
    child = pexpect.spawn(argv[0], argv[1:], env=env, cwd=str(cwd), dimensions=(40, 160))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with suppress(pexpect.TIMEOUT):
                stream.feed(child.read_nonblocking(65536, timeout=0.5))
            text = "\n".join(screen.display)
            if want in text:
                return text
        return "\n".join(screen.display)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.close(force=True)
        deadline = time.monotonic() + 5
        while _live_members(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _live_members(child.pid)


async def test_the_tui_attaches_through_the_gateway(server: Server) -> None:
    lookups: list[str] = []

    def lookup(secret: str) -> str | None:
        lookups.append(secret)
        return str(server.a) if secret == SECRET else None

    async with running_gateway(server.upstream(), lookup) as gw:
        argv = [str(OPENCODE), "attach", gw.url_for(SECRET)]
        env = {**server.env, "TERM": "xterm-256color"}
        screen = await trio.to_thread.run_sync(_tui_screen, argv, env, server.other, str(server.a))
    assert str(server.a) in screen, screen
    assert len(lookups) > 5


async def test_directory_encoding_matches_javascript(tmp_path: Path) -> None:
    names = ["/tmp/a b", "/tmp/ü/日本", "/x/%41+&=?#!'()*~", "/tab\there"]
    done = await trio.run_process(
        [
            str(OPENCODE),
            "-e",
            "console.log(JSON.stringify(JSON.parse(process.argv.at(-1)).map(encodeURIComponent)))",
            json.dumps(names),
        ],
        env={**private_env(tmp_path), "BUN_BE_BUN": "1"},
        capture_stdout=True,
        check=True,
    )
    assert json.loads(done.stdout) == [encode_directory(n) for n in names]
