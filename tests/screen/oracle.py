"""The oracle: one program run twice with the same keys and size, in a private tmux server
and on a plain PTY whose output feeds an engine, so that the two screens can be compared."""

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import ptyprocess

from supervisor.screen import Engine, open_engine

TERM = "screen"
QUIET = 0.3
MARK = "PTYSUP_SCREEN_ORACLE"


def program_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": TERM,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "SHELL": "/bin/sh",
        "PS1": "$ ",
        "LESSHISTFILE": "-",
        "LESS": "",
        "TZ": "UTC",
        MARK: str(home),
    }


class Tmux:
    def __init__(self, root: Path, cols: int, rows: int) -> None:
        self.root, self.cols, self.rows = root, cols, rows
        self.socket = str(root / "tmux.sock")
        conf = root / "tmux.conf"
        conf.write_text(
            "set -g status off\nset -g history-limit 10000\n"
            f'set -g default-terminal "{TERM}"\nset -g remain-on-exit on\n'
            "set -g escape-time 0\n"
        )
        self.conf = str(conf)

    def tmux(self, *args: str) -> str:
        env = program_env(self.root / "home")
        return subprocess.run(
            ["tmux", "-S", self.socket, "-f", self.conf, *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=20,
        ).stdout

    def start(self, argv: Sequence[str], cwd: Path) -> None:
        size = ["-x", str(self.cols), "-y", str(self.rows)]
        self.tmux("new-session", "-d", "-s", "t", "-c", str(cwd), *size, "--", *argv)

    def keys(self, data: bytes) -> None:
        if data:
            self.tmux("send-keys", "-t", "t", "-H", *(f"{b:02x}" for b in data))

    def screen(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-t", "t").split("\n")[: self.rows]

    def history(self, n: int) -> list[str]:
        text = self.tmux("capture-pane", "-p", "-t", "t", "-S", f"-{n}", "-E", "-1")
        return [line.rstrip() for line in text.split("\n")[:-1]]

    def flags(self, names: Sequence[str]) -> dict[str, str]:
        text = self.tmux("display", "-p", "-t", "t", " ".join(f"#{{{n}}}" for n in names))
        return dict(zip(names, text.split(), strict=True))

    def settle(self) -> list[str]:
        last, since = self.screen(), time.monotonic()
        deadline = since + 10
        while time.monotonic() - since < QUIET and time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.screen()
            if now != last:
                last, since = now, time.monotonic()
        return last

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.tmux("kill-server")


class Direct:
    """The program on a PTY of our own, every output byte fed to an engine."""

    def __init__(self, engine: Engine, argv: Sequence[str], cwd: Path, home: Path) -> None:
        cols, rows = engine.size
        self.engine = engine
        self.proc = ptyprocess.PtyProcess.spawn(
            list(argv), cwd=str(cwd), env=program_env(home), dimensions=(rows, cols)
        )

    def keys(self, data: bytes) -> None:
        if data:
            os.write(self.proc.fd, data)

    def settle(self) -> None:
        since = time.monotonic()
        deadline = since + 10
        while time.monotonic() - since < QUIET and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.proc.fd, 65536)
            except OSError:
                return
            if not data:
                return
            self.engine.feed(data)
            since = time.monotonic()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.proc.close(force=True)


class Oracle:
    def __init__(self, engine: str, argv: Sequence[str], root: Path, cols: int, rows: int) -> None:
        (root / "home").mkdir(exist_ok=True)
        self.tmux = Tmux(root, cols, rows)
        self.tmux.start(argv, root)
        self.direct = Direct(open_engine(cols, rows, name=engine), argv, root, root / "home")
        self.settle()

    def settle(self) -> None:
        self.direct.settle()
        self.tmux.settle()

    def keys(self, *steps: bytes) -> None:
        for data in steps:
            self.tmux.keys(data)
            self.direct.keys(data)
            self.settle()

    def compare(self) -> tuple[list[str], list[str]]:
        return self.tmux.settle(), self.direct.engine.snapshot().lines

    def stop(self) -> None:
        self.direct.stop()
        self.tmux.stop()


@contextlib.contextmanager
def oracle(engine: str, argv: Sequence[str], cols: int = 80, rows: int = 24) -> Iterator[Oracle]:
    root = Path(tempfile.mkdtemp(prefix="pso-", dir="/tmp"))
    found: Oracle | None = None
    try:
        found = Oracle(engine, argv, root, cols, rows)
        yield found
    finally:
        if found is not None:
            found.stop()
        else:
            Tmux(root, cols, rows).stop()
        leftovers(str(root))
        shutil.rmtree(root, ignore_errors=True)


def leftovers(root: str) -> list[int]:
    """Kill (and name) any process still carrying this oracle's marker."""
    needle = f"{MARK}={root}/home".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle not in f.read():
                    continue
        except OSError:
            continue
        found.append(int(name))
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(name), signal.SIGKILL)
    return found
