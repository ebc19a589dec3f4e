"""A relayed observer of another size that stops reading costs the daemon a bounded amount
of memory: its fitted redraws replace each other while unsent (issue 24, defect 8)."""

import os
import signal
import sys
import time

import pexpect
import pytest

from tests.conftest import PTYSUP, Sandbox, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

COLOUR = r"""
import sys, time
i = 0
while True:
    cells = ("\x1b[38;5;%dm%s" % ((i + c) % 256, chr(33 + (i * 7 + c) % 90)) for c in range(299))
    sys.stdout.write("".join(cells) + "\x1b[0m\r\n")
    sys.stdout.flush()
    i += 1
    time.sleep(0.01)
"""
"""A full screen of colour, a new row every 10 ms: each fitted redraw is large."""

GROWTH_MB = 10
"""What the daemon may grow by over 20 s of a stopped observer (it grew ~5 MB a second)."""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the daemon's RSS in /proc")
def test_a_stopped_relayed_observer_of_another_size_keeps_the_daemon_bounded(
    sandbox: Sandbox,
) -> None:
    sid = sandbox.spawn(sys.executable, "-c", COLOUR, size="300x100")
    daemon = sandbox.json("status")["pid"]
    observer = pexpect.spawn(
        PTYSUP,
        ["attach", "--read-only", "--relay", sid],
        env=sandbox.env,
        cwd=str(sandbox.home),
        dimensions=(100, 299),
    )
    try:
        observer.expect("\x1b\\[38;5;", timeout=15)
        assert wait_until(lambda: sandbox.json("info", sid)["attached"] == 1, 10)
        os.kill(observer.pid, signal.SIGSTOP)
        time.sleep(3)  # the socket's buffers fill up
        before = rss_mb(daemon)
        samples = []
        for _ in range(20):
            time.sleep(1)
            samples.append(rss_mb(daemon))
        grown = max(samples) - before
        assert grown < GROWTH_MB, f"{before:.0f} MB -> {samples}"
        os.kill(observer.pid, signal.SIGCONT)
        observer.expect("\x1b\\[38;5;", timeout=15)  # it catches up with the screen
        assert sandbox.json("info", sid)["state"] == "running"
    finally:
        os.kill(observer.pid, signal.SIGCONT)
        observer.terminate(force=True)
