"""What an engine reports: the screen as plain rows, the cursor, the title and the modes."""

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

# DECSET numbers of the mouse modes: X10, normal, button-event, any-event tracking, then the
# UTF-8, SGR and urxvt encodings.
MOUSE_MODES = (9, 1000, 1002, 1003, 1005, 1006, 1015)


@dataclass(frozen=True)
class Cursor:
    x: int = 0
    y: int = 0
    visible: bool = True
    shape: int = 0  # DECSCUSR: 0 the terminal's default, 1-6 blinking/steady block, underline, bar


@dataclass(frozen=True)
class Modes:
    alternate_screen: bool = False
    mouse: tuple[int, ...] = ()  # the MOUSE_MODES that are set, in that order
    bracketed_paste: bool = False  # 2004
    focus_events: bool = False  # 1004
    app_cursor_keys: bool = False  # DECCKM, ?1
    app_keypad: bool = False  # DECKPAM (ESC =) versus DECKPNM (ESC >)
    origin: bool = False  # DECOM, ?6
    autowrap: bool = True  # DECAWM, ?7
    scroll_region: tuple[int, int] | None = None  # DECSTBM top and bottom, 1-based; None: all


@dataclass(frozen=True)
class Snapshot:
    cols: int
    rows: int
    lines: list[str]
    cursor: Cursor
    title: str
    modes: Modes
    engine: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["modes"]["mouse"] = list(self.modes.mouse)
        region = self.modes.scroll_region
        data["modes"]["scroll_region"] = list(region) if region else None
        return data


@runtime_checkable
class Engine(Protocol):
    """A terminal emulator that sees a session's output and can show or replay its screen."""

    name: str
    version: str

    @property
    def size(self) -> tuple[int, int]:
        """(cols, rows)."""
        ...

    def feed(self, data: bytes) -> None:
        """Parse output bytes; never raises on malformed input."""
        ...

    def resize(self, cols: int, rows: int) -> None: ...

    def snapshot(self) -> Snapshot: ...

    def history(self, n: int) -> list[str]:
        """The last `n` lines that scrolled off the top of the main screen, oldest first."""
        ...

    def ansi(self) -> str:
        """Text that reproduces screen, colours, cursor and modes on a fresh terminal of the
        same size."""
        ...

    def styled_rows(self) -> list[str]:
        """Each row of the screen as text with its SGR attributes (what `ansi` draws)."""
        ...
