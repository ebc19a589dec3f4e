"""Many clients on one session: one controller, observers, the present screen on attach,
screen snapshots, events, and a stuck observer that slows nobody."""

import json
import socket
import subprocess
import sys
import time

import pexpect
import pytest

from tests.conftest import PTYSUP, Sandbox, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]


def attach(sandbox: Sandbox, sid: str, *extra: str, size=(24, 80)) -> pexpect.spawn:
    return pexpect.spawn(
        PTYSUP,
        ["attach", sid, *extra],
        env=sandbox.env,
        encoding="utf-8",
        timeout=15,
        dimensions=size,
    )


def shell(sandbox: Sandbox) -> str:
    return sandbox.spawn("bash", "--norc", "--noprofile", "-i")


def test_two_clients_see_the_same_output_and_read_only_cannot_type(sandbox: Sandbox) -> None:
    sid = shell(sandbox)
    first = attach(sandbox, sid)
    watcher = attach(sandbox, sid, "--read-only")
    first.sendline("echo shared-$((20+3))")
    first.expect_exact("shared-23")
    watcher.expect_exact("shared-23")
    watcher.sendline("echo from-the-watcher-$((1+1))")
    time.sleep(0.5)
    first.sendline("echo after-$((2+2))")
    first.expect_exact("after-4")
    watcher.expect_exact("after-4")
    assert "from-the-watcher-2" not in sandbox.ok("screen", sid)
    info = sandbox.json("info", sid)
    assert info["attached"] == 2 and info["controlled"]
    watcher.sendcontrol("\\")
    watcher.expect_exact("[ptysup: detached from session 1]")
    watcher.expect(pexpect.EOF)
    first.sendcontrol("\\")
    first.expect(pexpect.EOF)
    assert sandbox.json("info", sid)["attached"] == 0


def test_a_new_attach_takes_control_and_the_size_follows_it(sandbox: Sandbox) -> None:
    sid = shell(sandbox)
    old = attach(sandbox, sid, size=(24, 80))
    old.sendline("echo ready-$((1+1))")
    old.expect_exact("ready-2")
    new = attach(sandbox, sid, size=(30, 100))
    old.expect_exact("another client took control; you are observing")
    info = sandbox.json("info", sid)
    assert (info["cols"], info["rows"]) == (100, 30)
    old.sendline("echo typed-by-old-$((3+3))")
    new.sendline("stty size")
    new.expect_exact("30 100")
    assert "typed-by-old-6" not in sandbox.ok("screen", sid)
    new.setwinsize(35, 110)  # the controller resizes: it counts
    old.setwinsize(20, 60)  # an observer resizes: it does not
    time.sleep(0.5)
    info = sandbox.json("info", sid)
    assert (info["cols"], info["rows"]) == (110, 35)
    new.sendcontrol("\\")
    new.expect(pexpect.EOF)
    old.expect_exact("you are in control again")
    assert wait_until(lambda: sandbox.json("info", sid)["cols"] == 60)
    old.sendline("echo old-again-$((4+4))")
    old.expect_exact("old-again-8")
    old.sendcontrol("\\")
    old.expect(pexpect.EOF)


def test_reattach_shows_the_present_screen(sandbox: Sandbox) -> None:
    sid = sandbox.spawn(
        "sh", "-c", r"printf '\033[2J\033[5;10HHELLO-SCREEN\033[8;3Hsecond'; sleep 300"
    )
    assert sandbox.run("expect", sid, "second", "--timeout", "10").returncode == 0
    client = attach(sandbox, sid)
    client.expect_exact("HELLO-SCREEN")
    client.expect_exact("second")
    client.sendcontrol("\\")
    client.expect(pexpect.EOF)


