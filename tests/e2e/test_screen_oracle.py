"""The daemon's screen against an independent oracle: the same program, keys and size run
under ptysup and in tmux; `ptysup screen --json` must show what `tmux capture-pane -p`
shows (vim, less, a shell that scrolled thousands of lines, and a torture script)."""

import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import PTYSUP, Sandbox
from tests.screen.oracle import QUIET, Tmux, program_env
from tests.screen.test_oracle import HERE, need, write_text

pytestmark = pytest.mark.slow


class UnderPtysup:
    def __init__(self, sandbox: Sandbox, argv: list[str], cwd: Path, cols: int, rows: int):
        self.box = sandbox
        env = program_env(cwd / "home")
        args = ["spawn", "--clean-env", "--cwd", str(cwd), "--size", f"{cols}x{rows}"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        self.sid = sandbox.ok(*args, "--", *argv).strip()

    def keys(self, data: bytes) -> None:
        subprocess.run(
            [PTYSUP, "write", self.sid, "-"],
            input=data,
            env=self.box.env,
            check=True,
            capture_output=True,
            timeout=20,
        )

    def screen(self) -> dict:
        return self.box.json("screen", self.sid, "--history", "800")

    def settle(self) -> dict:
        last, since = self.screen(), time.monotonic()
        deadline = since + 10
        while time.monotonic() - since < QUIET and time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.screen()
            if now["offset"] != last["offset"]:
                last, since = now, time.monotonic()
        return last


def nfc(lines: list[str]) -> list[str]:
    return [unicodedata.normalize("NFC", line) for line in lines]


class Pair:
    def __init__(self, sandbox: Sandbox, argv: list[str], cols: int = 80, rows: int = 24):
        self.root = Path(tempfile.mkdtemp(prefix="pso-", dir="/tmp"))
        (self.root / "home").mkdir()
        self.tmux = Tmux(self.root, cols, rows)
        self.tmux.start(argv, self.root)
        self.ours = UnderPtysup(sandbox, argv, self.root, cols, rows)

    def keys(self, *steps: bytes) -> None:
        for data in steps:
            self.tmux.keys(data)
            self.ours.keys(data)
            self.tmux.settle()
            self.ours.settle()

    def same(self) -> dict:
        for _ in range(5):
            expected = self.tmux.settle()
            got = self.ours.settle()
            if nfc(got["lines"]) == nfc(expected):
                break
        assert nfc(got["lines"]) == nfc(expected)
        assert got["exact"] is True
        return got

    def stop(self) -> None:
        self.tmux.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def pair(sandbox: Sandbox):
    made: list[Pair] = []

    def make(argv: list[str], cols: int = 80, rows: int = 24) -> Pair:
        p = Pair(sandbox, argv, cols, rows)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


def test_torture_script(pair):
    need("tmux")
    p = pair([sys.executable, str(HERE / "torture.py")])
    got = p.same()
    assert got["title"] == "torture title"
    p.keys(b"\r")
    p.same()
    p.keys(b"\r")
    p.same()


def test_a_shell_that_scrolled_thousands_of_lines(pair):
    need("tmux")
    p = pair(["sh"])
    p.keys(b"seq 1 5000; echo done\r")
    got = p.same()
    assert got["history"] == p.tmux.history(800)


def test_vim(pair, tmp_path):
    need("tmux")
    need("vim")
    text = tmp_path / "text.txt"
    write_text(text)
    p = pair(["sh", "-c", 'vim -u NONE -i NONE -N -n -X "$0"; exec sleep 1000', str(text)])
    p.same()
    p.keys(b"50%", b":set nu\r", b"/combining\r")
    p.same()
    p.keys(b"Oinserted \xe4\xb8\xad\x1b", b":split\r", b"G")
    got = p.same()
    assert got["modes"]["alternate_screen"] is True


def test_less(pair, tmp_path):
    need("tmux")
    need("less")
    text = tmp_path / "text.txt"
    write_text(text)
    p = pair(["sh", "-c", 'less -R "$0"; exec sleep 1000', str(text)], cols=100, rows=30)
    p.same()
    p.keys(b" ", b" ", b"/combining\r")
    p.same()
    p.keys(b"G", b"g", b"q")
    p.same()
