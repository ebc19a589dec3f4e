"""Spawn, list, info, write, read, expect, wait, run and rm against a daemon started on demand."""

import base64
import os
import stat
import sys
import time

import pytest

from tests.conftest import Sandbox, alive

pytestmark = pytest.mark.slow

RAW_DUMP = (
    "import sys, tty; tty.setraw(1); sys.stdout.buffer.write(bytes(range(256))); sys.stdout.flush()"
)


def test_started_on_demand_with_private_socket(sandbox: Sandbox) -> None:
    assert not os.path.exists(sandbox.socket)
    status = sandbox.json("status")
    assert status["socket"] == sandbox.socket
    assert status["sessions"] == 0
    assert status["protocol"] == 1
    assert stat.S_IMODE(os.stat(sandbox.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(sandbox.socket)).st_mode) == 0o700
    again = sandbox.json("status")
    assert again["pid"] == status["pid"]


def test_spawn_list_info_as_json(sandbox: Sandbox) -> None:
    session = sandbox.json(
        "spawn", "--name", "web", "--size", "100x30", "--cwd", "/tmp", "--", "sleep", "30"
    )
    for key in (
        "id",
        "name",
        "argv",
        "cwd",
        "pid",
        "state",
        "exit_code",
        "signal",
        "cols",
        "rows",
        "created_at",
        "end",
        "context",
    ):
        assert key in session
    assert session["name"] == "web"
    assert session["argv"] == ["sleep", "30"]
    assert session["cwd"] == "/tmp"
    assert (session["cols"], session["rows"]) == (100, 30)
    assert session["state"] == "running"
    listed = sandbox.json("list")
    assert [s["id"] for s in listed] == [session["id"]]
    by_name = sandbox.json("info", "web")
    by_id = sandbox.json("info", session["id"])
    assert by_name["pid"] == by_id["pid"] == session["pid"]
    assert "web" in sandbox.ok("list")


def test_all_byte_values_come_back_exact(sandbox: Sandbox) -> None:
    sid = sandbox.spawn(sys.executable, "-c", RAW_DUMP)
    assert sandbox.run("wait", sid, "--timeout", "20").returncode == 0
    read = sandbox.json("read", sid)
    assert base64.b64decode(read["data_b64"]) == bytes(range(256))
    assert (read["start"], read["end"], read["truncated"]) == (0, 256, False)
    raw = sandbox.run("read", sid, check=True).stdout
    assert raw == bytes(range(256))


def test_write_expect_wait_exit_code(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "printf 'ready> '; read code; echo got $code; exit $code")
    assert sandbox.run("expect", sid, "ready> $", "--timeout", "10").returncode == 0
    sandbox.ok("write", sid, "7", "--enter")
    match = sandbox.json("expect", sid, r"got (\d+)", "--timeout", "10")
    assert match["matched"] and match["groups"] == ["7"]
    assert sandbox.run("wait", sid, "--timeout", "10").returncode == 7
    info = sandbox.json("info", sid)
    assert info["state"] == "exited" and info["exit_code"] == 7


