"""The files the children print: written once per bench run, read from the page cache."""

import os
from dataclasses import dataclass

from bench.sandbox import Sandbox

MiB = 1024 * 1024
LINE = b"0123456789abcdefghijklmnopqrstuvwxyzABC\n"
BLOCK = MiB


@dataclass(frozen=True)
class Payload:
    path: str
    size: int
    newlines: int
    raw_mode: bool

    @property
    def terminal_bytes(self) -> int:
        """What the child's terminal outputs: in cooked mode, a CR before each LF."""
        return self.size if self.raw_mode else self.size + self.newlines


def lines(box: Sandbox, size: int) -> Payload:
    """`size` bytes of 40-byte lines, for a terminal in cooked mode."""
    path = str(box.root / f"lines-{size}")
    count = size // len(LINE)
    if not os.path.exists(path):
        block = LINE * (BLOCK // len(LINE))
        with open(path, "wb") as f:
            for _ in range(count // (BLOCK // len(LINE))):
                f.write(block)
            f.write(LINE * (count % (BLOCK // len(LINE))))
    return Payload(path, count * len(LINE), count, raw_mode=False)


def binary(box: Sandbox, size: int) -> Payload:
    """`size` bytes of random bytes (one random MiB repeated), for a terminal in raw mode."""
    path = str(box.root / f"binary-{size}")
    block = os.urandom(min(size, BLOCK))
    reps, rest = divmod(size, len(block))
    with open(path, "wb") as f:
        for _ in range(reps):
            f.write(block)
        f.write(block[:rest])
    newlines = block.count(b"\n") * reps + block[:rest].count(b"\n")
    return Payload(path, size, newlines, raw_mode=True)
