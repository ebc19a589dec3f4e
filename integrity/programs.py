"""The children the harness runs in its sessions (`python -m integrity.programs KIND ...`):

- `lines PLAN`: numbered lines (integrity.lines), phase by phase: `COUNT@RATE,...`, rate in
  lines a second, 0 for a flood; the terminal is put in raw mode first, so that the session's
  output is exactly the lines;
- `record FILE`: raw mode, says `READY`, then appends every byte it reads from its terminal to
  FILE, sleeping between reads as told;
- `held FILE`: numbered lines until the terminal has taken nothing for `--stall` seconds (its
  reader holds the child back), then the count of bytes printed into FILE, and exit: the
  rest of the output is still in the PTY;
- `colour`: coloured text without end, for observers of another size."""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import termios
import time
import tty

from integrity.lines import line, parse_plan

BATCH = 4096


def _raw(fd: int) -> None:
    with contextlib.suppress(termios.error, OSError):
        tty.setraw(fd, termios.TCSANOW)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def print_lines(spec: str, delay: float, hold: float) -> int:
    _raw(1)
    time.sleep(delay)
    n = 0
    for phase in parse_plan(spec):
        end = n + phase.count
        if phase.rate <= 0:
            while n < end:
                batch = min(BATCH, end - n)
                _write_all(1, b"".join(line(i) for i in range(n, n + batch)))
                n += batch
            continue
        begun = time.monotonic()
        first = n
        while n < end:
            due = first + int((time.monotonic() - begun) * phase.rate) + 1
            upto = min(end, max(due, n + 1))
            _write_all(1, b"".join(line(i) for i in range(n, upto)))
            n = upto
            time.sleep(min(0.01, 1 / phase.rate))
    time.sleep(hold)
    return 0


def held(path: str, stall: float) -> int:
    _raw(1)
    os.set_blocking(1, False)
    n = written = 0
    pending = b""
    while True:
        if not pending:
            pending = b"".join(line(i) for i in range(n, n + 1024))
            n += 1024
        try:
            done = os.write(1, pending)
        except BlockingIOError:
            if not select.select([], [1], [], stall)[1]:
                break
            continue
        pending, written = pending[done:], written + done
    with open(path, "w") as f:
        f.write(str(written))
    return 0


def record(path: str, delay: float, interval: float, chunk: int) -> int:
    _raw(0)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    _write_all(1, b"READY\n")
    time.sleep(delay)
    while True:
        try:
            data = os.read(0, chunk)
        except OSError:
            return 0
        if not data:
            return 0
        _write_all(fd, data)
        if interval:
            time.sleep(interval)


def colour() -> int:
    """Rows of a 300-column screen, a colour change every three characters."""
    n = 0
    while True:
        rows = []
        for _ in range(10):
            cells = b"".join(
                b"\x1b[3%d;4%dm%03d" % ((n + i) % 8, (n + 2 * i) % 8, i) for i in range(100)
            )
            rows.append(cells + b"\x1b[0m\r\n")
            n += 1
        _write_all(1, b"".join(rows))
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integrity.programs")
    kinds = parser.add_subparsers(dest="kind", required=True)
    lines = kinds.add_parser("lines")
    lines.add_argument("plan")
    lines.add_argument("--delay", type=float, default=0.0)
    lines.add_argument("--hold", type=float, default=0.0)
    rec = kinds.add_parser("record")
    rec.add_argument("file")
    rec.add_argument("--delay", type=float, default=0.0)
    rec.add_argument("--interval", type=float, default=0.0)
    rec.add_argument("--chunk", type=int, default=65536)
    hold = kinds.add_parser("held")
    hold.add_argument("file")
    hold.add_argument("--stall", type=float, default=0.5)
    kinds.add_parser("colour")
    args = parser.parse_args(argv)
    if args.kind == "lines":
        return print_lines(args.plan, args.delay, args.hold)
    if args.kind == "record":
        return record(args.file, args.delay, args.interval, args.chunk)
    if args.kind == "held":
        return held(args.file, args.stall)
    return colour()


if __name__ == "__main__":
    sys.exit(main())
