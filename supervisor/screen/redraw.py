"""The redraw every engine shares: rows already rendered with their SGR attributes, then the
title, margins, cursor and modes, in the order a real terminal needs them."""

from collections.abc import Sequence

from supervisor.screen.modes import modes_sequence
from supervisor.screen.types import Snapshot


def compose(styled_rows: Sequence[str], snap: Snapshot) -> str:
    """A redraw for a terminal of `snap`'s size in its default state."""
    modes = snap.modes
    out = ["\x1b[0m"]
    if modes.alternate_screen:
        # before anything moves the cursor: leaving the alternate screen puts it back there
        out.append("\x1b[?1049h")
    out.append("\x1b[r\x1b[H\x1b[2J")
    for y, row in enumerate(styled_rows):
        if row:
            out.append(f"\x1b[{y + 1};1H{row}\x1b[0m")
    if snap.title:
        out.append(f"\x1b]2;{_printable(snap.title)}\x07")
    top = 1
    if modes.scroll_region:
        top, bottom = modes.scroll_region
        out.append(f"\x1b[{top};{bottom}r")
    out.append(modes_sequence(modes))
    cursor = snap.cursor
    row = cursor.y + 1
    if modes.origin:
        out.append("\x1b[?6h")
        row -= top - 1
    if not modes.autowrap:
        out.append("\x1b[?7l")
    if cursor.shape:
        out.append(f"\x1b[{cursor.shape} q")
    out.append(f"\x1b[{row};{cursor.x + 1}H")
    out.append("\x1b[?25h" if cursor.visible else "\x1b[?25l")
    return "".join(out)


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch >= " " and ch != "\x7f")


def sgr(
    fg: tuple[str, int] | None,
    bg: tuple[str, int] | None,
    flags: Sequence[int],
) -> str:
    """One SGR that sets exactly these attributes: colours as ('palette', n) or ('rgb', 0xRRGGBB);
    `flags` are SGR numbers (1 bold, 2 faint, 3 italic, 4 underline, 5 blink, 7 inverse, ...)."""
    codes = ["0", *(str(f) for f in flags)]
    codes += _color(fg, 30)
    codes += _color(bg, 40)
    return "\x1b[" + ";".join(codes) + "m"


def _color(color: tuple[str, int] | None, base: int) -> list[str]:
    if color is None:
        return []
    kind, value = color
    if kind == "palette":
        if value < 8:
            return [str(base + value)]
        if value < 16:
            return [str(base + 60 + value - 8)]
        return [str(base + 8), "5", str(value)]
    return [str(base + 8), "2", str(value >> 16), str((value >> 8) & 255), str(value & 255)]
