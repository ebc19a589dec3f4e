"""How the CLI prints a command line: as shlex.join would, without loading shlex."""

import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cli.render import _command_line

words = st.text(st.characters(exclude_categories=()), max_size=8) | st.sampled_from(
    ["", "'", "a b", "é", "$x", "a_b@c%d+e=f:g,h.i/j-k", "~", "*", "\n"]
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(words, max_size=5))
def test_a_command_line_is_quoted_as_shlex_quotes_it(argv: list[str]) -> None:
    assert _command_line(argv) == shlex.join(argv)
