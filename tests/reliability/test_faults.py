"""Faults: clients killed mid-frame and mid-attach, a process tree that ignores SIGHUP and
SIGTERM, the daemon killed outright, a second daemon on a live socket.

tests/e2e covers the plain cases (test_kill.py, test_lifecycle.py); these add what happens
around them: other clients, concurrency, and what the CLI does afterwards."""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pexpect
import pytest

from tests.conftest import PTYSUP, Sandbox, alive, session_pids, wait_until
from tests.reliability.helpers import children

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

ECHO = "stty -echo; echo ready; while read line; do echo got:$line; done"

# A client that subscribes with input, writes one line, then starts a frame it never
# finishes, says so, and waits to be killed.
HALF_FRAME = r"""
import json, socket, sys
def frame(m):
    data = json.dumps(m).encode()
    return len(data).to_bytes(4, "big") + data
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(frame({"type": "hello", "protocol": 1})
          + frame({"id": 1, "op": "subscribe", "session": sys.argv[2], "input": True}))
buf = b""
while b'"sub"' not in buf:
    buf += s.recv(65536)
sub = json.loads(buf[buf.index(b'{"type":"result"'):].split(b"}}")[0] + b"}}")["result"]["sub"]
def input_frame(data):
    return (5 + len(data)).to_bytes(4, "big") + b"\x01" + sub.to_bytes(4, "big") + data
s.sendall(input_frame(b"first\r"))
how = sys.argv[3]
if how == "input":
    s.sendall(input_frame(b"PARTIAL-INPUT\r" + b"x" * 200)[:30])
elif how == "request":
    whole = frame({"id": 2, "op": "write", "session": sys.argv[2], "data": "PARTIAL\r" * 100000})
    s.sendall(whole[: len(whole) // 2])
else:
    s.sendall(b"\x00\x00")
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("how", ["input", "request", "length"])
def test_a_client_killed_mid_frame_leaves_daemon_and_session_as_they_were(
    sandbox: Sandbox, how: str
) -> None:
    sid = sandbox.spawn("sh", "-c", ECHO)
    assert sandbox.run("expect", sid, "ready", "--timeout", "10").returncode == 0
    daemon = sandbox.json("status")["pid"]
    client = subprocess.Popen(
        [sys.executable, "-c", HALF_FRAME, sandbox.socket, sid, how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert client.stdout is not None and client.stdout.readline() == b"ready\n"
        assert sandbox.run("expect", sid, "got:first", "--timeout", "10").returncode == 0
        client.kill()
        client.wait(10)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert wait_until(lambda: sandbox.json("status")["connections"] == 1, 5)
    info = sandbox.json("info", sid)
    assert info["state"] == "running" and info["subscribers"] == 0
    sandbox.ok("write", sid, "after", "--enter")
    assert sandbox.run("expect", sid, "got:after", "--timeout", "10").returncode == 0
    assert b"PARTIAL" not in sandbox.run("read", sid).stdout
    assert sandbox.json("status")["pid"] == daemon


COUNTER_AND_ECHO = (
    "import sys, threading, time\n"
    "def count():\n"
    "    i = 0\n"
    "    while True:\n"
    "        i += 1\n"
    "        print(f'tick {i}', flush=True)\n"
    "        time.sleep(0.01)\n"
    "threading.Thread(target=count, daemon=True).start()\n"
    "for line in sys.stdin:\n"
    "    print('got:' + line.strip(), flush=True)\n"
)


def attach(sandbox: Sandbox, sid: str) -> pexpect.spawn:
    return pexpect.spawn(PTYSUP, ["attach", sid], env=sandbox.env, timeout=15, dimensions=(24, 80))


@pytest.mark.parametrize("stuck_first", [False, True], ids=["killed", "stuck-then-killed"])
def test_a_client_killed_mid_attach_leaves_the_session_to_the_next_one(
    sandbox: Sandbox, stuck_first: bool
) -> None:
    sid = sandbox.spawn(sys.executable, "-c", COUNTER_AND_ECHO)
    daemon = sandbox.json("status")["pid"]
    first = attach(sandbox, sid)
    first.sendline("one")
    first.expect_exact("got:one")
    assert sandbox.json("info", sid)["controlled"]
    if stuck_first:
        # a client that stops reading while the output keeps coming: nobody else waits
        os.kill(first.pid, signal.SIGSTOP)
        end = sandbox.json("info", sid)["end"]
        time.sleep(1.5)
        assert sandbox.json("info", sid)["end"] > end + 300
    os.kill(first.pid, signal.SIGKILL)
    first.close(force=True)
    assert wait_until(lambda: sandbox.json("info", sid)["attached"] == 0, 5)
    info = sandbox.json("info", sid)
    assert info["state"] == "running" and not info["controlled"]
    second = attach(sandbox, sid)
    second.sendline("two")
    second.expect_exact("got:two")
    second.sendcontrol("\\")
    second.expect(pexpect.EOF)
    assert sandbox.json("info", sid)["attached"] == 0
    assert sandbox.json("status")["pid"] == daemon


# Ignores SIGHUP and SIGTERM, and leaves a tree that does too: one in a process group of
# its own, one stopped, one detached from the terminal, and a chain three deep. With
# `orphan`, the leader exits and leaves the rest to the daemon (a subreaper).
TREE = r"""
import os, signal, sys, time
for s in (signal.SIGHUP, signal.SIGTERM):
    signal.signal(s, signal.SIG_IGN)
