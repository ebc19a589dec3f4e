"""Numbered output lines: what a printing child writes, the exact byte stream it makes, and
the comparison of what a lossless reader got (with its skip notices) against that stream.

A line is `%09d`, a filler whose length depends on the number, a space, and the CRC-32 of what
came before in hex: a gap, a repeat, a reordering or two lines stitched together all show."""

from __future__ import annotations

import bisect
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

FILLER = 23
_LINE = re.compile(rb"^(\d{9})(\.*) ([0-9a-f]{8})$")


def line(n: int) -> bytes:
    """Line `n` (from 0), with its newline."""
    body = b"%09d" % n + b"." * (n % FILLER)
    return body + b" %08x\n" % zlib.crc32(body)


def parse(text: bytes) -> int | None:
    """The number of a well-formed line (without its newline), else None."""
    match = _LINE.match(text.rstrip(b"\r"))
    if match is None:
        return None
    number = int(match[1])
    body = match[1] + match[2]
    if len(match[2]) != number % FILLER or int(match[3], 16) != zlib.crc32(body):
        return None
    return number


@dataclass(frozen=True)
class Phase:
    """`count` lines at `rate` lines a second; rate 0 is a flood (as fast as they go)."""

    count: int
    rate: float

    def spec(self) -> str:
        return f"{self.count}@{self.rate:g}"


def plan_spec(phases: Sequence[Phase]) -> str:
    return ",".join(p.spec() for p in phases)


def parse_plan(spec: str) -> list[Phase]:
    phases = []
    for part in spec.split(","):
        count, rate = part.split("@")
        phases.append(Phase(int(count), float(rate)))
    return phases


class Stream:
    """The exact bytes of lines 0..total-1, with offsets mapped back to line numbers."""

    def __init__(self, total: int) -> None:
        self.total = total
        starts = [0] * (total + 1)
        parts = []
        at = 0
        for n in range(total):
            text = line(n)
            parts.append(text)
            starts[n] = at
            at += len(text)
        starts[total] = at
        self.data = b"".join(parts)
        self.starts = starts

    def __len__(self) -> int:
        return len(self.data)

    def line_at(self, offset: int) -> tuple[int, int]:
        """The line holding byte `offset`, and the position of that byte in it."""
        n = bisect.bisect_right(self.starts, offset) - 1
        return n, offset - self.starts[n]

    def where(self, offset: int) -> str:
        if offset >= len(self.data):
            return f"offset {offset} (the end, after line {self.total - 1})"
        n, column = self.line_at(offset)
        return f"offset {offset} (line {n}" + (f", byte {column} of it)" if column else ")")


NOTICE = re.compile(
    rb"ptysup: (?:skipped bytes (\d+)\.\.(\d+)|bytes (\d+)\.\.(\d+) are no longer kept)"
)


@dataclass
class Notice:
    """A skip notice a reader printed: the bytes `start`..`end` did not reach it."""

    start: int
    end: int
    truncated: bool
    """Said at the start: the ring no longer kept them when the reader subscribed."""
    seen: float | None = None
    """When the reader said it (time.monotonic())."""


def notices(stderr: bytes, seen: Callable[[int], float | None] | None = None) -> list[Notice]:
    """The notices in a reader's stderr; `seen` tells when the byte at a position came."""
    found = []
    for match in NOTICE.finditer(stderr):
        when = seen(match.end()) if seen else None
        if match[1] is not None:
            found.append(Notice(int(match[1]), int(match[2]), False, when))
        else:
            found.append(Notice(int(match[3]), int(match[4]), True, when))
    return found


@dataclass
class Verdict:
    """What a lossless reader got against what was printed."""

    ok: bool
    """Every byte printed arrived once and in order, or a notice said where it did not."""
    received: int = 0
    skipped_with_notice: int = 0
    skipped_after_start: int = 0
    """Bytes a notice said were skipped after the reader had begun (not the ring's
    truncation at its start): a lossless reader should never be skipped."""
    first_skip: Notice | None = None
    """The first of those skips."""
    complete: bool = False
    problem: str = ""
    offset: int | None = None
    """Where the first problem is, in the session's output."""
    position: int | None = None
    """Where it is in what the reader received (to tell when it got there)."""
    notes: list[str] = field(default_factory=list)


def describe_lines(data: bytes, limit: int = 6) -> str:
    """The lines in `data` by number, `?` for those that are not well formed."""
    shown = []
    for piece in data.split(b"\n")[:limit]:
        if not piece:
            continue
        number = parse(piece)
        shown.append(str(number) if number is not None else f"?{piece[:40]!r}")
    return ", ".join(shown)


