"""Benchmarks of pty-supervisor side by side with the raw PTY, dtach and tmux.

Run them all with `python -m bench`; see bench/README.md.
"""

from collections.abc import Callable

Progress = Callable[[str], None]
