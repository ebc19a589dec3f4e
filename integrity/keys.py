"""Keys typed into a recording child: each writer types a stream of its own alphabet, so that
the file the child recorded splits back into what each writer sent, byte by byte.

A stream is numbered records: eight digits of the record's number and two of a checksum
(both in the writer's own ten symbols), then the writer's terminator. Printable ASCII and the
bytes 0xA0-0xFF give 17 alphabets of 11 bytes; none holds a control byte (the detach key
among them), so the bytes pass a raw terminal untouched."""

from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass, field

RECORD = 11
_POOL = bytes(range(0x21, 0x7F)) + bytes(range(0xA0, 0x100))
ALPHABETS = [_POOL[i * RECORD : (i + 1) * RECORD] for i in range(len(_POOL) // RECORD)]


def _record(table: bytes, terminator: bytes, n: int) -> bytes:
    digits = b"%08d" % (n % 100_000_000)
    check = b"%02d" % (sum(digits) * 7 % 97)
    return (digits + check).translate(table) + terminator


def records(alphabet: bytes, first: int, count: int) -> bytes:
    """Records `first`..`first+count-1` of the stream in `alphabet`."""
    table = bytes.maketrans(b"0123456789", alphabet[:10])
    terminator = alphabet[10:11]
    return b"".join(_record(table, terminator, n) for n in range(first, first + count))


def decode(alphabet: bytes, record: bytes) -> int | None:
    """The number of a whole record in `alphabet`, else None."""
    if len(record) != RECORD or record[-1:] != alphabet[10:11]:
        return None
    table = bytes.maketrans(alphabet[:10], b"0123456789")
    text = record[:10].translate(table)
    if not text.isdigit():
        return None
    digits = text[:8]
    if b"%02d" % (sum(digits) * 7 % 97) != text[8:]:
        return None
    return int(digits)


@dataclass
class Sent:
    """One piece of a stream handed to a writer: stream bytes `start`..`end`."""

    start: int
    end: int
    step: int
    how: str
    whole: bool
    """It goes as one write request: it must reach the child with nothing in its middle."""
    settled: bool = False
    """Its writer finished; `failed` says whether it said so with an error."""
    failed: bool = False


@dataclass
class KeyStream:
    """What one writer (or writers one after the other) typed into one session."""

    name: str
    index: int
    sent: list[Sent] = field(default_factory=list)
    length: int = 0
    tainted_at: int | None = None
    """A writer of it failed (told with an error) here: the bytes after may be missing."""
    _cache: bytearray = field(default_factory=bytearray, repr=False)

    @property
    def alphabet(self) -> bytes:
        return ALPHABETS[self.index]

    def _ensure(self, end: int) -> None:
        have = len(self._cache) // RECORD
        need = end // RECORD + 1
        if need > have:
            self._cache += records(self.alphabet, have, need - have)

    def expected(self, upto: int | None = None) -> bytes:
        end = self.length if upto is None else upto
        self._ensure(end)
        return bytes(self._cache[:end])

    def take(self, size: int, step: int, how: str, whole: bool) -> tuple[bytes, Sent]:
        start = self.length
        self.length += size
        piece = Sent(start, self.length, step, how, whole)
        self.sent.append(piece)
        self._ensure(self.length)
        return bytes(self._cache[start : self.length]), piece

    def describe(self, position: int) -> str:
        return f"stream {self.name} byte {position} (record {position // RECORD})"


class StreamPool:
    """The alphabets of one session's writers; a stream whose writer failed is retired."""

    def __init__(self) -> None:
        self.streams: list[KeyStream] = []
        self._lock = threading.Lock()

    def new(self, name: str) -> KeyStream:
        with self._lock:
            if len(self.streams) >= len(ALPHABETS):
                raise RuntimeError("out of alphabets for another key stream")
            stream = KeyStream(name, len(self.streams))
            self.streams.append(stream)
            return stream

    @property
    def total(self) -> int:
        return sum(s.length for s in self.streams)


@dataclass
class KeyVerdict:
    ok: bool = True
    whole_ok: bool = True
    problem: str = ""
    whole_problem: str = ""
    step: int | None = None
    whole_step: int | None = None
    received: int = 0
    sent: int = 0
    notes: list[str] = field(default_factory=list)


def _runs(recorded: bytes, alphabet: bytes) -> list[tuple[int, int]]:
    pattern = re.compile(b"[" + re.escape(alphabet) + b"]+")
    return [m.span() for m in pattern.finditer(recorded)]


def _first_difference(got: bytes, want: bytes) -> int:
    for i, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return i
    return min(len(got), len(want))


def _explain(got: bytes, want: bytes, at: int) -> str:
    """What came where stream byte `at` was due: found elsewhere in the stream, or not."""
    probe = got[at : at + 2 * RECORD]
    src = want.find(probe)
    due = f"record {at // RECORD} (byte {at})"
    if src > at:
        return (
            f"the bytes of record {src // RECORD} (byte {src}) came where {due} was due: "
            f"later keys overtook {src - at} bytes (or those were lost)"
        )
    if 0 <= src < at:
        return f"the bytes of record {src // RECORD} (byte {src}) came again where {due} was due"
    return f"bytes found nowhere in the stream came where {due} was due: {probe!r}"


def check(recorded: bytes, pool: StreamPool) -> KeyVerdict:
    """Every stream's bytes, picked out of what the child recorded, must be what was sent,
    once and in order (a stream whose writer failed: a prefix of it); nothing else may be
    there; and every piece sent as one request must be one unbroken run."""
    verdict = KeyVerdict(sent=pool.total, received=len(recorded))
    known = set()
    for stream in pool.streams:
        known.update(stream.alphabet)
        want = stream.expected()
        table = bytes(range(256))
        keep = bytes(set(range(256)) - set(stream.alphabet))
        got = recorded.translate(table, keep)
        limit = stream.tainted_at
        if limit is not None and limit <= len(got) < len(want) and want.startswith(got):
            verdict.notes.append(
                f"{stream.name}: {len(want) - len(got)} bytes of a writer that failed "
                "(and said so) did not arrive"
            )
            want = want[: len(got)]
        if got != want and verdict.ok:
            at = _first_difference(got, want)
            piece = next((p for p in stream.sent if p.start <= at < p.end), None)
            verdict.ok = False
            verdict.step = piece.step if piece else None
            if at >= len(got):
                verdict.problem = (
                    f"{stream.name}: {len(want) - len(got)} of {len(want)} bytes never reached "
                    f"the child, from {stream.describe(at)} ({piece.how if piece else '?'})"
                )
            elif at >= len(want):
                verdict.problem = (
                    f"{stream.name}: {len(got) - len(want)} bytes more than were typed, "
                    f"from {stream.describe(at)}"
                )
            else:
                verdict.problem = (
                    f"{stream.name} ({piece.how if piece else '?'}): {_explain(got, want, at)}"
                )
        if verdict.whole_ok:
            _check_whole(verdict, recorded, stream, len(got))
    stray = recorded.translate(bytes(range(256)), bytes(known))
    if stray and verdict.ok:
        verdict.ok = False
        verdict.problem = f"{len(stray)} bytes no writer typed reached the child: {stray[:40]!r}"
    return verdict


def _check_whole(verdict: KeyVerdict, recorded: bytes, stream: KeyStream, got: int) -> None:
    runs = _runs(recorded, stream.alphabet)
    # Map stream positions to runs: run i covers stream bytes [cum[i], cum[i+1]).
    cum = [0]
    for start, end in runs:
        cum.append(cum[-1] + end - start)
    for piece in stream.sent:
        if not piece.whole or piece.end > got or piece.end - piece.start < 2:
            continue
        first = bisect.bisect_right(cum, piece.start) - 1
        last = bisect.bisect_right(cum, piece.end - 1) - 1
        if first != last:
            verdict.whole_ok = False
            verdict.whole_step = piece.step
            cut = runs[first][1]
            intruder = recorded[cut : cut + 12]
            verdict.whole_problem = (
                f"{stream.name}: the request of {piece.how} (bytes {piece.start}..{piece.end}) "
                f"reached the child in {last - first + 1} pieces; other bytes came in at "
                f"{stream.describe(cum[first + 1])}: {intruder!r}"
            )
            return
