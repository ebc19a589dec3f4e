"""The attached terminal handed to the daemon: it writes the output and reads the keys
itself, hands floods of output to the client, and lets go of the terminal at the end."""

import re
import sys
from pathlib import Path

import pexpect
import pytest

from tests.conftest import Sandbox, held_terminals, wait_until
from tests.e2e.test_attach import PROMPT, ask, outer_shell, stty_state

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

INNER = r"bash-[\d.]+[#$] "
PTYSUP = str(Path(sys.executable).parent / "ptysup")


def outer_tty(shell: pexpect.spawn) -> str:
    return ask(shell, "tty", r"(/dev/pts/\d+)\r\n")


def test_the_daemon_holds_the_terminal_while_attached_and_lets_go(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    tty = outer_tty(shell)
    before = stty_state(shell)
    shell.sendline("ptysup new -- bash --norc --noprofile")
    shell.expect(INNER)
    assert "in control" not in shell.before  # the first control is no news
    pid = sandbox.daemon_pid()
    assert pid is not None
    assert tty in held_terminals(pid)
    shell.sendline("echo typed-$((6*7))")
    shell.expect_exact("typed-42")
    shell.sendcontrol("\\")
    shell.expect_exact("[ptysup: detached from session 1]")
    shell.expect_exact(PROMPT)
    assert wait_until(lambda: tty not in held_terminals(pid))
    assert stty_state(shell) == before
    # The daemon reads no more keys from this terminal: the outer shell gets all of them.
    shell.sendline("read line; echo got=$line")
    shell.sendline("every-key-arrives")
    shell.expect_exact("got=every-key-arrives")
    shell.expect_exact(PROMPT)


def test_relay_keeps_the_terminal_in_the_client(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    tty = outer_tty(shell)
    shell.sendline("ptysup new --relay -- bash --norc --noprofile")
    shell.expect(INNER)
    pid = sandbox.daemon_pid()
    assert pid is not None
    assert tty not in held_terminals(pid)
    shell.sendline("echo relayed-$((2+3))")
    shell.expect_exact("relayed-5")
    shell.sendcontrol("\\")
    shell.expect_exact("[ptysup: detached from session 1]")
    shell.expect_exact(PROMPT)


def test_a_flood_arrives_whole_and_in_order_then_keys_echo_again(sandbox: Sandbox) -> None:
    """A flood of output overflows the terminal, so part of it goes through the client;
    every line must still arrive once and in order, and typing works after it."""
    shell = outer_shell(sandbox)
    shell.sendline("ptysup new -- bash --norc --noprofile")
    shell.expect(INNER)
    count = 60000
    shell.sendline(f"seq 1 {count}; echo flood-$((1+1))-done")
    shell.expect_exact("flood-2-done", timeout=60)
    seen = [int(n) for n in re.findall(r"^(\d+)\r$", shell.before, re.MULTILINE)]
    assert seen == list(range(1, count + 1))
    shell.sendline("echo after-$((3*3))")
    shell.expect_exact("after-9")
    shell.sendline("exit 4")
    shell.expect_exact("[ptysup: session ended (4)]")
    shell.expect_exact(PROMPT)


def test_the_end_of_the_session_gives_the_terminal_back(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    tty = outer_tty(shell)
    shell.sendline("ptysup new -- sh -c 'seq 1 3000; exit 5'")
    shell.expect_exact("[ptysup: session ended (5)]", timeout=30)
    assert "3000" in shell.before
    shell.expect_exact(PROMPT)
    pid = sandbox.daemon_pid()
    assert pid is not None
    assert wait_until(lambda: tty not in held_terminals(pid))
    shell.sendline("echo status=$?")
    shell.expect_exact("status=5")


def test_a_terminal_that_goes_away_is_let_go_and_the_session_runs_on(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("bash", "--norc", "--noprofile")
    client = pexpect.spawn(PTYSUP, ["attach", sid], env=sandbox.env, encoding="utf-8", timeout=15)
    client.sendline("echo here-$((5+5))")
    client.expect_exact("here-10")
    pid = sandbox.daemon_pid()
    assert pid is not None
    held = held_terminals(pid)
    assert held, "the daemon holds the attached terminal"
    client.close(force=True)  # the terminal is gone: its master closed, the client hung up
    assert wait_until(lambda: not (held & held_terminals(pid)))
    assert sandbox.json("info", sid)["state"] == "running"


def test_run_hands_its_terminal_over_for_output_and_every_line_arrives(
    sandbox: Sandbox,
) -> None:
    shell = outer_shell(sandbox)
    tty = outer_tty(shell)
    shell.sendline("ptysup run -- sh -c 'seq 1 40000; echo half-$((1+1)); read x; exit 6'")
    shell.expect_exact("half-2", timeout=60)
    seen = [int(n) for n in re.findall(r"^(\d+)\r$", shell.before, re.MULTILINE)]
    assert seen == list(range(1, 40001))
    pid = sandbox.daemon_pid()
    assert pid is not None
    assert tty in held_terminals(pid)
    sid = sandbox.json("list")[0]["id"]
    sandbox.ok("write", str(sid), "go\n")  # run reads no keys: they reach the child this way
    shell.expect_exact(PROMPT)
    shell.sendline("echo status=$?")
    shell.expect_exact("status=6")
    assert wait_until(lambda: tty not in held_terminals(pid))


def test_run_with_relay_receives_the_output_itself(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    tty = outer_tty(shell)
    shell.sendline("ptysup run --relay -- sh -c 'echo relayed-$((4+4)); read x'")
    shell.expect_exact("relayed-8")
    pid = sandbox.daemon_pid()
    assert pid is not None
    assert tty not in held_terminals(pid)
    sid = sandbox.json("list")[0]["id"]
    sandbox.ok("write", str(sid), "go\n")
    shell.expect_exact(PROMPT)


def test_a_session_is_never_attached_inside_itself(sandbox: Sandbox) -> None:
    """Inside session 1, attaching 1 (or 2, when 2 shows 1) would feed its output back
    into itself for ever; it is refused and both sessions go on."""
    shell = outer_shell(sandbox)
    shell.sendline("ptysup new --name one -- bash --norc --noprofile")
    shell.expect(INNER)
    shell.sendline("ptysup attach one")
    shell.expect_exact("this terminal is session 1's, which would then show itself")
    shell.expect(INNER)
    shell.sendline("ptysup new --name two -- bash --norc --noprofile")  # two shown in one
    shell.expect(INNER)
    shell.sendline("ptysup attach one")
    shell.expect_exact("cannot attach session 1 here: this terminal is session 2's")
    shell.expect(INNER)
    shell.sendline("echo still-$((1+2))")
    shell.expect_exact("still-3")
    assert [s["state"] for s in sandbox.json("list")] == ["running", "running"]


def test_only_the_controllers_keys_reach_the_child_as_control_moves(sandbox: Sandbox) -> None:
    """Keys read by the daemon from two held terminals: the newest interactive one drives,
    the other observes (its keys dropped) until the driver leaves; a read-only one never
    drives but may detach."""
    sid = sandbox.spawn("bash", "--norc", "--noprofile")
    first, second, watcher = outer_shell(sandbox), outer_shell(sandbox), outer_shell(sandbox)
    first.sendline(f"ptysup attach {sid}")
    first.expect(INNER)
    second.sendline(f"ptysup attach {sid}")
    second.expect(INNER)
    watcher.sendline(f"ptysup attach --read-only {sid}")
    watcher.expect(INNER)
    first.send("echo from-first-$((1+1))\r")
    watcher.send("echo from-watcher-$((2+2))\r")
    second.sendline("echo from-second-$((3+3))")
    second.expect_exact("from-second-6")
    first.expect_exact("from-second-6")  # the observer sees what the controller typed
    out = sandbox.run("read", sid, check=True).stdout.decode()
    assert "from-first" not in out and "from-watcher" not in out
    second.sendcontrol("\\")
    second.expect_exact(f"[ptysup: detached from session {sid}]")
    first.expect_exact("in control")
    first.sendline("echo now-first-$((4+4))")
    first.expect_exact("now-first-8")
    watcher.expect_exact("now-first-8")
    watcher.sendcontrol("\\")
    watcher.expect_exact(f"[ptysup: detached from session {sid}]")
    first.sendline("exit 3")
    first.expect_exact("[ptysup: session ended (3)]")
