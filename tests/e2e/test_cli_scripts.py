"""The CLI for scripts: `run` with stdin, line ends, `read --follow` across an upgrade,
race-free `write` + `expect`, ids that never repeat, and failures that say `ptysup: <why>`."""

import subprocess
import sys
import time

import pytest

from tests.conftest import PTYSUP, Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]


def test_run_copies_a_pipe_and_ends_it(sandbox: Sandbox) -> None:
    proc = sandbox.run("run", "--", "cat", input=b"piped\nsecond line\n", timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"piped\nsecond line\n"
    partial = sandbox.run("run", "--", "cat", input=b"no newline", timeout=20)
    assert partial.stdout == b"no newline"
    counted = sandbox.run("run", "--", "wc", "-l", input=b"a\nb\nc\n", timeout=20)
    assert counted.stdout.strip() == b"3"


def test_run_with_stdin_at_end_of_file_ends(sandbox: Sandbox) -> None:
    with open("/dev/null", "rb") as devnull:
        proc = subprocess.run(
            [PTYSUP, "run", "--", "cat"],
            stdin=devnull,
            capture_output=True,
            env=sandbox.env,
            timeout=20,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b""


def test_run_no_stdin_gives_the_child_none(sandbox: Sandbox) -> None:
    proc = sandbox.run(
        "run", "--no-stdin", "--timeout", "1", "--", "cat", input=b"ignored\n", timeout=20
    )
    assert proc.returncode == 124
    assert b"ignored" not in proc.stdout


def test_run_into_a_pipe_ends_lines_in_newline_unless_asked(sandbox: Sandbox) -> None:
    plain = sandbox.run("run", "--", "printf", "a\\nb\\n", timeout=20)
    assert plain.stdout == b"a\nb\n"
    exact = sandbox.run("run", "--terminal-bytes", "--", "printf", "a\\nb\\n", timeout=20)
    assert exact.stdout == b"a\r\nb\r\n"


def test_ids_never_repeat_across_daemon_restarts(sandbox: Sandbox) -> None:
    first = int(sandbox.spawn("true"))
    sandbox.ok("stop")
    second = int(sandbox.spawn("true"))
    assert second > first
    sandbox.ok("stop")
    assert int(sandbox.spawn("true")) > second


def test_write_json_then_expect_since_skips_what_came_before(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", name="sh")
    sandbox.ok("write", sid, "X=old; echo claimed=$X", "--enter")
    assert sandbox.run("expect", sid, "claimed=old", "--timeout", "5").returncode == 0
    written = sandbox.json("write", sid, "X=new; echo claimed=$X", "--enter")
    assert written["written"] == len("X=new; echo claimed=$X\r")
    found = sandbox.json(
        "expect", sid, r"claimed=(\w+)\r", "--since", str(written["offset"]), "--timeout", "5"
    )
    assert found["groups"] == ["new"]
    assert found["start"] >= written["offset"]


def test_write_expect_skips_the_echo_of_the_typed_line(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh")
    sandbox.ok("write", sid, "echo claimed=1", "--enter")
    found = sandbox.json(
        "write",
        sid,
        "echo claimed=$((40+2))",
        "--enter",
        "--expect",
        r"claimed=\S+",
        "--timeout",
        "5",
    )
    assert found["match"] == "claimed=42"
    missing = sandbox.run("write", sid, "true", "--enter", "--expect", "never", "--timeout", "0.5")
    assert missing.returncode == 1
    assert b"ptysup: no match; timed out" in missing.stderr


def test_expect_since_now_waits_for_new_output(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh")
    sandbox.ok("write", sid, "echo ready", "--enter")
    assert sandbox.run("expect", sid, "^ready", "--timeout", "5").returncode == 0
    assert (
        sandbox.run("expect", sid, "^ready", "--since", "now", "--timeout", "0.5").returncode == 1
    )


def test_read_follow_resumes_across_an_upgrade(sandbox: Sandbox) -> None:
    script = "import time\nfor i in range(400):\n    print(i, flush=True)\n    time.sleep(0.005)\n"
    sid = sandbox.spawn(sys.executable, "-c", script)
    reader = subprocess.Popen(
        [PTYSUP, "read", sid, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=sandbox.env,
    )
    try:
        time.sleep(0.4)
        upgraded = sandbox.run("upgrade", timeout=60)
        assert upgraded.returncode == 0, upgraded.stderr
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err
    assert [int(n) for n in out.split()] == list(range(400))
    assert b"closed the connection" not in err


def test_failures_say_ptysup_and_why(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("true")
    for args in (["info", "nosuch"], ["read", sid, "--since", "99999"], ["rm", "nosuch"]):
        proc = sandbox.run(*args)
        assert proc.returncode == 1
        assert proc.stderr.startswith(b"ptysup: "), proc.stderr
        assert b"subscribe:" not in proc.stderr
    assert sandbox.run("wait", "nosuch").returncode == 125
    bad_key = sandbox.run("attach", sid, "--detach-key", "bogus")
    assert bad_key.returncode == 2
    assert b"--detach-key" in bad_key.stderr


def test_a_failed_start_shows_only_this_attempts_log(sandbox: Sandbox) -> None:
    log = sandbox.socket + ".log"
    (sandbox.root / "run" / "pty-supervisor").mkdir(mode=0o700, exist_ok=True)
    with open(log, "w") as f:
        f.write("an old failure from yesterday\n")
    env = dict(sandbox.env, PTYSUP_RING_SIZE="not-a-number")
    proc = sandbox.run("list", env=env)
    assert proc.returncode == 1
    assert b"did not start" in proc.stderr
    assert b"an old failure" not in proc.stderr
    assert b"PTYSUP_RING_SIZE" in proc.stderr


def test_sessions_as_tmux_users_expect(sandbox: Sandbox) -> None:
    a = sandbox.spawn("sleep", "30", name="a")
    b = sandbox.spawn("true", name="b")
    c = sandbox.spawn("true")
    assert sandbox.run("wait", b, "--timeout", "10").returncode == 0
    assert sandbox.run("wait", c, "--timeout", "10").returncode == 0
    sandbox.ok("rename", "a", "alpha")
    assert sandbox.json("info", a)["name"] == "alpha"
    taken = sandbox.run("rename", "alpha", "b")
    assert taken.returncode == 1 and b"already named" in taken.stderr
    listing = sandbox.ok("ls")
    assert listing.splitlines()[0].split()[:7] == [
        "ID",
        "NAME",
        "STATE",
        "PID",
        "EXIT",
        "SIZE",
        "ATT",
    ]
    assert "alpha" in listing
    assert sandbox.ok("prune").strip() == "removed 2 exited sessions"
    assert [s["id"] for s in sandbox.json("list")] == [a]
    d = sandbox.spawn("sleep", "30")
    sandbox.ok("rm", a, d)
    assert sandbox.json("list") == []
    names = sandbox.ok("completion", "bash", "--sessions")
    assert names == ""
    e = sandbox.spawn("sleep", "30", name="web")
    assert sandbox.ok("completion", "bash", "--sessions").split() == [e, "web"]
    stopped = sandbox.ok("stop")
    assert "ending 1 running session" in stopped


def test_completion_scripts_load(sandbox: Sandbox) -> None:
    bash = sandbox.ok("completion", "bash")
    assert "complete -F _ptysup ptysup" in bash
    loaded = subprocess.run(
        ["bash", "-c", bash + "\ncomplete -p ptysup"], capture_output=True, text=True, check=False
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "compdef _ptysup ptysup" in sandbox.ok("completion", "zsh")
    assert "complete -c ptysup" in sandbox.ok("completion", "fish")


def test_status_names_the_engines(sandbox: Sandbox) -> None:
    text = sandbox.ok("status")
    from supervisor.screen import default_engine

    assert "screen:" in text and default_engine() in text
    assert "gateway:     off" in text
    assert "opencode:" in text