def fork(job):
    pid = os.fork()
    if pid == 0:
        try:
            job()
        finally:
            os._exit(0)
    return pid
def forever():
    while True:
        time.sleep(1)
def own_group():
    os.setpgid(0, 0)
    forever()
def stopped():
    os.kill(os.getpid(), signal.SIGSTOP)
    forever()
def detached():
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    forever()
def chain():
    fork(lambda: fork(forever) and forever())
    forever()
for job in (own_group, stopped, detached, chain):
    fork(job)
time.sleep(0.3)
print("tree up", flush=True)
if sys.argv[1] == "orphan":
    sys.exit(3)
forever()
"""


@pytest.mark.parametrize("shape", ["leader", "orphan"])
def test_kill_ends_a_tree_that_ignores_hangup_and_terminate(sandbox: Sandbox, shape: str) -> None:
    sid = sandbox.spawn(sys.executable, "-c", TREE, shape)
    assert sandbox.run("expect", sid, "tree up", "--timeout", "10").returncode == 0
    leader = sandbox.json("info", sid)["pid"]
    daemon = sandbox.json("status")["pid"]
    if shape == "orphan":
        assert sandbox.run("wait", sid, "--timeout", "10").returncode == 3
    members = session_pids(leader)
    assert len(members) >= 6 - (shape == "orphan"), members
    started = time.monotonic()
    sandbox.ok("kill", sid)
    elapsed = time.monotonic() - started
    assert session_pids(leader) == []
    assert all(not alive(p) for p in members)
    assert elapsed < 5  # HUP, TERM after 0.5 s, KILL after another 0.5 s
    assert wait_until(lambda: "Z" not in children(daemon).values(), 5), children(daemon)
    assert sandbox.json("info", sid)["state"] == "exited"
    sandbox.ok("rm", sid)


def test_after_sigkill_of_the_daemon_concurrent_clis_start_one_fresh_daemon(
    sandbox: Sandbox,
) -> None:
    old_sid = sandbox.spawn("sh", "-c", "trap '' HUP; sleep 300")
    old_child = sandbox.json("info", old_sid)["pid"]
    first = sandbox.json("status")["pid"]
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: not alive(first), 5)
    assert os.path.exists(sandbox.socket)
    with ThreadPoolExecutor(5) as pool:
        runs = list(
            pool.map(
                lambda n: sandbox.run("spawn", "--name", f"n{n}", "--", "sleep", "300"), range(5)
            )
        )
    assert [r.returncode for r in runs] == [0] * 5, [r.stderr for r in runs]
    status = sandbox.json("status")
    assert status["pid"] != first and status["sessions"] == 5
    assert sandbox.daemon_pid() == status["pid"]
    assert sorted(s["name"] for s in sandbox.json("list")) == [f"n{n}" for n in range(5)]
    # the killed daemon's children (they ignored the hangup) are orphans now: ours to end
    for pid in session_pids(old_child):
        os.kill(pid, signal.SIGKILL)


def test_wait_does_not_report_another_sessions_status_after_a_crash(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sleep", "300")
    daemon = sandbox.json("status")["pid"]
    waiter = subprocess.Popen(
        [PTYSUP, "wait", sid], env=sandbox.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert wait_until(lambda: sandbox.json("status")["connections"] >= 2, 10)
        # held still until the fresh daemon has a session of its own (never with the same id)
        os.kill(waiter.pid, signal.SIGSTOP)
        os.kill(daemon, signal.SIGKILL)
        assert wait_until(lambda: not alive(daemon), 5)
        assert int(sandbox.spawn("sh", "-c", "exit 7")) > int(sid)
        os.kill(waiter.pid, signal.SIGCONT)
        waiter.wait(60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 125, (waiter.returncode, waiter.stderr.read())


def test_run_does_not_kill_an_unrelated_session_after_a_crash(sandbox: Sandbox) -> None:
    daemon = sandbox.json("status")["pid"]
    runner = subprocess.Popen(
        [PTYSUP, "run", "--timeout", "3", "--", "sleep", "300"],
        env=sandbox.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: sandbox.json("status")["sessions"] == 1, 10)
        os.kill(runner.pid, signal.SIGSTOP)
        os.kill(daemon, signal.SIGKILL)
        assert wait_until(lambda: not alive(daemon), 5)
        sandbox.spawn("sleep", "300", name="bystander")
        os.kill(runner.pid, signal.SIGCONT)
        runner.wait(30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    names = [s["name"] for s in sandbox.json("list") if s["state"] == "running"]
    assert names == ["bystander"]


STREAM = (
    "import time\n"
    "for i in range(1, 100000):\n"
    "    print(f'line {i}', flush=True)\n"
    "    time.sleep(0.002)\n"
)


def test_second_daemons_racing_on_a_live_socket_are_refused_and_disturb_nothing(
    sandbox: Sandbox,
) -> None:
    sid = sandbox.spawn(sys.executable, "-c", STREAM)
    first = sandbox.json("status")["pid"]
    inode = os.stat(sandbox.socket).st_ino
    reader = subprocess.Popen(
        [PTYSUP, "read", sid, "--since", "0", "--follow"], env=sandbox.env, stdout=subprocess.PIPE
    )
    try:
        seconds = [
            subprocess.Popen(
                [PTYSUP, "daemon"], env=sandbox.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(8)
        ]
        for proc in seconds:
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 1
            assert f"another daemon (pid {first}) is already serving".encode() in err, err
        # the lock file gone (someone cleaned /run by hand): still refused, socket untouched
        os.unlink(sandbox.socket + ".lock")
        late = subprocess.run(
            [PTYSUP, "daemon"], env=sandbox.env, capture_output=True, timeout=30, check=False
        )
        assert late.returncode == 1
        assert b"something that holds no lock is already serving" in late.stderr
        assert os.stat(sandbox.socket).st_ino == inode
        time.sleep(0.5)
    finally:
        reader.kill()
        out, _ = reader.communicate()
    numbers = [int(line.split()[1]) for line in out.decode().splitlines()[:-1]]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 100
    assert sandbox.json("status")["pid"] == first
    assert sandbox.json("info", sid)["state"] == "running"