def test_screen_snapshot_rows_cursor_title_and_alternate_screen(sandbox: Sandbox) -> None:
    sid = sandbox.spawn(
        "sh",
        "-c",
        r"printf '\033]2;build: 3/7\007one\r\ntwo\r\n  three'; read x;"
        r" printf '\033[?1049h\033[H\033[2JFULLSCREEN'; sleep 300",
        size="40x10",
    )
    assert sandbox.run("expect", sid, "three", "--timeout", "10").returncode == 0
    screen = sandbox.json("screen", sid)
    assert screen["lines"][:3] == ["one", "two", "  three"]
    assert screen["cursor"] == {"x": 7, "y": 2, "hidden": False}
    assert screen["title"] == "build: 3/7"
    assert (screen["cols"], screen["rows"]) == (40, 10)
    assert screen["alternate"] is False and screen["exact"] is True
    sandbox.ok("write", sid, "x", "--enter")
    assert sandbox.run("expect", sid, "FULLSCREEN", "--timeout", "10").returncode == 0
    full = sandbox.json("screen", sid)
    assert full["alternate"] is True
    assert full["lines"][0] == "FULLSCREEN"
    assert sandbox.ok("screen", sid).splitlines()[0] == "FULLSCREEN"


def test_screen_after_more_output_than_the_ring_holds(short_tmp) -> None:
    from tests.conftest import make_sandbox

    box = make_sandbox(short_tmp, PTYSUP_RING_SIZE="65536")
    try:
        sid = box.spawn("sh", "-c", "seq 1 200000; printf 'the end'; sleep 300", size="80x24")
        assert box.run("expect", sid, "the end", "--timeout", "30").returncode == 0
        screen = box.json("screen", sid)
        assert screen["lines"][-2] == "200000"
        assert screen["lines"][-1] == "the end"
        assert screen["lines"][0] == "199978"
    finally:
        assert not box.cleanup()


def test_events_stream_creation_title_exit_and_removal(sandbox: Sandbox) -> None:
    sandbox.json("status")
    stream = subprocess.Popen(
        [PTYSUP, "events", "--json"], env=sandbox.env, stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(0.5)
        sid = sandbox.spawn("sh", "-c", r"printf '\033]0;job title\007'; sleep 0.3; exit 3")
        assert sandbox.run("wait", sid, "--timeout", "10").returncode == 3
        sandbox.ok("rm", sid)
        seen = []
        assert stream.stdout is not None
        while len(seen) < 4:
            seen.append(json.loads(stream.stdout.readline()))
    finally:
        stream.terminate()
        stream.wait(timeout=5)
    assert [e["event"] for e in seen] == ["created", "title", "exited", "removed"]
    assert seen[0]["session"]["id"] == sid
    assert seen[1] == {"event": "title", "session": sid, "title": "job title"}
    assert seen[2]["exit_code"] == 3 and seen[2]["signal"] is None
    assert seen[3] == {"event": "removed", "session": sid}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_stuck_observer_neither_stalls_the_writer_nor_grows_the_daemon(
    sandbox: Sandbox,
) -> None:
    daemon = sandbox.json("status")["pid"]
    before = rss_kib(daemon)
    script = "import sys, tty; tty.setraw(1); w = sys.stdout.buffer.write\n" + (
        "block = b'x' * 65536\nfor _ in range(960): w(block)\n"
    )
    sid = sandbox.spawn("sh", "-c", f'read go; exec {sys.executable} -c "{script}"')
    stuck = socket.socket(socket.AF_UNIX)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(sandbox.socket)
    hello = b'{"type":"hello","protocol":1}'
    sub = json.dumps({"id": 1, "op": "attach", "session": sid, "read_only": True}).encode()
    stuck.sendall(len(hello).to_bytes(4, "big") + hello + len(sub).to_bytes(4, "big") + sub)
    try:
        time.sleep(0.3)
        sandbox.ok("write", sid, "go", "--enter")
        peak = 0
        deadline = time.monotonic() + 120
        while sandbox.json("info", sid)["state"] == "running":
            peak = max(peak, rss_kib(daemon))
            assert time.monotonic() < deadline, "the writer stalled behind a stuck observer"
            time.sleep(0.05)
        assert sandbox.json("info", sid)["end"] >= 60 * 1024 * 1024
        assert peak - before < 64 * 1024, f"daemon grew by {peak - before} KiB"
        assert sandbox.json("status")["pid"] == daemon
    finally:
        stuck.close()