def test_expect_times_out_with_status_1(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sleep", "30")
    started = time.monotonic()
    proc = sandbox.run("expect", sid, "never", "--timeout", "0.5")
    assert proc.returncode == 1
    assert time.monotonic() - started < 10
    assert b"no match" in proc.stderr


def test_write_stdin_is_byte_exact(sandbox: Sandbox, short_tmp) -> None:
    out = short_tmp / "received"
    script = (
        "import sys, tty; tty.setraw(0); print('READY', flush=True); data = b''\n"
        "while len(data) < 256: data += sys.stdin.buffer.read1(256)\n"
        f"open({str(out)!r}, 'wb').write(data)"
    )
    sid = sandbox.spawn(sys.executable, "-c", script)
    assert sandbox.run("expect", sid, "READY", "--timeout", "10").returncode == 0
    sandbox.ok("write", sid, "-", input=bytes(range(256)))
    assert sandbox.run("wait", sid, "--timeout", "10").returncode == 0
    assert out.read_bytes() == bytes(range(256))


def test_read_since_gives_only_new_bytes(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "echo first; read x; echo second; sleep 30")
    assert sandbox.run("expect", sid, "first", "--timeout", "10").returncode == 0
    first = sandbox.json("read", sid)
    assert b"first" in base64.b64decode(first["data_b64"])
    sandbox.ok("write", sid, "go", "--enter")
    assert (
        sandbox.run(
            "expect", sid, "second", "--since", str(first["end"]), "--timeout", "10"
        ).returncode
        == 0
    )
    later = sandbox.json("read", sid, "--since", str(first["end"]))
    data = base64.b64decode(later["data_b64"])
    assert later["start"] == first["end"]
    assert b"first" not in data and b"second" in data
    past = sandbox.run("read", sid, "--since", str(later["end"] + 1000))
    assert past.returncode == 1 and b"past the end" in past.stderr


def test_run_streams_and_propagates_exit_code(sandbox: Sandbox) -> None:
    proc = sandbox.run("run", "--", "sh", "-c", "echo one; echo two; exit 5")
    assert proc.returncode == 5
    assert proc.stdout.replace(b"\r\n", b"\n") == b"one\ntwo\n"
    assert sandbox.json("list") == []
    killed = sandbox.run("run", "--", "sh", "-c", "kill -TERM $$")
    assert killed.returncode == 128 + 15
    timed = sandbox.run("run", "--timeout", "0.5", "--", "sleep", "30")
    assert timed.returncode == 124


def test_run_in_cwd_with_env(sandbox: Sandbox, short_tmp) -> None:
    proc = sandbox.run(
        "run",
        "--cwd",
        str(short_tmp),
        "--env",
        "GREETING=hi there",
        "--",
        "sh",
        "-c",
        'pwd; echo "$GREETING"; echo "$PTYSUP_SESSION $PTYSUP_SOCKET"',
    )
    lines = proc.stdout.decode().split("\n")  # into a pipe: no CR
    assert lines[0] == str(short_tmp)
    assert lines[1] == "hi there"
    session_id, socket_path = lines[2].split()
    assert session_id.isdigit() and socket_path == sandbox.socket


def test_rm_forgets(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sleep", "30")
    pid = sandbox.json("info", sid)["pid"]
    sandbox.ok("rm", sid)
    gone = sandbox.run("info", sid)
    assert gone.returncode == 1
    assert f"no session '{sid}'".encode() in gone.stderr
    assert sandbox.json("list") == []
    assert not alive(pid)


def test_names_are_unique_and_resolve(sandbox: Sandbox) -> None:
    sandbox.spawn("sleep", "30", name="job")
    again = sandbox.run("spawn", "--name", "job", "--", "sleep", "30")
    assert again.returncode == 1 and b"already named 'job'" in again.stderr
    digits = sandbox.run("spawn", "--name", "123", "--", "true")
    assert digits.returncode == 1 and b"name" in digits.stderr
    sandbox.ok("resize", "job", "132", "43")
    info = sandbox.json("info", "job")
    assert (info["cols"], info["rows"]) == (132, 43)


def test_resize_reaches_the_child(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "read x; stty size; sleep 30", size="90x20")
    sandbox.ok("resize", sid, "120", "50")
    sandbox.ok("write", sid, "x", "--enter")
    assert sandbox.run("expect", sid, "50 120", "--timeout", "10").returncode == 0


def test_errors_are_clear_and_harm_nothing(sandbox: Sandbox) -> None:
    keep = sandbox.spawn("sleep", "60")
    missing = sandbox.run("spawn", "--", "no-such-program-xyz")
    assert missing.returncode == 1
    assert b"program not found: no-such-program-xyz" in missing.stderr
    for args in (
        ("info", "nope"),
        ("kill", "nope"),
        ("wait", "nope"),
        ("write", "nope", "x"),
        ("read", "nope"),
        ("rm", "nope"),
        ("resize", "nope", "10", "10"),
    ):
        proc = sandbox.run(*args)
        assert proc.returncode in (1, 125), args
        assert b"no session 'nope'" in proc.stderr, args
    bad_cwd = sandbox.run("spawn", "--cwd", "/no/such/dir", "--", "true")
    assert b"working directory does not exist: /no/such/dir" in bad_cwd.stderr
    not_exec = sandbox.run("spawn", "--", "/etc/hostname")
    assert b"/etc/hostname" in not_exec.stderr and b"executable" in not_exec.stderr
    bad_size = sandbox.run("spawn", "--size", "0x0", "--", "true")
    assert bad_size.returncode == 2 and b"COLSxROWS" in bad_size.stderr
    no_cmd = sandbox.run("spawn")
    assert no_cmd.returncode == 2
    assert sandbox.json("info", keep)["state"] == "running"


def test_global_flags_before_or_after_the_command(sandbox: Sandbox) -> None:
    env = dict(sandbox.env)
    socket_path = env.pop("PTYSUP_SOCKET")
    sid = sandbox.ok("--socket", socket_path, "spawn", "--", "sleep", "30", env=env).strip()
    listed = sandbox.ok("list", "--json", "--socket", socket_path, env=env)
    assert f'"id": "{sid}"' in listed
    off = sandbox.run("status", "--no-start", "--socket", socket_path + "x", env=env)
    assert off.returncode == 1 and b"no daemon is running" in off.stderr


def test_child_env_is_the_callers_not_the_daemons(sandbox: Sandbox) -> None:
    daemon_env = dict(sandbox.env, DAEMON_SECRET="s3cret")
    sandbox.ok("status", env=daemon_env)
    client_env = dict(sandbox.env, CLIENT_VAR="mine")
    out = sandbox.run("run", "--", "env", env=client_env).stdout.decode()
    assert "CLIENT_VAR=mine" in out
    assert "DAEMON_SECRET" not in out
    clean = sandbox.run("run", "--clean-env", "--env", "ONLY=1", "--", "env").stdout.decode()
    assert "ONLY=1" in clean and "CLIENT_VAR" not in clean and "XDG_DATA_HOME" not in clean


def test_many_sessions_at_once(sandbox: Sandbox) -> None:
    ids = [sandbox.spawn("sh", "-c", f"echo n{i}; sleep 30") for i in range(12)]
    for i, sid in enumerate(ids):
        assert sandbox.run("expect", sid, f"n{i}", "--timeout", "10").returncode == 0
    assert len(sandbox.json("list")) == 12


def test_session_limit_is_a_clear_limit_error(short_tmp) -> None:
    from tests.conftest import make_sandbox

    box = make_sandbox(short_tmp, PTYSUP_MAX_SESSIONS="2")
    try:
        box.spawn("sleep", "30")
        box.spawn("sleep", "30")
        third = box.run("spawn", "--", "sleep", "30")
        assert third.returncode == 1
        assert b"PTYSUP_MAX_SESSIONS=2" in third.stderr
        assert len(box.json("list")) == 2
    finally:
        assert not box.cleanup()


def test_a_write_to_a_full_terminal_waits_and_ends_with_the_session(sandbox: Sandbox) -> None:
    import subprocess

    from tests.conftest import PTYSUP

    sid = sandbox.spawn("sh", "-c", "stty raw -echo; echo raw; exec sleep 300")
    assert sandbox.run("expect", sid, "raw", "--timeout", "10").returncode == 0
    writer = subprocess.Popen(
        [PTYSUP, "write", sid, "-"],
        env=sandbox.env,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdin is not None
    writer.stdin.write(b"y" * 60_000)  # fits the pipe, not the terminal
    writer.stdin.close()
    time.sleep(1.0)
    assert writer.poll() is None, (
        "a raw terminal nobody reads cannot take 60 kB: the write must wait"
    )
    assert sandbox.json("status")["pid"]  # the daemon still answers others meanwhile
    sandbox.ok("rm", sid)
    assert writer.wait(timeout=10) == 1
    assert b"removed" in writer.stderr.read()


def test_run_loses_no_byte_to_a_slow_reader(sandbox: Sandbox) -> None:
    import subprocess

    from tests.conftest import PTYSUP

    size = 6_000_000  # several times the ring and the backlog
    proc = subprocess.Popen(
        [PTYSUP, "run", "--", "sh", "-c", f"head -c {size} /dev/zero | tr '\\0' y"],
        env=sandbox.env,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    received = 0
    while chunk := proc.stdout.read(65536):
        received += len(chunk)
        if received < size // 2:
            time.sleep(0.002)
    assert proc.wait(timeout=60) == 0
    assert received == size
