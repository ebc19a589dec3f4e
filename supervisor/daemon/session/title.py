"""The window title a session's programs set (OSC 0 and OSC 2), even split across reads."""

import re
from collections.abc import Callable

_TITLE = re.compile(rb"\x1b\][02];([^\x07\x1b]*)(?:\x07|\x1b\\)")
MAX_TAIL = 4096


def last_title(data: bytes) -> str | None:
    """The last window title set by OSC 0 or OSC 2 in `data`, if any."""
    end = len(data)
    while (start := max(data.rfind(b"\x1b]0;", 0, end), data.rfind(b"\x1b]2;", 0, end))) >= 0:
        found = _TITLE.match(data, start)  # from the end: only the last title counts
        if found:
            return found[1].decode("utf-8", "replace")
        end = start
    return None


class TitleScanner:
    def __init__(self, changed: Callable[[str], None], title: str | None = None) -> None:
        self.title = title
        self._changed = changed
        self._tail = b""

    def feed(self, data: bytes) -> None:
        if not self._tail and (b"\x1b" not in data or b"\x1b]" not in data):  # memchr first
            return
        data = self._tail + data
        title = last_title(data)
        if title is not None and title != self.title:
            self.title = title
            self._changed(title)
        start = data.rfind(b"\x1b]")
        unterminated = start >= 0 and not any(t in data[start:] for t in (b"\x07", b"\x1b\\"))
        self._tail = data[start:] if unterminated and len(data) - start < MAX_TAIL else b""
