"""A redraw for a terminal of another size than the screen's: the screen drawn from the top
left, cut to the terminal's width, and the rows that hold the cursor when it is shorter."""

import re
import unicodedata
from dataclasses import replace

from supervisor.screen.redraw import compose
from supervisor.screen.types import Engine

_TOKEN = re.compile(r"\x1b\[[0-9;:?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.|.", re.S)


def width(ch: str) -> int:
    if unicodedata.combining(ch) or ch in "\u200b\u200c\u200d":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def crop(styled: str, cols: int) -> str:
    """`styled` (text with escape sequences) cut to `cols` columns; the sequences are kept,
    and a wide character that would straddle the edge is left out."""
    out: list[str] = []
    used = 0
    full = False
    for token in _TOKEN.findall(styled):
        if token.startswith("\x1b"):
            out.append(token)
            continue
        w = width(token)
        if full or used + w > cols:
            full = True
            continue
        used += w
        out.append(token)
    return "".join(out)


def fitted(engine: Engine, cols: int, rows: int) -> str:
    """What shows `engine`'s screen on a terminal of `cols` x `rows`."""
    snap = engine.snapshot()
    styled = engine.styled_rows()
    if (cols, rows) == (snap.cols, snap.rows):
        return compose(styled, snap)
    top = max(0, snap.cursor.y - rows + 1)
    shown = [crop(row, cols) for row in styled[top : top + rows]]
    cursor = replace(snap.cursor, x=min(snap.cursor.x, cols - 1), y=snap.cursor.y - top)
    modes = replace(snap.modes, scroll_region=None, origin=False)
    return compose(shown, replace(snap, cols=cols, rows=rows, cursor=cursor, modes=modes))
