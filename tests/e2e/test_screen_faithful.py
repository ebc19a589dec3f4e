"""The terminal as faithful as tmux's, through the real CLI, with a private tmux server as the
user's terminal: the modes an app sets are restored on attach and undone on detach, hang-up
and a killed client; observers at another size see the screen fitted to theirs; scrollback
and the screen stay exact after floods."""

import os
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import PTYSUP, Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]

if shutil.which("tmux") is None:  # scripts/setup --tests installs it on Debian
    pytest.skip(
        "tmux is not installed (scripts/setup --tests installs it)", allow_module_level=True
    )

FLAGS = ["alternate_on", "mouse_any_flag", "mouse_sgr_flag", "keypad_cursor_flag", "keypad_flag"]
APP = (
    "printf 'before\\n'; read x; "
    "printf '\\033[?1049h\\033[?1000h\\033[?1006h\\033[?2004h\\033[?1h\\033=in the app\\n'; "
    "sleep 600"
)


class Pane:
    """A tmux server of our own whose pane plays the user's terminal."""

    def __init__(self, box: Sandbox, cols: int = 80, rows: int = 24, name: str = "u") -> None:
        self.box = box
        self.socket = str(box.home.parent / f"tmux-{name}.sock")
        self.env = {**box.env, "TERM": "xterm-256color"}
        conf = box.home.parent / "tmux.conf"
        conf.write_text("set -g status off\nset -g escape-time 0\nset -g remain-on-exit on\n")
        self.conf = str(conf)
        self.cols, self.rows = cols, rows

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", self.socket, "-f", self.conf, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=20,
        ).stdout

    def start(self, *argv: str) -> None:
        size = ["-x", str(self.cols), "-y", str(self.rows)]
        self.tmux("new-session", "-d", "-s", "t", *size, "--", *argv)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.text().split("\n")[: self.rows]]

    def flags(self) -> dict[str, str]:
        out = self.tmux("display", "-p", "-t", "t", " ".join(f"#{{{f}}}" for f in FLAGS))
        return dict(zip(FLAGS, out.split(), strict=True))

    def wait_for(self, needle: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never showed:\n{self.text()}")
            time.sleep(0.05)

    def wait_flags(self, want: dict[str, str], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while (got := self.flags()) != want:
            if time.monotonic() > deadline:
                raise AssertionError(f"flags {got}, wanted {want}")
            time.sleep(0.05)

    def client_pid(self) -> int:
        return int(self.tmux("display", "-p", "-t", "t", "#{pane_pid}").strip())

    def stop(self) -> None:
        subprocess.run(
            ["tmux", "-S", self.socket, "kill-server"], env=self.env, capture_output=True
        )


ON = dict.fromkeys(FLAGS, "1")
OFF = dict.fromkeys(FLAGS, "0")


@pytest.fixture
def pane(sandbox: Sandbox):
    made: list[Pane] = []

    def make(*argv: str, cols: int = 80, rows: int = 24, name: str = "u") -> Pane:
        p = Pane(sandbox, cols, rows, name)
        made.append(p)
        p.start(*argv)
        return p

    yield make
    for p in made:
        p.stop()


def start_app(pane, name: str = "app") -> Pane:
    """A shell in a pane that runs `ptysup new` of an app setting every mode once told."""
    shell = pane("sh")
    shell.keys(f'{PTYSUP} new --name {name} -- sh -c "{APP}"', "Enter")
    shell.wait_for("before")
    shell.keys("Enter")
    shell.wait_for("in the app")
    shell.wait_flags(ON)
    return shell


@pytest.mark.parametrize("relay", [False, True])
def test_detach_undoes_the_apps_modes_and_attach_restores_them(pane, sandbox, relay):
    shell = pane("sh")
    extra = " --relay" if relay else ""
    shell.keys(f'{PTYSUP} new{extra} --name app -- sh -c "{APP}"', "Enter")
    shell.wait_for("before")
    shell.keys("Enter")
    shell.wait_for("in the app")
    shell.wait_flags(ON)
    shell.keys("C-\\")
    shell.wait_for("[ptysup: detached")
    shell.wait_flags(OFF)
    shell.keys("clear", "Enter")
    shell.keys(f"{PTYSUP} attach{extra} app", "Enter")
    shell.wait_for("in the app")
    shell.wait_flags(ON)
    shell.keys("C-\\")
    shell.wait_flags(OFF)
    assert sandbox.json("info", "app")["state"] == "running"


def test_a_client_killed_outright_leaves_the_terminal_as_it_was(pane, sandbox):
    shell = start_app(pane)
    clients = [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-f", f"{PTYSUP} new --name app"], capture_output=True, text=True
        ).stdout.split()
    ]
    assert clients
    for pid in clients:
        os.kill(pid, signal.SIGKILL)
    shell.wait_flags(OFF)
    assert sandbox.json("info", "app")["state"] == "running"


def test_killing_the_session_gives_the_terminal_back(pane, sandbox):
    shell = start_app(pane)
    sandbox.ok("kill", "app")
    shell.wait_for("[ptysup: session ended")
    shell.wait_flags(OFF)


@pytest.mark.parametrize("relay", [False, True])
def test_an_observer_of_another_size_sees_the_screen_fitted_to_its_own(pane, sandbox, relay):
    sid = sandbox.spawn(
        "sh",
        "-c",
        "i=0; while [ $i -lt 40 ]; do printf 'row %02d %s\\n' $i "
        "$(printf '%0.sx' $(seq 90)); i=$((i+1)); done; printf 'END'; sleep 600",
        size="100x30",
    )
    assert sandbox.run("expect", sid, "END", "--timeout", "20").returncode == 0
    how = ["--relay"] if relay else []
    small = pane(PTYSUP, "attach", "--read-only", *how, sid, cols=50, rows=12, name="small")
    small.wait_for("END")
    shown = small.lines()
    screen = sandbox.json("screen", sid)
    assert screen["cols"] == 100 and screen["rows"] == 30
    rows = screen["lines"]
    cursor_y = screen["cursor"]["y"]
    top = max(0, cursor_y - 12 + 1)
    assert shown == [line[:50] for line in rows[top : top + 12]]
    assert all(len(line) <= 50 for line in shown)
    sandbox.ok("write", sid, "\n")  # new output: still fitted, never raw 100-column rows
    time.sleep(0.5)
    assert all(len(line) <= 50 for line in small.lines())


def test_screen_history_is_the_scrollback_as_tmux_keeps_it(pane, sandbox):
    script = "seq 1 3000; printf 'DONE'"
    sid = sandbox.spawn("sh", "-c", f"{script}; sleep 600", size="80x24")
    assert sandbox.run("expect", sid, "DONE", "--timeout", "20").returncode == 0
    oracle = pane("sh", "-c", f"{script}; sleep 600", name="oracle")
    oracle.wait_for("DONE")
    history = oracle.tmux("capture-pane", "-p", "-t", "t", "-S", "-500", "-E", "-1")
    expected = [line.rstrip() for line in history.split("\n")[:-1]]
    got = sandbox.json("screen", sid, "--history", "500")
    assert got["history"] == expected
    assert got["lines"] == oracle.lines()
    text = sandbox.ok("screen", sid, "--history", "5").splitlines()
    assert text[:5] == expected[-5:] and text[5:] == [ln for ln in oracle.lines()][: len(text) - 5]


def test_the_screen_is_exact_after_a_flood_far_larger_than_the_ring(sandbox: Sandbox):
    sid = sandbox.spawn(
        "sh",
        "-c",
        "yes 'a fairly long line of ordinary output' | head -n 800000; "
        "printf '\\033[1;31mTHE END\\033[0m'; sleep 600",
        size="80x24",
    )
    assert sandbox.run("expect", sid, "THE END", "--timeout", "120").returncode == 0
    screen = sandbox.json("screen", sid)
    assert screen["exact"] is True
    assert screen["engine"]["name"]
    assert screen["offset"] == sandbox.json("info", sid)["end"]
    assert screen["lines"][-1] == "THE END"
    assert set(screen["lines"][:-1]) == {"a fairly long line of ordinary output"}


def test_attach_history_puts_the_scrollback_above_the_screen(pane, sandbox):
    sid = sandbox.spawn("sh", "-c", "seq 1 200; printf 'READY'; sleep 600", size="80x24")
    assert sandbox.run("expect", sid, "READY", "--timeout", "20").returncode == 0
    viewer = pane(PTYSUP, "attach", "--read-only", "--history", "50", sid, name="hist")
    viewer.wait_for("READY")
    scrolled = viewer.tmux("capture-pane", "-p", "-t", "t", "-S", "-60", "-E", "-1")
    lines = [line.rstrip() for line in scrolled.split("\n")]
    assert "177" in lines and "150" in lines
