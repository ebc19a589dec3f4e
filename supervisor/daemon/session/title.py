"""The window title a session's programs set (OSC 0 and OSC 2), even split across reads."""

import re
from collections.abc import Callable

_TITLE = re.compile(rb"\x1b\][02];([^\x07\x1b]*)(?:\x07|\x1b\\)")
MAX_TAIL = 4096


Finder = Callable[[bytes, int], int]
"""Where the last OSC (ESC ]) before an offset starts, or -1: bytes.rfind, or the compiled
byte plane's `rfind_osc`, three times as fast on random bytes."""


def rfind_osc(data: bytes, end: int) -> int:
    return data.rfind(b"\x1b]", 0, end)


def last_title(data: bytes, rfind: Finder = rfind_osc, end: int | None = None) -> str | None:
    """The last window title set by OSC 0 or OSC 2 in `data`, if any; `end`: where the
    last OSC starts, if known."""
    start = rfind(data, len(data)) if end is None else end
    # from the end, one pass over the bytes: only the last title counts
    while start >= 0:
        if data[start + 2 : start + 4] in (b"0;", b"2;") and (found := _TITLE.match(data, start)):
            return found[1].decode("utf-8", "replace")
        start = rfind(data, start)
    return None


class TitleScanner:
    def __init__(
        self, changed: Callable[[str], None], title: str | None = None, rfind: Finder = rfind_osc
    ) -> None:
        self.title = title
        self._changed = changed
        self._rfind = rfind
        self._tail = b""

    def feed(self, data: bytes) -> None:
        if not self._tail and b"\x1b" not in data:  # memchr first
            return
        data = self._tail + data
        self._tail = b""
        start = self._rfind(data, len(data))
        if start >= 0:
            title = last_title(data, self._rfind, start)
            if title is not None and title != self.title:
                self.title = title
                self._changed(title)
            open_ = not any(t in data[start:] for t in (b"\x07", b"\x1b\\"))
            if open_ and len(data) - start < MAX_TAIL:
                self._tail = data[start:]
                return
        if data.endswith(b"\x1b"):  # perhaps the start of the next one
            self._tail = b"\x1b"
