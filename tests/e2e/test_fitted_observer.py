"""An observer's terminal of another size gets redraws fitted to it; once its size is the
session's, a full redraw and then every byte after it, even while the terminal takes the
redraw slowly (issue 24: FITTED -> TERMINAL skipped what came during the redraw)."""

import contextlib
import itertools
import re
import sys
import time

import pexpect
import pytest

from tests.conftest import PTYSUP, Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

LINES = r"""
import sys, time
i = 0
while True:
    sys.stdout.write("%07d " % i + "x" * 190 + "\n")
    sys.stdout.flush()
    i += 1
    time.sleep(0.01)
"""
"""Numbered lines of 200 columns, 100 a second: a full redraw is some 20 KB."""

REDRAW = b"\x1b[r\x1b[H\x1b[2J"


def read_slowly(terminal: pexpect.spawn, seconds: float) -> bytes:
    """What the terminal shows over `seconds`, taken 4 KiB every 50 ms: a slow terminal."""
    got = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with contextlib.suppress(pexpect.TIMEOUT):
            got += terminal.read_nonblocking(4096, timeout=0.05)
        time.sleep(0.05)
    return got


def test_a_slow_observer_resized_to_the_sessions_size_misses_no_line_after_its_redraw(
    sandbox: Sandbox,
) -> None:
    sandbox.ok("run", "--", "true")  # the screen engine loads once per daemon
    sid = sandbox.spawn(sys.executable, "-c", LINES, size="300x100")
    observer = pexpect.spawn(
        PTYSUP, ["attach", "--read-only", sid], env=sandbox.env, dimensions=(99, 299)
    )
    try:
        observer.expect_exact(REDRAW.decode(), timeout=15)
        shown = read_slowly(observer, 2)
        observer.setwinsize(100, 300)
        shown += read_slowly(observer, 4)
    finally:
        observer.terminate(force=True)
    after = shown[shown.rfind(REDRAW) :]
    lines = [int(n) for n in re.findall(rb"(\d{7}) x", after)]
    assert len(lines) > 200, f"{len(lines)} lines after the last redraw"
    gaps = [(a, b) for a, b in itertools.pairwise(lines) if b != a + 1]
    assert not gaps, f"after line {gaps[0][0]} came {gaps[0][1]}; lines {lines[0]}..{lines[-1]}"
