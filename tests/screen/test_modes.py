"""The mode scanner, the detach sequence and the choice of engine."""

import pytest

from supervisor.screen import (
    ENGINES,
    ENV,
    MOUSE_MODES,
    EngineUnavailable,
    Modes,
    ModeScanner,
    available_engines,
    default_engine,
    detach_sequence,
    modes_sequence,
    open_engine,
)

STREAM = (
    b"text\x1b[1;31mred\x1b[0m\x1b[?1049h\x1b[?1000;1006h\x1b[?2004h\x1b]2;a title\x1b\\"
    b"\x1b=\x1b[?1h\x1b[5 q\x1b[3;20r\x1b[?7l\x1b[?1004hmore"
)
EXPECTED = Modes(
    alternate_screen=True,
    mouse=(1000, 1006),
    bracketed_paste=True,
    focus_events=True,
    app_cursor_keys=True,
    app_keypad=True,
    autowrap=False,
    scroll_region=(3, 20),
)


def scanned(*chunks: bytes) -> ModeScanner:
    scanner = ModeScanner(24)
    for chunk in chunks:
        scanner.feed(chunk)
    return scanner


def test_scanner_reads_every_mode():
    scanner = scanned(STREAM)
    assert scanner.modes() == EXPECTED
    assert (scanner.title, scanner.shape) == ("a title", 5)


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_scanner_across_chunks(cut):
    scanner = scanned(STREAM[:cut], STREAM[cut:])
    assert scanner.modes() == EXPECTED
    assert (scanner.title, scanner.shape) == ("a title", 5)


def test_scanner_byte_by_byte():
    scanner = scanned(*(STREAM[i : i + 1] for i in range(len(STREAM))))
    assert scanner.modes() == EXPECTED


def test_scanner_resets():
    scanner = scanned(STREAM, b"\x1b[!p")
    modes = scanner.modes()
    assert not (modes.app_cursor_keys or modes.app_keypad or modes.scroll_region)
    assert modes.bracketed_paste
    scanner.feed(b"\x1bc")
    assert scanner.modes() == Modes()
    assert scanner.title == ""


def test_scanner_margins():
    scanner = scanned(b"\x1b[1;24r")
    assert scanner.region is None
    scanner.feed(b"\x1b[5r")
    assert scanner.region == (5, 24)
    scanner.feed(b"\x1b[9;3r")
    assert scanner.region == (5, 24)
    scanner.resize(30)
    assert scanner.region is None


def test_scanner_drops_an_endless_title():
    scanner = scanned(b"\x1b]2;" + b"x" * 10_000, b"\x1b[?2004h")
    assert scanner.modes().bracketed_paste


def test_modes_sequence():
    assert modes_sequence(Modes()) == ""
    seq = modes_sequence(EXPECTED)
    assert seq == "\x1b[?1000h\x1b[?1006h\x1b[?2004h\x1b[?1004h\x1b[?1h\x1b="
    assert scanned(seq.encode()).modes().mouse == (1000, 1006)


def test_detach_sequence_undoes_everything():
    reset = detach_sequence().encode()
    assert scanned(STREAM, reset).modes() == Modes()
    for mode in MOUSE_MODES:
        assert f"\x1b[?{mode}l" in detach_sequence()
    assert "\x1b[?6l" not in detach_sequence()
    assert detach_sequence(EXPECTED) == detach_sequence()
    assert detach_sequence(Modes(origin=True)).startswith("\x1b[?6l")


def test_detach_sequence_on_every_engine(engine_name):
    engine = open_engine(80, 24, name=engine_name)
    engine.feed(b"prompt$ \x1b[?1049h" + STREAM + b"\x1b[?25l\x1b[?6h")
    engine.feed(detach_sequence(engine.snapshot().modes).encode())
    snap = engine.snapshot()
    assert snap.modes == Modes()
    assert snap.lines[0] == "prompt$"
    assert (snap.cursor.visible, snap.cursor.shape) == (True, 0)


def test_choice(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert default_engine() == available_engines()[0]
    assert "pyte" in available_engines()
    for name in available_engines():
        monkeypatch.setenv(ENV, name)
        assert default_engine() == name
        assert open_engine(10, 5).name == name
    monkeypatch.setenv(ENV, "vt100-in-a-box")
    with pytest.raises(EngineUnavailable, match="unknown screen engine"):
        open_engine(10, 5)
    assert list(ENGINES) == ["ghostty", "avt", "pyte"]
