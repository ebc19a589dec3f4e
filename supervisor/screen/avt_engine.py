"""asciinema's avt (Rust, through the pyavt binding). It takes text, not bytes, so output
goes through an incremental UTF-8 decoder first; the modes come from the mode scanner. The
binding holds the GIL while it parses, and some garbage makes it panic (an exception that is
not an Exception): the screen then starts over, as pyte's does."""

import codecs
from collections import deque

import avt

from supervisor.screen.modes import ModeScanner
from supervisor.screen.redraw import compose, sgr
from supervisor.screen.types import Cursor, Snapshot

_FLAGS = (
    (1, "bold"),
    (2, "faint"),
    (3, "italic"),
    (4, "underline"),
    (5, "blink"),
    (7, "inverse"),
    (9, "strikethrough"),
)


class AvtEngine:
    name = "avt"
    version = f"pyavt {avt.__version__}"

    def __init__(self, cols: int, rows: int, scrollback: int = 10_000) -> None:
        self._vt = avt.Vt(cols, rows, scrollback_limit=0)
        self.restarts = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._scanner = ModeScanner(rows)
        self._scrolled: deque[str] = deque(maxlen=scrollback)
        self._cols, self._rows = cols, rows

    @property
    def size(self) -> tuple[int, int]:
        return self._cols, self._rows

    def feed(self, data: bytes) -> None:
        self._scanner.feed(data)
        try:
            _, scrolled = self._vt.feed_str(self._decoder.decode(data))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # a Rust panic
            self._restart()
            return
        self._scrolled.extend(line.text.rstrip() for line in scrolled)

    def resize(self, cols: int, rows: int) -> None:
        if (cols, rows) != (self._cols, self._rows):
            self._cols, self._rows = cols, rows
            self._scanner.resize(rows)
            try:
                _, scrolled = self._vt.resize(cols, rows)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # a Rust panic
                self._restart()
                return
            self._scrolled.extend(line.text.rstrip() for line in scrolled)

    def _restart(self) -> None:
        self._vt = avt.Vt(self._cols, self._rows, scrollback_limit=0)
        self.restarts += 1

    def snapshot(self) -> Snapshot:
        lines = [line.text.rstrip() for line in self._vt.view()]
        vt_cursor = self._vt.cursor
        x = min(vt_cursor.col, self._cols - 1)
        cursor = Cursor(x, vt_cursor.row, vt_cursor.visible, self._scanner.shape)
        modes = self._scanner.modes()
        return Snapshot(
            self._cols, self._rows, lines, cursor, self._scanner.title, modes, self.name
        )

    def history(self, n: int) -> list[str]:
        return list(self._scrolled)[-n:] if n > 0 else []

    def styled_rows(self) -> list[str]:
        return [_styled(line) for line in self._vt.view()]

    def ansi(self) -> str:
        return compose(self.styled_rows(), self.snapshot())


def _styled(line: avt.Line) -> str:
    cells = line.cells
    last = len(cells) - 1
    while last >= 0 and cells[last].char == " " and cells[last].pen.background is None:
        last -= 1
    out: list[str] = []
    current: str | None = None
    for cell in cells[: last + 1]:
        if cell.width == 0:
            continue  # the right half of a wide character
        pen = cell.pen
        flags = [number for number, attr in _FLAGS if getattr(pen, attr)]
        style = sgr(_color(pen.foreground), _color(pen.background), flags)
        if style != current:
            out.append(style)
            current = style
        out.append(cell.char)
    return "".join(out)


def _color(color: avt.Color | None) -> tuple[str, int] | None:
    if color is None:
        return None
    if isinstance(color, avt.Color.RGB):
        return ("rgb", (color[0] << 16) | (color[1] << 8) | color[2])
    return ("palette", color[0])
