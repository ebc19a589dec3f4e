"""The compiled ring behaves like the Python one: the whole output sliced to its last
`capacity` bytes, by absolute offset."""

import pytest
from hypothesis import settings

from supervisor.daemon.session.ring import Ring as PyRing
from tests.daemon.test_ring import RingMachine

try:
    from supervisor.native._plane import Ring
except ImportError:
    Ring = None

pytestmark = pytest.mark.skipif(
    Ring is None, reason="the compiled byte plane is not built here (no C compiler or headers)"
)


class NativeRingMachine(RingMachine):
    def make(self, capacity: int, end: int):
        return Ring(capacity, end)

    def memory_is_bounded(self) -> None:
        assert self.ring.allocated <= self.ring.capacity
        assert self.ring.allocated >= min(self.ring.capacity, self.end - self.ring.start)


TestNativeRing = NativeRingMachine.TestCase
TestNativeRing.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


def test_memory_grows_with_the_output_only():
    ring = Ring(1 << 20)
    assert ring.allocated == 0
    ring.append(b"$ ")
    assert ring.allocated == 4096
    ring.append(bytes(3 << 20))
    assert ring.allocated == 1 << 20
    assert ring.start == (3 << 20) + 2 - (1 << 20)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="capacity must be positive"):
        Ring(0)
    with pytest.raises(ValueError, match="must not be negative"):
        Ring(10, -1)
    with pytest.raises(TypeError):
        Ring(10).append("text")


@pytest.mark.parametrize("ring_type", [PyRing, Ring], ids=["python", "native"])
def test_a_limit_past_the_largest_offset_reads_to_the_end(ring_type):
    ring = ring_type(10)
    ring.append(b"0123456789")
    assert ring.read(5, 2**63 - 1) == (5, b"56789")
    assert ring.read(5, 2**63 - 6) == (5, b"56789")


def test_a_ring_is_initialised_once():
    ring = Ring(10)
    ring.append(b"abc")
    with pytest.raises(RuntimeError, match="once"):
        ring.__init__(4, 100)
    assert (ring.capacity, ring.read(0)) == (10, (0, b"abc"))
