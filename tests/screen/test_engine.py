"""The engine interface, for every engine: text, cursor, title, modes, history, resize, the
redraw round trip, and garbage."""

import random
import re

import pytest

from supervisor.screen import Engine, Modes, Snapshot, open_engine

COLS, ROWS = 40, 10


def fed(name: str, *chunks: bytes, cols: int = COLS, rows: int = ROWS) -> Engine:
    engine = open_engine(cols, rows, name=name)
    for chunk in chunks:
        engine.feed(chunk)
    return engine


def test_is_an_engine(engine_name):
    engine = open_engine(COLS, ROWS, name=engine_name)
    assert isinstance(engine, Engine)
    assert engine.name == engine_name
    assert engine.version
    assert engine.size == (COLS, ROWS)


def test_plain_text_and_cursor(engine_name):
    snap = fed(engine_name, b"hello\r\n\x1b[31mred\x1b[0m and \x1b[1mbold\x1b[0m").snapshot()
    assert snap.lines[:2] == ["hello", "red and bold"]
    assert snap.lines[2:] == [""] * (ROWS - 2)
    assert (snap.cursor.x, snap.cursor.y, snap.cursor.visible) == (12, 1, True)
    assert snap.engine == engine_name
    assert snap.to_dict()["lines"] == snap.lines


def test_wide_combining_and_tabs(engine_name):
    snap = fed(engine_name, "a\u4e2d\u6587b\r\ne\u0301x\r\n1\t2".encode()).snapshot()
    assert snap.lines[0] == "a\u4e2d\u6587b"
    assert snap.lines[1] in ("e\u0301x", "\u00e9x")
    assert snap.lines[2] == "1       2"
    assert snap.cursor.x == 9


def test_title(engine_name):
    engine = fed(engine_name, b"\x1b]0;first\x07\x1b]2;second\x1b\\")
    assert engine.snapshot().title == "second"


MODES = [
    (b"\x1b[?1049h", "alternate_screen", True),
    (b"\x1b[?47h", "alternate_screen", True),
    (b"\x1b[?2004h", "bracketed_paste", True),
    (b"\x1b[?1004h", "focus_events", True),
    (b"\x1b[?1h", "app_cursor_keys", True),
    (b"\x1b=", "app_keypad", True),
    (b"\x1b[?6h", "origin", True),
    (b"\x1b[?7l", "autowrap", False),
    (b"\x1b[3;7r", "scroll_region", (3, 7)),
]


@pytest.mark.parametrize(("seq", "field", "value"), MODES, ids=[m[1] for m in MODES])
def test_mode_set_and_reset(engine_name, seq, field, value):
    engine = fed(engine_name, seq)
    assert getattr(engine.snapshot().modes, field) == value
    undo = {b"=": b"\x1b>", b"r": b"\x1b[r"}.get(
        seq[-1:], seq[:-1] + (b"l" if seq[-1:] == b"h" else b"h")
    )
    engine.feed(undo)
    assert getattr(engine.snapshot().modes, field) == getattr(Modes(), field)


def test_mouse_modes(engine_name):
    engine = fed(engine_name, b"\x1b[?1000h\x1b[?1002h\x1b[?1006h\x1b[?1015h\x1b[?1005h")
    assert set(engine.snapshot().modes.mouse) >= {1000, 1002, 1006}
    engine.feed(b"\x1b[?1003h\x1b[?1000l\x1b[?1002l\x1b[?1005l\x1b[?1015l")
    assert set(engine.snapshot().modes.mouse) == {1003, 1006}
    engine.feed(b"\x1b[?1003l\x1b[?1006l")
    assert engine.snapshot().modes.mouse == ()


def test_cursor_visibility_and_shape(engine_name):
    engine = fed(engine_name, b"\x1b[?25l\x1b[6 q")
    assert (engine.snapshot().cursor.visible, engine.snapshot().cursor.shape) == (False, 6)
    engine.feed(b"\x1b[?25h\x1b[3 q")
    assert (engine.snapshot().cursor.visible, engine.snapshot().cursor.shape) == (True, 3)
    engine.feed(b"\x1b[0 q")
    assert engine.snapshot().cursor.shape == 0


def test_full_reset_clears_modes(engine_name):
    engine = fed(engine_name, b"text\x1b[?2004h\x1b[?1000h\x1b[?1h\x1b=\x1b]2;t\x07\x1bc")
    snap = engine.snapshot()
    assert snap.lines == [""] * ROWS
    assert (snap.modes.bracketed_paste, snap.modes.mouse, snap.modes.app_cursor_keys) == (
        False,
        (),
        False,
    )
    assert not snap.modes.app_keypad


def test_alternate_screen_keeps_the_main_one(engine_name):
    engine = fed(engine_name, b"main text\r\n\x1b[?1049h\x1b[H\x1b[2Jfull screen app")
    snap = engine.snapshot()
    assert snap.modes.alternate_screen
    assert snap.lines[0] == "full screen app"
    engine.feed(b"\x1b[?1049l")
    snap = engine.snapshot()
    assert not snap.modes.alternate_screen
    assert snap.lines[:2] == ["main text", ""]
    assert (snap.cursor.x, snap.cursor.y) == (0, 1)


def test_history(engine_name):
    engine = fed(engine_name, b"".join(b"line %d\r\n" % i for i in range(100)))
    assert engine.snapshot().lines[0] == "line 91"
    assert engine.history(3) == ["line 88", "line 89", "line 90"]
    assert engine.history(0) == []
    assert engine.history(1000)[:2] == ["line 0", "line 1"]
    assert len(engine.history(1000)) == 91


