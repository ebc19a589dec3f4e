"""Scrollback by absolute offset, checked against a plain bytes model."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from supervisor.daemon.session.ring import Ring

SMALL = 16 * 1024


class RingMachine(RuleBasedStateMachine):
    """The ring must behave like the whole output sliced to its last `capacity` bytes."""

    ring: Ring
    base: int
    model: bytearray

    @initialize(
        capacity=st.sampled_from([1, 2, 7, 100, 4096, SMALL, SMALL + 1, 3 * SMALL]),
        base=st.sampled_from([0, 1, 2**40 - 3]),
    )
    def setup(self, capacity: int, base: int) -> None:
        self.ring = self.make(capacity, base)
        self.base = base
        self.model = bytearray()

    def make(self, capacity: int, end: int) -> Ring:
        return Ring(capacity, end=end)

    @property
    def end(self) -> int:
        return self.base + len(self.model)

    @property
    def expected_start(self) -> int:
        return max(self.base, self.end - self.ring.capacity)

    @rule(data=st.binary(max_size=64))
    def append_small(self, data: bytes) -> None:
        assert self.ring.append(data) == self.end
        self.model += data

    @rule(size=st.sampled_from([SMALL - 1, SMALL, SMALL + 5, 50_000]), fill=st.integers(0, 255))
    def append_big(self, size: int, fill: int) -> None:
        data = bytes([fill]) * (size - 1) + bytes([(fill + 1) % 256])
        assert self.ring.append(data) == self.end
        self.model += data

    @rule(n=st.integers(1, 300))
    def append_bytes_one_at_a_time(self, n: int) -> None:
        for i in range(n):
            data = bytes([(len(self.model) + i) % 251])
            self.ring.append(data)
            self.model += data

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        since = data.draw(st.integers(max(0, self.base - 5), self.end + 5), label="since")
        limit = data.draw(st.none() | st.integers(0, 2 * self.ring.capacity + 5), label="limit")
        start, got = self.ring.read(since, limit)
        want_start = max(since, self.expected_start)
        if want_start >= self.end:
            assert (start, got) == (self.end, b"")
            return
        stop = self.end if limit is None else min(self.end, want_start + limit)
        assert start == want_start
        assert got == self.model[start - self.base : stop - self.base]
        assert len(got) <= self.ring.capacity

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def snapshot(self) -> None:
        start, got = self.ring.snapshot()
        assert start == self.expected_start
        assert got == self.model[start - self.base :]

    @invariant()
    def offsets(self) -> None:
        assert self.ring.end == self.end
        assert self.ring.start == self.expected_start

    @invariant()
    def bounded(self) -> None:
        self.memory_is_bounded()

    def memory_is_bounded(self) -> None:
        chunks = list(self.ring._chunks)
        assert sum(map(len, chunks)) == self.ring._size
        if chunks:
            assert self.ring._size - len(chunks[0]) < self.ring.capacity
            # a small chunk never follows a small one: at worst small and large alternate
            assert len(chunks) <= 2 * (self.ring.capacity // SMALL) + 3


TestRing = RingMachine.TestCase
TestRing.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


try:
    from supervisor.native._plane import Ring as NativeRing
except ImportError:  # the compiled byte plane is not built here
    NativeRing = None

RINGS = [Ring] + ([NativeRing] if NativeRing is not None else [])


@pytest.mark.parametrize("ring_type", RINGS, ids=lambda t: t.__module__)
@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5000), st.lists(st.binary(max_size=3000), max_size=20), st.data())
def test_random_appends_and_reads(ring_type, capacity, chunks, data):
    ring = ring_type(capacity)
    model = b""
    for chunk in chunks:
        ring.append(chunk)
        model += chunk
    since = data.draw(st.integers(0, len(model)))
    start, got = ring.read(since)
    assert start == max(since, len(model) - capacity)
    assert got == model[start:]
    assert ring.end - ring.start == min(ring.end, capacity)
    assert ring.snapshot() == (ring.start, model[len(model) - min(len(model), capacity) :])


def test_one_byte_appends_stay_in_few_chunks():
    ring = Ring(64 * 1024)
    for i in range(200_000):
        ring.append(bytes([i % 256]))
    assert len(ring._chunks) <= 64 * 1024 // SMALL + 2
    assert ring._size < 64 * 1024 + SMALL
    start, data = ring.read(0)
    assert start == 200_000 - 64 * 1024
    assert data == bytes(i % 256 for i in range(start, 200_000))


def test_big_appends_are_kept_without_copying():
    ring = Ring(1 << 20)
    data = bytes(100_000)
    ring.append(b"x" * SMALL)
    offset = ring.append(data)
    assert ring.read(offset) == (offset, data)
    assert ring.read(offset)[1] is data


def test_a_chunk_bigger_than_the_ring():
    ring = Ring(10)
    assert ring.append(bytes(range(100))) == 0
    assert ring.start == 90
    assert ring.read(0) == (90, bytes(range(90, 100)))
    assert ring.read(95, limit=2) == (95, bytes([95, 96]))


def test_reads_past_the_end_are_empty_at_the_end():
    ring = Ring(10)
    ring.append(b"abc")
    assert ring.read(3) == (3, b"")
    assert ring.read(99) == (3, b"")
    assert ring.read(0, limit=0) == (0, b"")


def test_an_empty_ring_starts_where_it_ends():
    ring = Ring(10, end=1234)
    assert (ring.start, ring.end) == (1234, 1234)
    assert ring.append(b"") == 1234
    assert ring.snapshot() == (1234, b"")


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        Ring(0)
