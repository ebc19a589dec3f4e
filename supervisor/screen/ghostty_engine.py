"""The engine of Ghostty (libghostty-vt, through the pyghostty binding).

Everything comes from the library, read when asked: feeding is one call into it, which
releases the GIL (cffi), so it can run on a worker thread. The margins are read from its VT
formatter and the cursor shape from its render state, the only places its API shows them.
A steady block is its default shape, so DECSCUSR 2 reads back as 0.
"""

import re
import weakref
from typing import Any

import pyghostty
from pyghostty import ffi, lib
from pyghostty.core import init_sized

from supervisor.screen.redraw import compose
from supervisor.screen.types import MOUSE_MODES, Cursor, Modes, Snapshot

VT = lib.GHOSTTY_FORMATTER_FORMAT_VT
PLAIN = lib.GHOSTTY_FORMATTER_FORMAT_PLAIN
_REGION = re.compile(r"\x1b\[(\d+);(\d+)r")
# (visual style, blinking) -> DECSCUSR
_SHAPES = {
    (lib.GHOSTTY_RENDER_STATE_CURSOR_VISUAL_STYLE_BLOCK, True): 1,
    (lib.GHOSTTY_RENDER_STATE_CURSOR_VISUAL_STYLE_UNDERLINE, True): 3,
    (lib.GHOSTTY_RENDER_STATE_CURSOR_VISUAL_STYLE_UNDERLINE, False): 4,
    (lib.GHOSTTY_RENDER_STATE_CURSOR_VISUAL_STYLE_BAR, True): 5,
    (lib.GHOSTTY_RENDER_STATE_CURSOR_VISUAL_STYLE_BAR, False): 6,
}


class GhosttyEngine:
    name = "ghostty"
    version = f"pyghostty {pyghostty.__version__}"

    def __init__(self, cols: int, rows: int, scrollback: int = 10_000) -> None:
        self._term = pyghostty.Terminal(cols, rows, scrollback=scrollback)
        self._render = ffi.new("GhosttyRenderState*")
        if lib.ghostty_render_state_new(ffi.NULL, self._render):
            raise OSError("libghostty-vt: no render state")
        self._free_render = weakref.finalize(self, lib.ghostty_render_state_free, self._render[0])
        self._cols, self._rows = cols, rows

    @property
    def size(self) -> tuple[int, int]:
        return self._cols, self._rows

    def feed(self, data: bytes) -> None:
        self._term.feed(data)

    def resize(self, cols: int, rows: int) -> None:
        if (cols, rows) != (self._cols, self._rows):
            self._term.resize(cols, rows)
            self._cols, self._rows = cols, rows

    def _get(self, key: str, ctype: str) -> Any:
        return self._term.get(key, ctype)

    def _title(self) -> str:
        out = ffi.new("GhosttyString*")
        if lib.ghostty_terminal_get(self._term._t[0], lib.GHOSTTY_TERMINAL_DATA_TITLE, out):
            return ""
        return ffi.buffer(out.ptr, out.len)[:].decode("utf-8", "replace") if out.len else ""

    def modes(self) -> Modes:
        mode = self._term.mode
        return Modes(
            alternate_screen=self._get("active_screen", "int") == 1,
            mouse=tuple(m for m in MOUSE_MODES if mode(m)),
            bracketed_paste=mode(2004),
            focus_events=mode(1004),
            app_cursor_keys=mode(1),
            app_keypad=mode(66),
            origin=mode(6),
            autowrap=mode(7),
            scroll_region=self._region(),
        )

    def _region(self) -> tuple[int, int] | None:
        found = _REGION.search(self._format((0, 0), (0, 0), "active", VT, margins=True))
        return (int(found[1]), int(found[2])) if found else None

    def _shape(self) -> int:
        state = self._render[0]
        if lib.ghostty_render_state_update(state, self._term._t[0]):
            return 0
        style, blinking = ffi.new("int*"), ffi.new("bool*")
        lib.ghostty_render_state_get(
            state, lib.GHOSTTY_RENDER_STATE_DATA_CURSOR_VISUAL_STYLE, style
        )
        lib.ghostty_render_state_get(state, lib.GHOSTTY_RENDER_STATE_DATA_CURSOR_BLINKING, blinking)
        return _SHAPES.get((style[0], bool(blinking[0])), 0)

    def _format(
        self,
        start: tuple[int, int],
        end: tuple[int, int],
        tag: str,
        emit: int,
        margins: bool = False,
    ) -> str:
        opts = init_sized("GhosttyFormatterTerminalOptions")
        opts.emit = emit
        opts.extra.scrolling_region = margins
        opts.trim = True
        opts.unwrap = False
        selection = init_sized("GhosttySelection")
        selection.start = self._term.ref(*start, tag)[0]
        selection.end = self._term.ref(*end, tag)[0]
        opts.selection = selection
        formatter = ffi.new("GhosttyFormatter*")
        if lib.ghostty_formatter_terminal_new(ffi.NULL, formatter, self._term._t[0], opts[0]):
            return ""
        try:
            size = ffi.new("size_t*")
            lib.ghostty_formatter_format_buf(formatter[0], ffi.NULL, 0, size)
            buf = ffi.new("uint8_t[]", size[0] + 1)
            if lib.ghostty_formatter_format_buf(formatter[0], buf, len(buf), size):
                return ""
            return ffi.buffer(buf, size[0])[:].decode("utf-8", "replace")
        finally:
            lib.ghostty_formatter_free(formatter[0])

    def _screen_rows(self, emit: int) -> list[str]:
        text = self._format((0, 0), (self._cols - 1, self._rows - 1), "active", emit)
        rows = text.split("\r\n" if emit == VT else "\n")[: self._rows]
        return rows + [""] * (self._rows - len(rows))

    def snapshot(self) -> Snapshot:
        x, y = self._term.cursor
        cursor = Cursor(x, y, bool(self._get("cursor_visible", "bool")), self._shape())
        lines = [line.rstrip() for line in self._screen_rows(PLAIN)]
        return Snapshot(
            self._cols, self._rows, lines, cursor, self._title(), self.modes(), self.name
        )

    def history(self, n: int) -> list[str]:
        total = self._get("scrollback_rows", "size_t")
        if n <= 0 or total == 0 or self._get("active_screen", "int") == 1:
            return []
        first = max(0, total - n)
        text = self._format((0, first), (self._cols - 1, total - 1), "history", PLAIN)
        lines = [line.rstrip() for line in text.split("\n")]
        return lines + [""] * (total - first - len(lines))

    def styled_rows(self) -> list[str]:
        return self._screen_rows(VT)

    def ansi(self) -> str:
        return compose(self.styled_rows(), self.snapshot())


# cffi builds each C type the first time it is used, some 30 ms apiece: do it while the
# module loads rather than on the first attach.
GhosttyEngine(2, 2).ansi()
GhosttyEngine(2, 2).history(1)
