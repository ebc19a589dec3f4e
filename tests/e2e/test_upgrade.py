"""Upgrade in place: the same pid, every session, its scrollback and offsets survive."""

import json
import os
import re
import socket
import sys
import time
from pathlib import Path

import pexpect
import pytest

from supervisor.daemon.lifecycle import state
from tests.conftest import PTYSUP, Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

COUNTER = (
    "import time\ni = 0\nwhile True:\n    print(i, flush=True)\n    i += 1\n    time.sleep(0.002)\n"
)


def numbers(data: bytes) -> list[int]:
    return [int(n) for n in re.findall(rb"(?m)^(\d+)\r$", data)]


def test_upgrade_keeps_pid_sessions_offsets_and_every_byte(sandbox: Sandbox) -> None:
    counter = sandbox.spawn(sys.executable, "-c", COUNTER, name="counter")
    nine = sandbox.spawn("sh", "-c", "exit 9")
    assert sandbox.run("wait", nine, "--timeout", "10").returncode == 9
    time.sleep(0.5)
    before = {s["id"]: s for s in sandbox.json("list")}
    daemon = sandbox.json("status")["pid"]
    mark = sandbox.json("info", counter)["end"]

    hello = b'{"type":"hello","protocol":1}'
    watcher = socket.socket(socket.AF_UNIX)
    watcher.connect(sandbox.socket)
    watcher.sendall(len(hello).to_bytes(4, "big") + hello)

    started = time.monotonic()
    out = sandbox.ok("upgrade")
    took = time.monotonic() - started
    assert f"pid {daemon}" in out and "2 sessions kept" in out

    watcher.settimeout(5)
    told = b""
    while chunk := watcher.recv(65536):
        told += chunk
    assert b'"event":"restarting"' in told

    assert sandbox.json("status")["pid"] == daemon
    after = {s["id"]: s for s in sandbox.json("list")}
    assert after.keys() == before.keys()
    for sid, old in before.items():
        for key in ("pid", "name", "argv", "cwd", "created_at", "context"):
            assert after[sid][key] == old[key], (sid, key)
    assert after[nine]["state"] == "exited" and after[nine]["exit_code"] == 9
    assert after[counter]["state"] == "running"

    time.sleep(0.5)
    read = sandbox.json("read", counter, "--since", str(mark))
    assert read["start"] == mark and not read["truncated"]
    import base64

    data = base64.b64decode(read["data_b64"])
    seen = numbers(data)
    assert len(seen) > 100
    assert seen == list(range(seen[0], seen[0] + len(seen))), "the counter has a gap"
    whole = numbers(sandbox.run("read", counter).stdout)
    assert whole == list(range(whole[0], whole[0] + len(whole)))
    assert took < 10


def test_attach_rides_through_an_upgrade(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("bash", "--norc", "--noprofile", "-i")
    client = pexpect.spawn(PTYSUP, ["attach", sid], env=sandbox.env, encoding="utf-8", timeout=20)
    client.sendline("echo before-$((1+1))")
    client.expect_exact("before-2")
    sandbox.ok("upgrade")
    time.sleep(0.5)
    client.sendline("echo after-$((2+2))")
    client.expect_exact("after-4")
    assert "went away" not in client.before
    client.sendcontrol("\\")
    client.expect_exact("[ptysup: detached from session 1]")
    client.expect(pexpect.EOF)


def test_run_and_wait_ride_through_an_upgrade(sandbox: Sandbox) -> None:
    import subprocess

    runner = subprocess.Popen(
        [PTYSUP, "run", "--", "sh", "-c", "for i in 1 2 3 4 5 6; do echo n$i; sleep 0.3; done"],
        env=sandbox.env,
        stdout=subprocess.PIPE,
    )
    time.sleep(0.6)
    sid = sandbox.spawn("sh", "-c", "sleep 1.5; exit 4")
    waiter = subprocess.Popen([PTYSUP, "wait", sid], env=sandbox.env)
    time.sleep(0.2)
    sandbox.ok("upgrade")
    out, _ = runner.communicate(timeout=30)
    assert runner.returncode == 0
    assert out.replace(b"\r\n", b"\n") == b"".join(b"n%d\n" % i for i in range(1, 7))
    assert waiter.wait(timeout=30) == 4


def test_a_broken_new_release_is_refused_and_nothing_replaced(
    sandbox: Sandbox, short_tmp: Path
) -> None:
    # The daemon finds its code through PYTHONPATH first; a broken "new release" is then
    # installed there, as a bad package upgrade would leave it.
    shadow = short_tmp / "shadow"
    shadow.mkdir()
    daemon = sandbox.json("status", env=dict(sandbox.env, PYTHONPATH=str(shadow)))["pid"]
    sid = sandbox.spawn("sleep", "300")
    package = shadow / "supervisor"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('this release is broken')\n")
    refused = sandbox.run("upgrade")
    assert refused.returncode == 1
    assert b"upgrade refused, nothing was replaced" in refused.stderr
    assert b"this release is broken" in refused.stderr
    assert sandbox.json("status")["pid"] == daemon
    assert sandbox.json("info", sid)["state"] == "running"
    assert not os.path.exists(os.path.join(os.path.dirname(sandbox.socket), "upgrade.state"))
    (package / "__init__.py").unlink()
    package.rmdir()
    assert "1 session kept" in sandbox.ok("upgrade")


def test_state_of_another_format_is_refused(tmp_path: Path) -> None:
    good = state.dumps(state.DaemonState("/s", 3, 4, 5, "0.1.0"))
    assert state.loads(good).next_id == 3
    header = json.loads(good[len(state.MAGIC) + 4 :])
    header["format"] = 99
    encoded = json.dumps(header).encode()
    bad = state.MAGIC + len(encoded).to_bytes(4, "big") + encoded
    with pytest.raises(state.StateError, match="format 99 is not one this daemon reads"):
        state.loads(bad)
    path = tmp_path / "state"
    path.write_bytes(bad)
    import subprocess

    check = subprocess.run(
        [PTYSUP, "daemon", "--check-state", str(path)], capture_output=True, timeout=30
    )
    assert check.returncode == 1 and b"refusing to guess" in check.stderr
    with pytest.raises(state.StateError, match="not a pty-supervisor state file"):
        state.loads(b"hello")
