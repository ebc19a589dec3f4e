"""A session ends only once its output is drained: a child that exits while a lossless
reader holds it back leaves the rest of its output in the PTY, and every byte of it still
reaches the reader (issue 24, defect 2). Numbered lines show where a gap would be."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PTYSUP, Sandbox, make_sandbox, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

CHILD = r"""
import itertools, os, select, sys, time
os.set_blocking(1, False)
lines = itertools.count()
pending, written = b"", 0
for _ in range(int(sys.argv[2])):
    written += os.write(1, b"%07d\n" % next(lines))
    time.sleep(0.01)
while True:
    if not pending:
        pending = b"".join(b"%07d\n" % next(lines) for _ in range(1024))
    try:
        n = os.write(1, pending)
    except BlockingIOError:
        if not select.select([], [1], [], 0.5)[1]:
            break  # the terminal has taken nothing for 0.5 s: its reader holds the child back
        continue
    pending, written = pending[n:], written + n
with open(sys.argv[1], "w") as f:
    f.write(str(written))
"""
"""Prints numbered lines, the first `argv[2]` of them 10 ms apart, until the daemon has
stopped reading its terminal (the reader of `run` lags), then exits with the rest of what
it printed still in the PTY; writes down how many bytes it printed."""


@pytest.fixture
def small_box(short_tmp: Path) -> Iterator[Sandbox]:
    box = make_sandbox(short_tmp, PTYSUP_RING_SIZE="65536", PTYSUP_SUBSCRIBER_BACKLOG="65536")
    try:
        box.ok("run", "--", "true")  # the screen engine loads once per daemon: not in the test
        yield box
    finally:
        assert not box.cleanup()


def expected(written: int) -> bytes:
    count = written // 8 + 1
    return b"".join(b"%07d\n" % i for i in range(count))[:written]


def first_gap(got: bytes, want: bytes) -> str:
    lines = got.split(b"\n")
    for i, line in enumerate(lines[:-1]):
        if line != b"%07d" % i:
            return f"line {i} is {line[:20]!r}"
    return f"{len(lines) - 1} whole lines of {len(want) // 8}"


def test_run_gives_every_byte_the_child_left_in_the_pty_to_a_reader_that_lags(
    small_box: Sandbox,
) -> None:
    record = small_box.home / "written"
    run = subprocess.Popen(
        [PTYSUP, "run", "--", sys.executable, "-c", CHILD, str(record), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=small_box.env,
        cwd=small_box.home,
    )
    try:
        assert wait_until(record.exists, 60), "the child never found its terminal held back"
        time.sleep(1.5)  # well past the drain deadline: the tail is still in the PTY
        out = run.stdout.read()  # type: ignore[union-attr]
        assert run.wait(30) == 0, run.stderr.read()  # type: ignore[union-attr]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    written = int(record.read_text())
    want = expected(written)
    got = out.replace(b"\r\n", b"\n")
    assert got == want, f"{len(got)} of {written} bytes; {first_gap(got, want)}"


@pytest.mark.parametrize("paced", [0, 100])
def test_a_terminal_that_stops_taking_output_gets_all_of_it_once_it_does(
    small_box: Sandbox, paced: int
) -> None:
    """`run` with its output on a terminal, handed to the daemon, which writes it (by the
    byte plane, where there is one): the terminal takes nothing, or the first `paced` lines
    (printed 10 ms apart), and then nothing until well after the child has exited."""
    record = small_box.home / "written"
    master, slave = os.openpty()
    run = subprocess.Popen(
        [PTYSUP, "run", "--no-stdin", "--", sys.executable, "-c", CHILD, str(record), str(paced)],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=small_box.env,
        cwd=small_box.home,
        start_new_session=True,
    )
    os.close(slave)
    got = bytearray()
    try:
        while paced and b"%07d" % (paced - 1) not in got:
            got += os.read(master, 65536)
        assert wait_until(record.exists, 60), "the child never found its terminal held back"
        time.sleep(1.5)
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
        assert run.wait(30) == 0
    finally:
        os.close(master)
        if run.poll() is None:
            run.kill()
            run.wait()
    written = int(record.read_text())
    want = expected(written)
    text = bytes(got).replace(b"\r\n", b"\n")
    shown = text[text.find(b"0000000\n") :]
    assert want in text, f"{len(shown)} of {written} bytes; {first_gap(shown, want)}"
