"""How the CLI prints a command line: as shlex.join would, without loading shlex."""

import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cli.render import _command_line, status_text

words = st.text(st.characters(exclude_categories=()), max_size=8) | st.sampled_from(
    ["", "'", "a b", "é", "$x", "a_b@c%d+e=f:g,h.i/j-k", "~", "*", "\n"]
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(words, max_size=5))
def test_a_command_line_is_quoted_as_shlex_quotes_it(argv: list[str]) -> None:
    assert _command_line(argv) == shlex.join(argv)


def test_status_says_when_a_lane_of_the_byte_plane_stopped() -> None:
    path = {"byte_path": "native", "why": "compiled", "lanes": 2, "running": True, "stopped": []}
    assert status_text({"byte_path": path}) == "byte path:   native (compiled), 2 threads"
    path |= {"running": False, "stopped": ["poller_wait: Invalid argument"]}
    assert status_text({"byte_path": path}) == (
        "byte path:   native (compiled), 2 threads, 1 stopped (poller_wait: Invalid argument)"
    )
