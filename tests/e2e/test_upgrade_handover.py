"""An upgrade in place hands over what the clients were not yet given (issue 24, defects 3
and 6): the output a lossless `read --follow` has not been sent stays in the ring and the
follower goes on from its offset, and the keys queued in the daemon reach the child, once
and in order. Numbered lines, so that a gap or a stitch shows."""

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PTYSUP, Sandbox
from tests.e2e.test_keys_in_order import Terminal, first_difference, lines, recorded

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

LINES = 1_000_000


def slow_reader(proc: subprocess.Popen[bytes], out: bytearray) -> None:
    """Read 64 KiB, then sleep 50 ms: a consumer slower than the child."""
    assert proc.stdout is not None
    while chunk := proc.stdout.read1(65536):
        out += chunk
        time.sleep(0.05)


def test_read_follow_loses_nothing_across_an_upgrade_mid_flood(sandbox: Sandbox) -> None:
    """Defect 3: the follower lags by its backlog and more; the upgrade must not drop it."""
    sid = sandbox.spawn("sh", "-c", f"sleep 1.5; seq 1 {LINES}; sleep 1", name="u")
    proc = subprocess.Popen(
        [PTYSUP, "read", sid, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=sandbox.env,
    )
    out = bytearray()
    reader = threading.Thread(target=slow_reader, args=(proc, out), daemon=True)
    reader.start()
    time.sleep(3)
    sandbox.ok("upgrade")
    reader.join(120)
    assert proc.wait(30) == 0
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    assert "skipped" not in err, err
    got = [int(n) for n in re.findall(rb"(?m)^(\d+)\r?$", bytes(out))]
    assert len(got) == LINES, f"{len(got)} lines, {err!r}"
    missing = next((k for k, n in enumerate(got, 1) if n != k), None)
    assert missing is None, f"line {missing} is {got[missing - 1]}"


RECORD_LATE = """
import os, sys, time, tty
tty.setraw(0)
out = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
os.write(1, b"READY\\n")
time.sleep(float(sys.argv[2]))
while data := os.read(0, 65536):
    os.write(out, data)
"""


def test_keys_queued_in_the_daemon_survive_an_upgrade(sandbox: Sandbox, tmp_path: Path) -> None:
    """Defect 6: a paste into a child that reads only 4 s later; the upgrade comes meanwhile."""
    path = tmp_path / "keys"
    sid = sandbox.spawn(sys.executable, "-c", RECORD_LATE, str(path), "4")
    sandbox.run("expect", sid, "READY", "--timeout", "15", check=True)
    terminal = Terminal(sandbox, sid)
    try:
        paste = lines("", 0, 12_500)  # 100,000 bytes
        writer = threading.Thread(target=terminal.write, args=(paste, 30.0), daemon=True)
        writer.start()
        time.sleep(0.5)
        sandbox.ok("upgrade")
        writer.join(40)
        got = recorded(path, len(paste), 30)
        assert got == paste, first_difference(got, paste)
    finally:
        terminal.close()
