"""Every engine against tmux: the same program, keys and size, the same rows on the screen."""

import shutil
import sys
import unicodedata
from pathlib import Path

import pytest

from supervisor.screen import detach_sequence, open_engine
from tests.screen.oracle import oracle

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
# Flags of tmux's pane and the engine's view of the same thing.
FLAGS = {
    "alternate_on": lambda s: str(int(s.modes.alternate_screen)),
    "cursor_x": lambda s: str(s.cursor.x),
    "cursor_y": lambda s: str(s.cursor.y),
    "cursor_flag": lambda s: str(int(s.cursor.visible)),
    "keypad_cursor_flag": lambda s: str(int(s.modes.app_cursor_keys)),
    "keypad_flag": lambda s: str(int(s.modes.app_keypad)),
    "mouse_standard_flag": lambda s: str(int(1000 in s.modes.mouse)),
    "mouse_sgr_flag": lambda s: str(int(1006 in s.modes.mouse)),
    "mouse_button_flag": lambda s: str(int(1002 in s.modes.mouse)),
    "mouse_all_flag": lambda s: str(int(1003 in s.modes.mouse)),
    "mouse_any_flag": lambda s: str(int(bool({9, 1000, 1002, 1003} & set(s.modes.mouse)))),
    "mouse_utf8_flag": lambda s: str(int(1005 in s.modes.mouse)),
    "wrap_flag": lambda s: str(int(s.modes.autowrap)),
    "origin_flag": lambda s: str(int(s.modes.origin)),
}


# Where an engine is known to differ from tmux, and how.
KNOWN = {("vim", "avt"): "avt gives a combining mark a cell of its own, so rows lose a column"}


def known(request: pytest.FixtureRequest, test: str, engine: str) -> None:
    if (test, engine) in KNOWN:
        request.applymarker(pytest.mark.xfail(reason=KNOWN[test, engine], strict=True))


def need(program: str) -> None:
    if shutil.which(program) is None:
        pytest.fail(f"{program} is missing: scripts/setup --tests installs it")


def nfc(lines: list[str]) -> list[str]:
    return [unicodedata.normalize("NFC", line) for line in lines]


def same_screen(o, flags: bool = True) -> None:
    for _ in range(5):  # a loaded machine may pause a program longer than one quiet window
        o.settle()
        expected, got = o.compare()
        if nfc(got) == nfc(expected):
            break
    assert nfc(got) == nfc(expected)
    if flags:
        snap = o.direct.engine.snapshot()
        tmux = o.tmux.flags(list(FLAGS))
        assert {k: f(snap) for k, f in FLAGS.items()} == tmux


def test_torture(engine_name):
    need("tmux")
    with oracle(engine_name, [sys.executable, str(HERE / "torture.py")]) as o:
        same_screen(o)
        assert o.direct.engine.snapshot().title == "torture title"
        o.keys(b"\r")
        same_screen(o)
        o.keys(b"\r")
        same_screen(o)


def test_shell_scrolled_thousands_of_lines(engine_name):
    need("tmux")
    with oracle(engine_name, ["sh"]) as o:
        o.keys(b"seq 1 5000; echo done\r")
        same_screen(o)
        assert o.direct.engine.history(800) == o.tmux.history(800)
        assert o.direct.engine.history(3)[-1] == "4978"


def write_text(path: Path) -> None:
    lines = []
    for i in range(200):
        lines.append(f"{i:04d}\tline with a tab and some words " + "long " * (i % 7) * 5)
        if i % 17 == 0:
            lines.append("wide \u4e2d\u6587 and combining e\u0301 here")
    path.write_text("\n".join(lines) + "\n")


def test_vim(engine_name, tmp_path, request):
    known(request, "vim", engine_name)
    need("tmux")
    need("vim")
    text = tmp_path / "text.txt"
    write_text(text)
    argv = ["sh", "-c", 'vim -u NONE -i NONE -N -n -X "$0"; exec sleep 1000', str(text)]
    with oracle(engine_name, argv) as o:
        same_screen(o)
        o.keys(b"50%", b":set nu\r", b"/combining\r")
        same_screen(o)
        o.keys(b"Oinserted \xe4\xb8\xad\x1b", b":split\r", b"G")
        same_screen(o)
        o.keys(b"\x1b:qa!\r")
        same_screen(o)


def test_less(engine_name, tmp_path):
    need("tmux")
    need("less")
    text = tmp_path / "text.txt"
    write_text(text)
    with oracle(engine_name, ["sh", "-c", 'less -R "$0"; exec sleep 1000', str(text)]) as o:
        same_screen(o)
        o.keys(b" ", b" ", b"/combining\r")
        same_screen(o)
        o.keys(b"G", b"g", b"q")
        same_screen(o)


OUTER = [
    "alternate_on",
    "mouse_button_flag",
    "mouse_sgr_flag",
    "keypad_cursor_flag",
    "keypad_flag",
    "cursor_flag",
    "origin_flag",
    "wrap_flag",
]


def test_redraw_and_detach_on_a_real_terminal(engine_name, tmp_path):
    """tmux plays the user's terminal: the redraw gives it the app's screen and modes, the
    detach sequence takes them all back and shows the shell's screen as it was."""
    need("tmux")
    engine = open_engine(80, 24, name=engine_name)
    engine.feed(b"$ ls\r\nfile-one  file-two\r\n$ app\r\n")
    engine.feed(b"\x1b[?1049h\x1b[H\x1b[2J\x1b[1;32mthe app\x1b[0m\x1b[?1002h\x1b[?1006h")
    engine.feed(b"\x1b[?2004h\x1b[?1h\x1b=\x1b[?25l\x1b[?7l\x1b[5;10Hhere")
    (tmp_path / "redraw").write_text(engine.ansi())
    (tmp_path / "detach").write_text(detach_sequence(engine.snapshot().modes))
    (tmp_path / "shell").write_text("$ ls\r\nfile-one  file-two\r\n$ app\r\n")
    # The user's shell screen, then the redraw of the attach; a key later, the detach.
    script = 'stty -echo; cat "$0" "$1"; read x; cat "$2"; exec sleep 1000'
    files = [str(tmp_path / name) for name in ("shell", "redraw", "detach")]
    with oracle("pyte", ["sh", "-c", script, *files]) as o:
        assert o.tmux.settle() == engine.snapshot().lines
        assert o.tmux.flags(OUTER) == dict.fromkeys(OUTER[:-2], "1") | {
            "cursor_flag": "0",
            "origin_flag": "0",
            "wrap_flag": "0",
        }
        o.tmux.keys(b"\r")
        screen = o.tmux.settle()
        assert screen[:3] == ["$ ls", "file-one  file-two", "$ app"]
        assert o.tmux.flags(OUTER) == dict.fromkeys(OUTER, "0") | {
            "cursor_flag": "1",
            "wrap_flag": "1",
        }
        assert o.tmux.flags(["cursor_x", "cursor_y"]) == {"cursor_x": "0", "cursor_y": "3"}
