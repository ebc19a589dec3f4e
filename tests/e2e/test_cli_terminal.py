"""The CLI in a real terminal: `run` passes keys (ctrl-C too) and restores the terminal,
`new -A` attaches or creates, `attach` alone finds the session used last."""

import time

import pexpect
import pytest

from tests.conftest import Sandbox
from tests.e2e.test_attach import PROMPT, outer_shell, stty_state

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]


def test_run_passes_typed_keys_and_ctrl_c_and_restores_the_terminal(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    before = stty_state(shell)
    shell.sendline("ptysup run -- sh -c 'read x; echo got=$x'")
    shell.expect_exact("$x'")
    shell.send("typed\r")
    shell.expect_exact("got=typed")
    shell.expect_exact(PROMPT)
    assert stty_state(shell) == before

    shell.sendline(
        'ptysup run -- sh -c \'trap "echo caught; exit 7" INT; echo armed; '
        "while :; do sleep 0.1; done'"
    )
    shell.expect_exact("\r\narmed")
    shell.sendcontrol("c")
    shell.expect_exact("caught")
    shell.expect_exact(PROMPT)
    shell.sendline("echo status=$?")
    shell.expect_exact("status=7")
    assert stty_state(shell) == before
    shell.sendline("exit")
    shell.expect(pexpect.EOF)


def test_new_a_attaches_or_creates_and_attach_finds_the_last_one(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    shell.sendline("ptysup new -A --name dev -- bash --norc --noprofile")
    shell.expect(r"bash-[\d.]+[#$] ")
    shell.sendline("echo first-$((20+1))")
    shell.expect_exact("first-21")
    shell.sendcontrol("\\")
    shell.expect_exact(PROMPT)
    other = sandbox.spawn("sleep", "60")
    shell.sendline("ptysup new -A --name dev -- bash --norc --noprofile")
    shell.expect_exact("first-21")  # the same session, redrawn
    shell.sendcontrol("\\")
    shell.expect_exact(PROMPT)
    assert len(sandbox.json("list")) == 2

    shell.sendline("ptysup attach")
    shell.expect_exact("first-21")  # the one attached last, not the newer one
    shell.sendcontrol("\\")
    shell.expect_exact("detached from session")
    shell.expect_exact(PROMPT)
    sandbox.ok("rm", "dev", other)
    shell.sendline("ptysup attach; echo status=$?")
    shell.expect_exact("ptysup: no running session to attach to")
    shell.expect_exact("status=125")
    shell.sendline("exit")
    shell.expect(pexpect.EOF)


def test_run_passes_the_terminals_new_size_on(sandbox: Sandbox) -> None:
    shell = outer_shell(sandbox)
    shell.setwinsize(24, 80)
    shell.sendline("ptysup run -- sh -c 'stty size; read x; stty size'")
    shell.expect_exact("24 80")
    shell.setwinsize(30, 100)
    deadline = time.monotonic() + 10
    while (sandbox.json("list")[0]["cols"], sandbox.json("list")[0]["rows"]) != (100, 30):
        assert time.monotonic() < deadline, "the session never took the new size"
        time.sleep(0.05)
    shell.send("go\r")
    shell.expect_exact("30 100")
    shell.expect_exact(PROMPT)
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
