"""Kill ends every process of the terminal's session, stubborn ones included."""

import time

import pytest

from tests.conftest import Sandbox, alive, proc_stats, session_pids, wait_until

pytestmark = pytest.mark.slow


STUBBORN = "trap '' HUP TERM; while :; do sleep 0.1; done"


def test_kill_ends_background_jobs_and_signal_ignorers(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("bash", "--norc", "--noprofile", "-i")
    sandbox.ok("write", sid, "sleep 1000 & echo bg-$!", "--enter")
    sandbox.ok("write", sid, f'bash -c "{STUBBORN}" & echo stub-$!', "--enter")
    sandbox.ok("write", sid, "(trap '' HUP TERM; sleep 999 &) ; echo ok-1", "--enter")
    assert sandbox.run("expect", sid, "ok-1", "--timeout", "10").returncode == 0
    leader = sandbox.json("info", sid)["pid"]
    members = session_pids(leader)
    assert len(members) >= 3, members
    started = time.monotonic()
    sandbox.ok("kill", sid)
    elapsed = time.monotonic() - started
    assert session_pids(leader) == []
    assert all(not alive(p) for p in members)
    # SIGHUP, then SIGTERM after the grace period (0.5 s here), then SIGKILL
    assert elapsed < 5
    info = sandbox.json("info", sid)
    assert info["state"] == "exited"
    assert info["signal"] == 1  # the shell died of SIGHUP


def test_kill_of_a_term_ignoring_leader_escalates_to_sigkill(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("bash", "-c", STUBBORN)
    time.sleep(0.3)
    sandbox.ok("kill", sid)
    info = sandbox.json("info", sid)
    assert info["state"] == "exited" and info["signal"] == 9
    assert session_pids(info["pid"]) == []


def test_kill_with_a_signal_sends_only_that(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "trap 'echo got-usr1' USR1; while :; do sleep 0.1; done")
    time.sleep(0.3)
    sandbox.ok("kill", sid, "--signal", "USR1")
    assert sandbox.run("expect", sid, "got-usr1", "--timeout", "10").returncode == 0
    assert sandbox.json("info", sid)["state"] == "running"
    sandbox.ok("kill", sid, "-s", "TERM")
    assert sandbox.run("wait", sid, "--timeout", "10").returncode == 128 + 15
    bad = sandbox.run("kill", sid, "--signal", "NOPE")
    assert bad.returncode == 1 and b"unknown signal 'NOPE'" in bad.stderr


def test_rm_of_a_running_session_kills_it_first(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("bash", "-c", STUBBORN)
    pid = sandbox.json("info", sid)["pid"]
    sandbox.ok("rm", sid)
    assert wait_until(lambda: not alive(pid), 5)
    assert sandbox.json("list") == []


def test_session_ends_when_leader_exits_even_if_a_grandchild_holds_the_tty(
    sandbox: Sandbox,
) -> None:
    # HUP is ignored before the fork, so the background sleep survives the leader's exit
    sid = sandbox.spawn("sh", "-c", "trap '' HUP; sleep 300 & echo started; exit 4")
    started = time.monotonic()
    assert sandbox.run("wait", sid, "--timeout", "10").returncode == 4
    assert time.monotonic() - started < 5
    assert sandbox.run("expect", sid, "started", "--timeout", "5").returncode == 0
    leader = sandbox.json("info", sid)["pid"]
    assert session_pids(leader), "the background sleep should still run"
    sandbox.ok("kill", sid)
    assert session_pids(leader) == []


def zombies(*, parent: int | None = None, sid: int | None = None) -> list[int]:
    return [
        pid
        for pid, fields in proc_stats()
        if fields[0] == b"Z"
        and (parent is None or int(fields[1]) == parent)
        and (sid is None or int(fields[3]) == sid)
    ]


def test_orphaned_background_jobs_are_reaped_not_left_as_zombies(sandbox: Sandbox) -> None:
    daemon = sandbox.json("status")["pid"]
    sid = sandbox.spawn("sh", "-c", "trap '' HUP; (sleep 0.3 &) ; sleep 0.5 & echo up; exit 0")
    leader = sandbox.json("info", sid)["pid"]
    assert sandbox.run("wait", sid, "--timeout", "10").returncode == 0
    time.sleep(1.5)
    assert zombies(parent=daemon) == []
    assert zombies(sid=leader) == []
