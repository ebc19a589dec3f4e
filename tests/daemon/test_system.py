"""The OS layer: owned descriptors, the procfs reader, a terminal session's processes."""

import os
import signal
import subprocess
import sys

import pytest
import trio

from supervisor import procfs
from supervisor.daemon.system import procs, pty
from supervisor.daemon.system.childwatch import wait_exit
from supervisor.daemon.system.fd import OwnedFd
from supervisor.daemon.system.tty import TerminalError, open_terminal

linux_only = pytest.mark.skipif(not procfs.HAS_PROC, reason="no /proc on this platform")


def test_an_owned_descriptor_closes_once_and_is_useless_after():
    r, w = os.pipe()
    owned = OwnedFd(w)
    owned.close()
    assert owned.closed and owned.fd == -1
    owned.close()
    with pytest.raises(OSError):
        os.write(owned.fd, b"x")
    os.close(r)
    r, w = os.pipe()
    kept = OwnedFd(w)
    assert kept.release() == w and kept.closed
    os.close(w)
    os.close(r)


@linux_only
def test_procfs_reads_a_process_whose_name_holds_a_parenthesis(tmp_path):
    odd = tmp_path / "a) b c"
    odd.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(odd), "30"], start_new_session=True)
    try:
        info = procfs.stat(child.pid)
        assert info is not None
        assert (info.ppid, info.sid, info.pgrp) == (os.getpid(), child.pid, child.pid)
        assert info.state in "RSD" and not info.zombie  # D: still paging its binary in
        assert procfs.alive(child.pid)
        assert child.pid in procs.session_members(child.pid)
    finally:
        child.kill()
        child.wait()
    assert procfs.stat(child.pid) is None and not procfs.alive(child.pid)


async def test_a_child_on_a_new_terminal_is_watched_ended_and_reaped(tmp_path):
    child = pty.spawn(["/bin/sh", "-c", "sleep 30 & sleep 30"], str(tmp_path), {}, 80, 24)
    try:
        assert child.tty.startswith("/dev/")
        with trio.fail_after(5):
            while len(procs.session_members(child.pid)) < 3:
                await trio.sleep(0.02)
        await procs.end_sessions({child.pid}, grace=2.0, poll=0.02)
        assert procs.session_members(child.pid) == []
        with trio.fail_after(5):
            status = await wait_exit(child.pid)
        assert procs.decode_status(status) == (None, signal.SIGHUP)
    finally:
        child.master.close()


def test_a_spawn_that_cannot_start_says_why(tmp_path):
    with pytest.raises(pty.SpawnError, match="program not found"):
        pty.spawn(["no-such-program-here"], str(tmp_path), {"PATH": "/nonexistent"}, 80, 24)
    with pytest.raises(pty.SpawnError, match="working directory does not exist"):
        pty.spawn(["/bin/true"], str(tmp_path / "gone"), {}, 80, 24)


def test_only_a_terminal_can_be_a_clients_terminal():
    r, w = os.pipe()
    try:
        with pytest.raises(TerminalError, match="not a terminal"):
            open_terminal(r)
    finally:
        os.close(r)
        os.close(w)
    master, slave = os.openpty()
    try:
        opened = open_terminal(slave)
        assert os.fstat(opened.fd).st_rdev == os.fstat(slave).st_rdev
        assert not os.get_blocking(opened.fd) and os.get_blocking(slave)
        opened.close()
    finally:
        os.close(master)
        os.close(slave)


def test_decode_status_of_an_exit_and_a_signal():
    done = subprocess.run([sys.executable, "-c", "raise SystemExit(3)"], check=False)
    assert done.returncode == 3
    assert procs.decode_status(3 << 8) == (3, None)
    assert procs.decode_status(signal.SIGTERM) == (None, signal.SIGTERM)
