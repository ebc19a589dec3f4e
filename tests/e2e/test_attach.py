"""`ptysup new` and `ptysup attach` in real terminals, driven from outside with pexpect."""

import os
import re
import signal
import time

import pexpect
import pytest

from tests.conftest import Sandbox, alive, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

PROMPT = "OUTER$ "


def outer_shell(sandbox: Sandbox) -> pexpect.spawn:
    """A plain bash in a real terminal: the user's terminal that ptysup runs in."""
    inputrc = sandbox.home / ".inputrc"
    inputrc.write_text("set enable-bracketed-paste off\n")
    env = dict(sandbox.env, INPUTRC=str(inputrc))
    shell = pexpect.spawn(
        "bash",
        ["--norc", "--noprofile"],
        env=env,
        cwd=str(sandbox.home),
        encoding="utf-8",
        timeout=15,
        dimensions=(24, 80),
    )
    shell.sendline(f"PS1='{PROMPT}'")  # not exported: inner shells keep their own prompt
    shell.expect_exact(PROMPT)
    return shell


def ask(shell: pexpect.spawn, command: str, pattern: str) -> str:
    """Run `command` in the outer shell; the first group of `pattern` in what it prints."""
    shell.sendline(command)
    shell.expect(pattern)
    found = shell.match.group(1)
    shell.expect_exact(PROMPT)
    return found


def stty_state(shell: pexpect.spawn) -> str:
    return ask(shell, "stty -g", r"([0-9a-f]+(?::[0-9a-f]+){10,})\r\n")


def test_new_type_detach_restores_terminal_and_session_runs_on(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    before = stty_state(shell)
    shell.sendline("ptysup new --name inner -- bash --norc --noprofile")
    shell.expect(r"bash-[\d.]+[#$] ")
    shell.sendline("echo hi-$((40+2))")
    shell.expect_exact("hi-42")
    shell.sendcontrol("\\")
    shell.expect_exact("[ptysup: detached from session 1]")
    shell.expect_exact(PROMPT)
    assert stty_state(shell) == before
    assert sandbox.json("info", "inner")["state"] == "running"
    shell.sendline("echo status=$?")
    shell.expect_exact("status=0")

    shell.sendline("ptysup attach inner")
    shell.expect_exact("hi-42")  # the tail of the output is shown again
    shell.sendline("exit 3")
    shell.expect_exact("[ptysup: session ended (3)]")
    shell.expect_exact(PROMPT)
    shell.sendline("echo status=$?")
    shell.expect_exact("status=3")
    assert stty_state(shell) == before
    shell.sendline("exit")
    shell.expect(pexpect.EOF)


def test_window_size_follows_the_client(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    shell.sendline("ptysup new -- bash --norc --noprofile")
    shell.expect(r"bash-[\d.]+[#$] ")
    shell.sendline("stty size")
    shell.expect_exact("24 80")
    shell.setwinsize(40, 132)
    time.sleep(0.3)
    shell.sendline("stty size")
    shell.expect_exact("40 132")
    shell.sendcontrol("\\")
    shell.expect_exact(PROMPT)
    info = sandbox.json("info", "1")
    assert (info["cols"], info["rows"]) == (132, 40)
    shell.sendline("exit")
    shell.expect(pexpect.EOF)


def test_custom_detach_key(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    shell.sendline("ptysup new --detach-key ctrl-a -- cat")
    time.sleep(0.5)
    shell.send("abc\r")
    shell.expect_exact("abc")
    shell.sendcontrol("a")
    shell.expect_exact("[ptysup: detached from session 1]")
    shell.expect_exact(PROMPT)
    bad = sandbox.run("attach", "1", "--detach-key", "ctrl-ab")
    assert bad.returncode != 0 and b"--detach-key" in bad.stderr
    shell.sendline("exit")
    shell.expect(pexpect.EOF)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_terminal_restored_when_the_client_is_killed(sandbox: Sandbox, how: int) -> None:
    shell = outer_shell(sandbox)
    before = stty_state(shell)
    shell.sendline("ptysup new -- bash --norc --noprofile")
    shell.expect(r"bash-[\d.]+[#$] ")
    shell.sendline("echo inside")
    shell.expect_exact("inside")
    client = _client_pid(shell.pid)
    os.kill(client, how)
    assert wait_until(lambda: not alive(client), 5)
    shell.expect_exact(PROMPT)
    time.sleep(0.2)
    assert stty_state(shell) == before
    assert sandbox.json("info", "1")["state"] == "running"
    shell.sendline("exit")
    shell.expect(pexpect.EOF)


def test_terminal_restored_when_the_daemon_goes(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    before = stty_state(shell)
    shell.sendline("ptysup new -- bash --norc --noprofile")
    shell.expect(r"bash-[\d.]+[#$] ")
    sandbox.ok("stop")
    shell.expect(r"\[ptysup: (session ended|the session was removed|the daemon went away)")
    shell.expect_exact(PROMPT)
    assert stty_state(shell) == before
    shell.sendline("exit")
    shell.expect(pexpect.EOF)


def _client_pid(shell_pid: int) -> int:
    """The `ptysup` process running in the outer shell (a child of it)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == shell_pid and b"ptysup" in cmdline:
                return int(name)
        time.sleep(0.05)
    raise AssertionError("no ptysup client found")


def test_list_table_is_readable(sandbox: Sandbox) -> None:
    sandbox.spawn("sleep", "30", name="nap")
    table = sandbox.ok("list")
    assert re.search(r"^ID\s+NAME\s+STATE\s+PID\s+EXIT\s+SIZE\s+ATT\s+COMMAND$", table, re.M)
    assert re.search(r"^1\s+nap\s+running\s+\d+\s+-\s+80x24\s+0\s+sleep 30$", table, re.M)
