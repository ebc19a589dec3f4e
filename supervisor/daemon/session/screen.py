"""What a person looking at a session's terminal sees: a VT model fed lazily.

pyte parses below 1 MB/s, far slower than a PTY produces output, so the model is never
fed on the output path. It catches up when the terminal goes quiet, and on demand (a
screen request, an attach). When bytes it has not parsed have already left the ring, it is
rebuilt from the last full reset in the ring, else from the tail, and says it is not exact.
"""

import copy
import re
from typing import Any

import pyte
from pyte.screens import Char, Cursor

ALTERNATE_MODES = frozenset({1049, 1047, 47})
# A full reset (RIS) or entering the alternate screen: the screen before it does not matter.
_RESET = re.compile(rb"\x1bc|\x1b\[\?(?:1049|1047|47)h")
TAIL_FOR_REBUILD = 64 * 1024
_SGR_COLORS = {
    "black": 0,
    "red": 1,
    "green": 2,
    "brown": 3,
    "yellow": 3,
    "blue": 4,
    "magenta": 5,
    "cyan": 6,
    "white": 7,
}


class _Screen(pyte.Screen):
    """pyte's screen with an alternate screen buffer (DECSET 47/1047/1049)."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__(columns, lines)
        self.alternate = False
        self._saved: tuple[Any, Cursor] | None = None

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and ALTERNATE_MODES & set(modes) and not self.alternate:
            self._saved = (copy.deepcopy(self.buffer), copy.copy(self.cursor))
            self.alternate = True
            self.erase_in_display(2)
        super().set_mode(*[m for m in modes if m not in ALTERNATE_MODES], **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and ALTERNATE_MODES & set(modes) and self.alternate:
            self.alternate = False
            if self._saved is not None:
                buffer, cursor = self._saved
                self.buffer.clear()
                self.buffer.update(buffer)
                self.cursor = cursor
                self._saved = None
            self.dirty.update(range(self.lines))
        super().reset_mode(*[m for m in modes if m not in ALTERNATE_MODES], **kwargs)

    def set_title(self, param: str) -> None:
        super().set_title(param)

    def report_device_attributes(self, *args: Any, **kwargs: Any) -> None:
        pass  # the model must never answer the child

    def report_device_status(self, *args: Any, **kwargs: Any) -> None:
        pass


class ScreenModel:
    def __init__(self, cols: int, rows: int) -> None:
        self.cols = cols
        self.rows = rows
        self.offset = 0
        self.exact = True
        self._new(cols, rows)

    def _new(self, cols: int, rows: int) -> None:
        self.screen = _Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)

    def feed(self, data: bytes) -> None:
        try:
            self.stream.feed(data)
        except Exception:  # pyte trips over some byte sequences (binary output)
            self._new(self.cols, self.rows)
            self.exact = False
        self.offset += len(data)

    def restart(self, start: int, data: bytes) -> int:
        """Start over on `data`, the ring's contents from absolute offset `start`: from its
        last full reset if it has one, else from the start of a line near its tail. Returns
        the index in `data` to feed from; the model is exact only if nothing before that
        index can matter."""
        self._new(self.cols, self.rows)
        resets = list(_RESET.finditer(data))
        if resets:
            begin = resets[-1].start()
            self.exact = True
        elif start == 0 and len(data) <= TAIL_FOR_REBUILD:
            begin = 0
            self.exact = True
        else:
            begin = max(0, len(data) - TAIL_FOR_REBUILD)
            newline = data.find(b"\n", begin)
            if 0 <= newline < len(data) - 1:
                begin = newline + 1
            self.exact = False
        self.offset = start + begin
        return begin

    def resize(self, cols: int, rows: int) -> None:
        if (cols, rows) != (self.cols, self.rows):
            self.cols, self.rows = cols, rows
            self.screen.resize(rows, cols)

    def snapshot(self) -> dict[str, Any]:
        screen = self.screen
        return {
            "lines": [line.rstrip() for line in screen.display],
            "cursor": {"x": screen.cursor.x, "y": screen.cursor.y, "hidden": screen.cursor.hidden},
            "cols": screen.columns,
            "rows": screen.lines,
            "alternate": screen.alternate,
            "exact": self.exact,
        }

    def ansi(self) -> str:
        """Text that redraws this screen, colours included, on a terminal of the same size."""
        screen = self.screen
        out = ["\x1b[?1049h" if screen.alternate else "", "\x1b[H\x1b[2J\x1b[0m"]
        for y in range(screen.lines):
            line = screen.buffer[y]
            out.append(f"\x1b[{y + 1};1H")
            current: tuple[Any, ...] | None = None
            last = max(
                (x for x, ch in line.items() if ch.data != " " or ch.bg != "default"), default=-1
            )
            for x in range(last + 1):
                ch: Char = line[x]
                style = (ch.fg, ch.bg, ch.bold, ch.italics, ch.underscore, ch.reverse)
                if style != current:
                    out.append(_sgr(ch))
                    current = style
                out.append(ch.data)
            out.append("\x1b[0m")
        cursor = screen.cursor
        out.append(f"\x1b[{cursor.y + 1};{cursor.x + 1}H")
        out.append("\x1b[?25l" if cursor.hidden else "\x1b[?25h")
        return "".join(out)


def _sgr(ch: Char) -> str:
    codes = ["0"]
    if ch.bold:
        codes.append("1")
    if ch.italics:
        codes.append("3")
    if ch.underscore:
        codes.append("4")
    if ch.reverse:
        codes.append("7")
    codes += _color(ch.fg, 30)
    codes += _color(ch.bg, 40)
    return "\x1b[" + ";".join(codes) + "m"


def _color(name: str, base: int) -> list[str]:
    if name == "default":
        return []
    if name in _SGR_COLORS:
        return [str(base + _SGR_COLORS[name])]
    if name.startswith("bright"):
        plain = name[len("bright") :]
        if plain in _SGR_COLORS:
            return [str(base + 60 + _SGR_COLORS[plain])]
    if re.fullmatch(r"[0-9a-fA-F]{6}", name):
        r, g, b = (int(name[i : i + 2], 16) for i in (0, 2, 4))
        return [str(base + 8), "2", str(r), str(g), str(b)]
    return []