def test_history_limit(engine_name):
    engine = open_engine(COLS, ROWS, scrollback=50, name=engine_name)
    engine.feed(b"".join(b"line %d\r\n" % i for i in range(1000)))
    kept = engine.history(10_000)
    assert 50 <= len(kept) < 1000
    assert kept[-1] == "line 990"


def test_resize(engine_name):
    engine = fed(engine_name, b"abc\r\ndef")
    engine.resize(60, 20)
    snap = engine.snapshot()
    assert (snap.cols, snap.rows, len(snap.lines)) == (60, 20, 20)
    assert engine.size == (60, 20)
    assert "abc" in snap.lines and "def" in snap.lines
    engine.feed(b"\x1b[20;60HZ")
    assert engine.snapshot().lines[19].endswith("Z")
    engine.resize(10, 5)
    snap = engine.snapshot()
    assert (snap.cols, snap.rows, len(snap.lines)) == (10, 5, 5)
    assert all(len(line) <= 10 for line in snap.lines)
    assert 0 <= snap.cursor.x < 10 and 0 <= snap.cursor.y < 5


def test_wrap_at_the_last_column(engine_name):
    snap = fed(engine_name, b"x" * (COLS + 5)).snapshot()
    assert snap.lines[:2] == ["x" * COLS, "x" * 5]
    snap = fed(engine_name, b"\x1b[?7l" + b"y" * (COLS + 5)).snapshot()
    assert snap.lines[:2] == ["y" * COLS, ""]


@pytest.mark.parametrize("seed", [14, 15, 16])
def test_garbage_never_raises(engine_name, seed):
    rng = random.Random(seed)
    engine = open_engine(COLS, ROWS, name=engine_name)
    size = 20_000 if engine_name == "pyte" else 300_000
    for _ in range(size // 1000):
        engine.feed(rng.randbytes(1000))
    engine.feed(rng.randbytes(500) + b"\x1b[" + b"9" * 5000 + b"m\x1b]2;" + b"t" * 10_000)
    engine.resize(1, 1)
    engine.feed(b"\x1b[99999;99999H\x1b[99999@\x1b[?99999h")
    engine.resize(COLS, ROWS)
    snap = engine.snapshot()
    assert len(snap.lines) == ROWS
    assert engine.ansi()
    engine.history(5)


RICH = (
    b"\x1b]2;the title\x07plain \x1b[1;31mbold red\x1b[0m \x1b[38;5;200mc200\x1b[0m "
    b"\x1b[48;2;10;20;30mrgb bg\x1b[0m\r\n\x1b[4munder\x1b[7mlined+inverse\x1b[0m\r\n"
    b"\xe4\xb8\xad wide \xe6\x96\x87\r\n\x1b[44m   \x1b[0m blue blanks\r\n"
    + b"w"
    * COLS
    + b"\x1b[8;5Hplaced\x1b[?2004h\x1b[?1002h\x1b[?1006h\x1b[?1h\x1b=\x1b[4 q\x1b[2;9r"
    b"\x1b[9;3H"
)


@pytest.mark.parametrize("alternate", [False, True], ids=["main", "alternate"])
def test_ansi_round_trip(engine_name, other_engine, alternate):
    prefix = b"under the app\r\n\x1b[?1049h" if alternate else b""
    source = fed(engine_name, prefix + RICH)
    redraw = source.ansi()
    replica = fed(other_engine, redraw.encode())
    expected, got = source.snapshot(), replica.snapshot()
    assert got.lines == expected.lines
    assert got.cursor == expected.cursor
    assert got.title == expected.title == "the title"
    assert got.modes == expected.modes
    assert expected.modes.alternate_screen == alternate
    assert expected.modes.scroll_region == (2, 9)
    assert replica.ansi() == redraw or engine_name != other_engine


def test_ansi_keeps_colours(engine_name):
    redraw = fed(engine_name, b"\x1b[31mred\x1b[0m \x1b[44mon blue\x1b[0m").ansi()
    assert re.search(r"\x1b\[[0-9;]*(?<![0-9])(31|38;5;1)m", redraw)
    assert re.search(r"\x1b\[[0-9;]*(?<![0-9])(44|48;5;4)m", redraw)


@pytest.mark.parametrize(
    "seq",
    [b"\x1b[?6h\x1b[3;8r\x1b[2;4H", b"\x1b[?7l\x1b[?25l\x1b[1 q", b"\x1b[?1049h\x1b[?1003h"],
    ids=["origin", "nowrap-hidden", "alt-mouse"],
)
def test_ansi_round_trip_of_modes(engine_name, seq):
    source = fed(engine_name, b"some text\r\n" + seq)
    replica = fed(engine_name, source.ansi().encode())
    assert replica.snapshot() == source.snapshot()


def test_snapshot_to_dict(engine_name):
    data = fed(engine_name, b"\x1b[?1000h\x1b[2;5r").snapshot().to_dict()
    assert data["modes"]["mouse"] == [1000]
    assert data["modes"]["scroll_region"] == [2, 5]
    assert data["cursor"] == {"x": 0, "y": 0, "visible": True, "shape": 0}
    assert isinstance(Snapshot(**{**data, "cursor": None, "modes": None}), Snapshot)
