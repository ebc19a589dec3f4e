"""A scanner that follows the terminal modes in a stream of output bytes, for engines whose
API does not report them, and the sequences that set or clear those modes on a real terminal.

It looks only at the few sequences that change a mode, with one compiled pattern over each
chunk; a sequence cut between two chunks is kept and completed by the next one.
"""

import re

from supervisor.screen.types import MOUSE_MODES, Modes

ALTERNATE = (1049, 1047, 47)
TRACKED = frozenset({1, 6, 7, 25, 1004, 2004, *ALTERNATE, *MOUSE_MODES})
DEFAULT_SET = frozenset({7, 25})
_LONGEST_TAIL = 4096  # an unfinished OSC title longer than this is dropped

_PATTERN = re.compile(
    rb"\x1b(?:"
    rb"\[\?(?P<dec>[0-9;]*)(?P<decop>[hl])"
    rb"|\[(?P<stbm>[0-9;]*)r"
    rb"|\[(?P<shape>[0-9]*) q"
    rb"|\[!(?P<str>p)"
    rb"|(?P<esc>[=>c])"
    rb"|\][02];(?P<title>[^\x07\x1b]*)(?:\x07|\x1b\\)"
    rb")"
)


class ModeScanner:
    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._tail = b""
        self.reset()

    def reset(self) -> None:
        self.set_modes: set[int] = set(DEFAULT_SET)
        self.keypad = False
        self.region: tuple[int, int] | None = None
        self.shape = 0
        self.title = ""

    def resize(self, rows: int) -> None:
        self.rows = rows
        self.region = None  # terminals reset the margins on a resize

    def feed(self, data: bytes) -> None:
        if self._tail:
            data = self._tail + data
            self._tail = b""
        end = 0
        for match in _PATTERN.finditer(data):
            self._apply(match)
            end = match.end()
        osc = data.rfind(b"\x1b]", end)  # its terminator may begin with ESC too
        last = osc if osc >= 0 else data.rfind(b"\x1b", end)
        if last >= 0 and len(data) - last < _LONGEST_TAIL:
            self._tail = data[last:]

    def _apply(self, match: re.Match[bytes]) -> None:
        kind = match.lastgroup
        if kind == "decop":
            on = match["decop"] == b"h"
            for part in match["dec"].split(b";"):
                if part.isdigit() and int(part) in TRACKED:
                    (self.set_modes.add if on else self.set_modes.discard)(int(part))
        elif kind == "stbm":
            self._margins(match["stbm"])
        elif kind == "shape":
            value = int(match["shape"] or 0)
            self.shape = value if value <= 6 else self.shape
        elif kind == "str":
            self.set_modes -= {1, 6}
            self.set_modes.add(25)
            self.keypad = False
            self.region = None
        elif kind == "esc":
            char = match["esc"]
            if char == b"c":
                self.reset()
            else:
                self.keypad = char == b"="
        elif kind == "title":
            self.title = match["title"].decode("utf-8", "replace")

    def _margins(self, params: bytes) -> None:
        parts = params.split(b";")
        top = int(parts[0]) if parts[0].isdigit() and int(parts[0]) > 0 else 1
        bottom = self.rows
        if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) > 0:
            bottom = min(int(parts[1]), self.rows)
        if top < bottom:
            self.region = None if (top, bottom) == (1, self.rows) else (top, bottom)

    @property
    def alternate(self) -> bool:
        return any(mode in self.set_modes for mode in ALTERNATE)

    def modes(self) -> Modes:
        return Modes(
            alternate_screen=self.alternate,
            mouse=tuple(m for m in MOUSE_MODES if m in self.set_modes),
            bracketed_paste=2004 in self.set_modes,
            focus_events=1004 in self.set_modes,
            app_cursor_keys=1 in self.set_modes,
            app_keypad=self.keypad,
            origin=6 in self.set_modes,
            autowrap=7 in self.set_modes,
            scroll_region=self.region,
        )


def modes_sequence(modes: Modes) -> str:
    """Sets every input mode in `modes` on a terminal in its default state (the screen modes,
    alternate screen, origin, wrap and margins, belong to the redraw that positions them)."""
    out = [f"\x1b[?{mode}h" for mode in modes.mouse]
    if modes.bracketed_paste:
        out.append("\x1b[?2004h")
    if modes.focus_events:
        out.append("\x1b[?1004h")
    if modes.app_cursor_keys:
        out.append("\x1b[?1h")
    if modes.app_keypad:
        out.append("\x1b=")
    return "".join(out)


def detach_sequence(modes: Modes | None = None) -> str:
    """Puts a user's terminal back to normal after an attached program: margins reset without
    moving the cursor, main screen, every mouse mode, focus events and bracketed paste off,
    normal cursor keys and keypad, autowrap on, cursor visible in the default shape,
    attributes reset. The cursor save slot it uses is also what leaving the alternate screen
    restores, so on the main screen the cursor stays where it is. Origin mode is cleared only
    when `modes` says it is on, since clearing it moves the cursor home."""
    origin_off = "\x1b[?6l" if modes is not None and modes.origin else ""
    mouse_off = "".join(f"\x1b[?{mode}l" for mode in MOUSE_MODES)
    return (
        origin_off
        + "\x1b7\x1b[r\x1b8\x1b[?1049l"
        + mouse_off
        + "\x1b[?1004l\x1b[?2004l\x1b[?1l\x1b>\x1b[?7h\x1b[0 q\x1b[?25h\x1b[0m"
    )
