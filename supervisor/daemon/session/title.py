"""The window title a session's programs set (OSC 0 and OSC 2), even split across reads."""

import re
from collections.abc import Callable

_TITLE = re.compile(rb"\x1b\][02];([^\x07\x1b]*)(?:\x07|\x1b\\)")
MAX_TAIL = 4096


def last_title(data: bytes) -> str | None:
    """The last window title set by OSC 0 or OSC 2 in `data`, if any."""
    end = len(data)
    # from the end, one pass over the bytes: only the last title counts
    while (start := data.rfind(b"\x1b]", 0, end)) >= 0:
        if data[start + 2 : start + 4] in (b"0;", b"2;") and (found := _TITLE.match(data, start)):
            return found[1].decode("utf-8", "replace")
        end = start
    return None


class TitleScanner:
    def __init__(self, changed: Callable[[str], None], title: str | None = None) -> None:
        self.title = title
        self._changed = changed
        self._tail = b""

    def feed(self, data: bytes) -> None:
        if not self._tail and b"\x1b" not in data:  # memchr first
            return
        data = self._tail + data
        self._tail = b""
        if b"\x1b]" in data:
            title = last_title(data)
            if title is not None and title != self.title:
                self.title = title
                self._changed(title)
            start = data.rfind(b"\x1b]")
            open_ = not any(t in data[start:] for t in (b"\x07", b"\x1b\\"))
            if open_ and len(data) - start < MAX_TAIL:
                self._tail = data[start:]
                return
        if data.endswith(b"\x1b"):  # perhaps the start of the next one
            self._tail = b"\x1b"