def compare_segments(
    expected: Stream,
    segments: Iterable[tuple[int, bytes]],
    skips: Sequence[Notice],
    end: int,
    start: int = 0,
) -> Verdict:
    """`segments` are (offset, data) as a reader placed them; they must follow each other
    with no gap or overlap except where a notice covers the gap, match the stream, and
    reach `end`."""
    verdict = Verdict(ok=True)
    covered = {(s.start, s.end): s for s in skips}
    at = start
    for offset, data in segments:
        if offset != at:
            skip = covered.pop((at, offset), None)
            if skip is None or offset < at:
                verdict.ok = False
                kind = "a repeat" if offset < at else "a silent gap"
                verdict.problem = (
                    f"{kind}: after {expected.where(at)} the next bytes came at "
                    f"{expected.where(offset)} with no notice"
                )
                verdict.offset = at
                verdict.position = verdict.received
                return verdict
            _count_skip(verdict, skip)
            at = offset
        want = expected.data[offset : offset + len(data)]
        if data != want:
            return _mismatch(verdict, expected, offset, data, want, verdict.received)
        verdict.received += len(data)
        at = offset + len(data)
    for skip in skips:  # a notice for a skip at the very end
        if (skip.start, skip.end) in covered and skip.start == at:
            covered.pop((skip.start, skip.end))
            _count_skip(verdict, skip)
            at = skip.end
    _finish(verdict, expected, at, end)
    return verdict


def compare_stream(expected: Stream, stdout: bytes, skips: Sequence[Notice], end: int) -> Verdict:
    """A raw reader (`ptysup read --follow`): its stdout and the notices on its stderr, whose
    offsets say where the bytes before each one end and where the next begin."""
    verdict = Verdict(ok=True)
    at = 0
    pos = 0
    for skip in skips:
        if skip.truncated and at == 0 and pos == 0:
            _count_skip(verdict, skip)
            at = skip.end
            continue
        if skip.start < at:
            verdict.ok = False
            verdict.problem = f"a notice goes backwards: {skip.start}..{skip.end} after {at}"
            verdict.offset = at
            return verdict
        size = skip.start - at
        data = stdout[pos : pos + size]
        want = expected.data[at : skip.start]
        if data != want:
            return _mismatch(verdict, expected, at, data, want, pos)
        verdict.received += size
        pos += size
        _count_skip(verdict, skip)
        at = skip.end
    rest = stdout[pos:]
    want = expected.data[at : at + len(rest)]
    if rest != want:
        return _mismatch(verdict, expected, at, rest, want, pos)
    verdict.received += len(rest)
    _finish(verdict, expected, at + len(rest), end)
    return verdict


def _count_skip(verdict: Verdict, skip: Notice) -> None:
    size = skip.end - skip.start
    verdict.skipped_with_notice += size
    if not skip.truncated:
        verdict.skipped_after_start += size
        if verdict.first_skip is None:
            verdict.first_skip = skip
        verdict.notes.append(f"skipped {skip.start}..{skip.end} with a notice")


def _finish(verdict: Verdict, expected: Stream, at: int, end: int) -> None:
    verdict.complete = at == end
    verdict.position = verdict.received
    if at < end:
        verdict.ok = False
        verdict.problem = (
            f"the output stops short: at {expected.where(at)}, "
            f"{end - at} bytes before the end ({end})"
        )
        verdict.offset = at
    elif at > end:
        verdict.ok = False
        verdict.problem = f"more bytes than the session printed: {at} > {end}"
        verdict.offset = end


def _mismatch(
    verdict: Verdict, expected: Stream, at: int, data: bytes, want: bytes, position: int
) -> Verdict:
    first = next(
        (i for i, (a, b) in enumerate(zip(data, want, strict=False)) if a != b),
        min(len(data), len(want)),
    )
    offset = at + first
    verdict.ok = False
    verdict.offset = offset
    verdict.position = position + first
    if first >= len(want):
        verdict.problem = f"more bytes than the session printed, from {expected.where(offset)}"
        return verdict
    # Show the lines as received from the start of the line the difference is in.
    _, column = expected.line_at(offset)
    begin = max(0, first - column)
    received = describe_lines(data[begin : begin + 400])
    where = expected.where(offset)
    if first >= len(data):
        verdict.problem = f"the output stops short at {where}"
        return verdict
    verdict.problem = (
        f"{_what_came(expected, offset, data[first:])} at {where}; lines as received: {received}"
    )
    return verdict


def _what_came(expected: Stream, offset: int, came: bytes) -> str:
    """Where the bytes that came instead of those at `offset` are in what was printed."""
    probe = came[:64]
    src = expected.data.find(probe, offset + 1) if len(probe) >= 24 else -1
    if src < 0 and len(probe) >= 24:
        src = expected.data.rfind(probe, 0, offset)
    if src > offset:
        first, _ = expected.line_at(offset)
        last, _ = expected.line_at(src)
        return (
            f"a silent gap: {src - offset} bytes missing ({offset}..{src}: line {first} "
            f"stitched to line {last}, no notice)"
        )
    if 0 <= src < offset:
        return f"a repeat: the bytes from offset {src} came again"
    return "bytes the child never printed"
