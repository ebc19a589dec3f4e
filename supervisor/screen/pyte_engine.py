"""The fallback engine: pyte, pure Python, everywhere, slow (below 1 MB/s of colored output).

pyte has no alternate screen and no scrollback of its own here: both are added below. Modes,
title and cursor shape come from the mode scanner.
"""

import copy
from collections import deque
from dataclasses import replace
from importlib.metadata import version
from typing import Any

import pyte
from pyte.screens import Char
from pyte.screens import Cursor as PyteCursor

from supervisor.screen.modes import ALTERNATE, ModeScanner
from supervisor.screen.redraw import compose, sgr
from supervisor.screen.types import Cursor, Snapshot

_NAMES = ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white")
_PALETTE = {name: i for i, name in enumerate(_NAMES)} | {"yellow": 3}
_PALETTE |= {f"bright{name}": i + 8 for name, i in list(_PALETTE.items())}


class _Screen(pyte.Screen):
    """pyte's screen with an alternate screen (DECSET 47/1047/1049) and a scrollback."""

    def __init__(self, columns: int, lines: int, scrollback: int) -> None:
        super().__init__(columns, lines)
        self.alternate = False
        self._saved: tuple[Any, PyteCursor] | None = None
        self.scrolled: deque[str] = deque(maxlen=scrollback)

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and set(ALTERNATE) & set(modes) and not self.alternate:
            self._saved = (copy.deepcopy(self.buffer), copy.copy(self.cursor))
            self.alternate = True
            self.erase_in_display(2)
        super().set_mode(*[m for m in modes if m not in ALTERNATE], **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and set(ALTERNATE) & set(modes) and self.alternate:
            self.alternate = False
            if self._saved is not None:
                buffer, cursor = self._saved
                self.buffer.clear()
                self.buffer.update(buffer)
                self.cursor = cursor
                self._saved = None
            self.dirty.update(range(self.lines))
        super().reset_mode(*[m for m in modes if m not in ALTERNATE], **kwargs)

    def set_margins(self, *args: Any, **kwargs: Any) -> None:
        super().set_margins(*args, **kwargs)
        self.cursor_position()  # pyte leaves the cursor where it was when the margins reset

    def index(self) -> None:
        top, bottom = self.margins or pyte.screens.Margins(0, self.lines - 1)
        if self.cursor.y == bottom and top == 0 and not self.alternate:
            line = self.buffer[0]
            self.scrolled.append("".join(line[x].data for x in range(self.columns)).rstrip())
        super().index()

    def report_device_attributes(self, *args: Any, **kwargs: Any) -> None:
        pass  # the model must never answer the child

    def report_device_status(self, *args: Any, **kwargs: Any) -> None:
        pass


class PyteEngine:
    name = "pyte"
    version = f"pyte {version('pyte')}"

    def __init__(self, cols: int, rows: int, scrollback: int = 10_000) -> None:
        self._cols, self._rows, self._scrollback = cols, rows, scrollback
        self._scanner = ModeScanner(rows)
        self._new()

    def _new(self) -> None:
        self._screen = _Screen(self._cols, self._rows, self._scrollback)
        self._stream = pyte.ByteStream(self._screen)

    @property
    def size(self) -> tuple[int, int]:
        return self._cols, self._rows

    def feed(self, data: bytes) -> None:
        self._scanner.feed(data)
        try:
            self._stream.feed(data)
        except Exception:  # pyte trips over some byte sequences (binary output)
            self._new()

    def resize(self, cols: int, rows: int) -> None:
        if (cols, rows) != (self._cols, self._rows):
            self._cols, self._rows = cols, rows
            self._screen.resize(rows, cols)
            self._screen.ensure_hbounds()
            self._screen.ensure_vbounds()
            self._scanner.resize(rows)

    def snapshot(self) -> Snapshot:
        screen = self._screen
        lines = [line.rstrip() for line in screen.display]
        x = min(screen.cursor.x, self._cols - 1)
        cursor = Cursor(x, screen.cursor.y, not screen.cursor.hidden, self._scanner.shape)
        modes = replace(self._scanner.modes(), alternate_screen=screen.alternate)
        return Snapshot(
            self._cols, self._rows, lines, cursor, self._scanner.title, modes, self.name
        )

    def history(self, n: int) -> list[str]:
        if n <= 0:
            return []
        scrolled = self._screen.scrolled
        return list(scrolled)[-n:]

    def styled_rows(self) -> list[str]:
        return [self._styled_row(y) for y in range(self._rows)]

    def ansi(self) -> str:
        return compose(self.styled_rows(), self.snapshot())

    def _styled_row(self, y: int) -> str:
        line = self._screen.buffer[y]
        last = max(
            (x for x, ch in line.items() if ch.data != " " or ch.bg != "default"), default=-1
        )
        out: list[str] = []
        current: str | None = None
        for x in range(last + 1):
            ch: Char = line[x]
            if not ch.data:
                continue  # the right half of a wide character
            style = _style(ch)
            if style != current:
                out.append(style)
                current = style
            out.append(ch.data)
        return "".join(out)


def _style(ch: Char) -> str:
    flags = [f for f, on in ((1, ch.bold), (3, ch.italics), (4, ch.underscore)) if on]
    flags += [f for f, on in ((5, ch.blink), (7, ch.reverse), (9, ch.strikethrough)) if on]
    return sgr(_color(ch.fg), _color(ch.bg), flags)


def _color(name: str) -> tuple[str, int] | None:
    if name in _PALETTE:
        return ("palette", _PALETTE[name])
    if len(name) == 6:
        try:
            return ("rgb", int(name, 16))
        except ValueError:
            return None
    return None
