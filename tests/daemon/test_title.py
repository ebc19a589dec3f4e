"""The window title from a session's output: the last OSC 0 or 2, as a full regex pass over
the bytes would find it, however the output is cut into reads."""

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.daemon.session.title import TitleScanner, last_title, rfind_osc

_ANY_TITLE = re.compile(rb"\x1b\][02];([^\x07\x1b]*)(?:\x07|\x1b\\)")

PIECES = st.sampled_from(
    [
        b"\x1b]0;zero\x07",
        b"\x1b]2;two\x1b\\",
        b"\x1b]1;icon only\x07",
        b"\x1b]8;;http://x\x1b\\",
        b"\x1b]2;",
        b"\x1b]0",
        b"\x1b]",
        b"\x1b",
        b"\x07",
        b";",
        b"2;",
        b"plain text ",
        "ütf-8 títle".encode(),
    ]
)
OUTPUT = st.lists(st.one_of(PIECES, st.binary(max_size=8)), max_size=30).map(b"".join)


def reference(data: bytes) -> str | None:
    """The last match that a scan from the start would find, overlaps allowed."""
    found = None
    for start in range(len(data)):
        if (match := _ANY_TITLE.match(data, start)) is not None:
            found = match[1].decode("utf-8", "replace")
    return found


try:
    from supervisor.native._plane import rfind_osc as native_rfind_osc
except ImportError:
    native_rfind_osc = None

FINDERS = [
    pytest.param(rfind_osc, id="python"),
    pytest.param(
        native_rfind_osc,
        id="compiled",
        marks=pytest.mark.skipif(
            native_rfind_osc is None, reason="the compiled byte plane is not built here"
        ),
    ),
]


@pytest.mark.parametrize("finder", FINDERS)
@given(data=OUTPUT, end=st.integers(min_value=-2, max_value=300))
def test_the_finders_agree_with_rfind(finder, data: bytes, end: int) -> None:
    expected = data.rfind(b"\x1b]", 0, max(0, end))
    assert finder(data, max(0, end)) == expected


@pytest.mark.parametrize("finder", FINDERS)
@given(data=OUTPUT)
def test_last_title_is_the_last_one_in_the_bytes(finder, data: bytes) -> None:
    assert last_title(data, finder) == reference(data)


@pytest.mark.parametrize("finder", FINDERS)
@given(data=OUTPUT, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_the_scanner_sees_a_title_cut_across_reads(finder, data: bytes, cuts: list[int]) -> None:
    titles: list[str] = []
    scanner = TitleScanner(titles.append, rfind=finder)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        scanner.feed(data[a:b])
    expected = reference(data)
    assert scanner.title == expected
    assert (titles[-1] if titles else None) == expected
