"""The byte path a daemon runs: the compiled plane where it is built, the Python one on
request, and the same bytes either way."""

import contextlib
import hashlib
import json
import os

import pexpect
import pytest

from tests.conftest import make_sandbox, wait_until
from tests.e2e.test_attach import outer_shell

pytestmark = pytest.mark.byte_path

try:
    from supervisor.native import _plane
except ImportError:
    _plane = None


def status(box) -> dict:
    return json.loads(box.ok("status", "--json"))


@pytest.mark.parametrize("native", ["0", "1"])
def test_status_says_which_byte_path_runs_and_output_is_the_same(short_tmp, native):
    if native == "1" and _plane is None:
        pytest.skip("the compiled byte plane is not built here (no C compiler or headers)")
    box = make_sandbox(short_tmp, PTYSUP_NATIVE=native)
    try:
        path = status(box)["byte_path"]
        assert path["byte_path"] == ("native" if native == "1" else "python")
        text = box.ok("status")
        assert ("byte path:   native (compiled), 1 thread\n" in text + "\n") == (native == "1")
        assert ("byte path:   python (PTYSUP_NATIVE=0)" in text) == (native == "0")
        out = box.run("run", "--", "sh", "-c", "seq 1 200000; printf 'end\\n'", check=True)
        want = "".join(f"{i}\n" for i in range(1, 200001)) + "end\n"
        assert hashlib.sha256(out.stdout).hexdigest() == hashlib.sha256(want.encode()).hexdigest()
        sid = box.spawn("sh", "-c", "printf 'a\\nb\\n'; sleep 30")
        box.run("expect", sid, "b", "--timeout", "10", check=True)
        assert box.run("read", sid, check=True).stdout == b"a\r\nb\r\n"
    finally:
        assert not box.cleanup()


def test_a_bad_byte_path_setting_stops_the_daemon_with_its_name(short_tmp):
    box = make_sandbox(short_tmp, PTYSUP_NATIVE="yes")
    try:
        done = box.run("list")
        assert done.returncode != 0
        assert b"PTYSUP_NATIVE must be 0 or 1, not 'yes'" in done.stderr
    finally:
        assert not box.cleanup()


def plane_threads(pid: int) -> int:
    count = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/comm") as f:
            count += f.read().strip() == "ptysup-plane"
    return count


@pytest.mark.slow
def test_each_attached_session_has_a_lane_of_its_own_while_attached(sandbox) -> None:
    if _plane is None:
        pytest.skip("the compiled byte plane is not built here (no C compiler or headers)")
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("counts the daemon's threads through /proc, which this system does not have")
    status = sandbox.json("status")
    if status["byte_path"]["byte_path"] != "native":
        pytest.skip(f"this run keeps the pure-Python byte path ({status['byte_path']['why']})")
    pid = status["pid"]
    busy, quiet = outer_shell(sandbox), outer_shell(sandbox)
    busy.sendline("ptysup new --name busy -- sh -c 'yes flood | head -c 200000000; sleep 60'")
    busy.expect_exact("flood")
    quiet.sendline("ptysup new --name quiet -- bash --norc --noprofile")
    quiet.expect(r"bash-[\d.]+[#$] ")
    path = sandbox.json("status")["byte_path"]
    assert (path["lanes"], path["sessions"], path["outputs"], path["inputs"]) == (3, 2, 2, 2)
    assert wait_until(lambda: plane_threads(pid) == 3, timeout=10)
    for n in range(5):  # keys and echoes go through while the other floods
        quiet.sendline(f"echo typed-$((6*{n}+1))")
        quiet.expect_exact(f"typed-{6 * n + 1}", timeout=10)
    quiet.sendcontrol("\\")
    quiet.expect_exact("[ptysup: detached from session 2]")
    assert wait_until(lambda: sandbox.json("status")["byte_path"]["lanes"] == 2, timeout=10)
    busy.sendcontrol("\\")
    busy.expect_exact("[ptysup: detached from session 1]")
    assert wait_until(lambda: sandbox.json("status")["byte_path"]["lanes"] == 1, timeout=10)
    assert wait_until(lambda: plane_threads(pid) == 1, timeout=10)
    assert sandbox.json("info", "quiet")["state"] == "running"
    for shell in (busy, quiet):
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
