"""The daemon under test: one started here in a private HOME, or one already running; and
what it costs, read from /proc while the fuzzer runs."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from stress.wire import call
from supervisor.procfs import alive

MARKER = "PTYSUP_STRESS_RUN"


def ptysup_command() -> list[str]:
    script = Path(sys.executable).parent / "ptysup"
    return [str(script)] if script.exists() else [sys.executable, "-m", "supervisor"]


class PrivateDaemon:
    """`ptysup daemon` with its own HOME, XDG directories and socket under a short /tmp dir.
    Every process it starts carries a marker, so that nothing outlives the run."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))
        runtime = self.root / "run"
        for d in ("home", "run", "config", "data", "state", "cache"):
            (self.root / d).mkdir()
        runtime.chmod(0o700)
        self.socket = str(runtime / "pty-supervisor" / "control.sock")
        self.log = self.root / "daemon.log"
        self.env = {
            "HOME": str(self.root / "home"),
            "USER": os.environ.get("USER", "root"),
            "LOGNAME": os.environ.get("LOGNAME", "root"),
            "SHELL": "/bin/sh",
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_STATE_HOME": str(self.root / "state"),
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "PTYSUP_SOCKET": self.socket,
            MARKER: str(self.root),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> int:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*ptysup_command(), "daemon"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd="/",
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited at start: {self.tail()}")
            with contextlib.suppress(OSError):
                pid = int(trio.run(_status_pid, self.socket))
                return pid
            time.sleep(0.05)
        raise RuntimeError(f"the daemon did not answer within {timeout:.0f} s: {self.tail()}")

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> list[int]:
        """Stop the daemon, end whatever is left, remove the directory; return the pids
        that had been left behind."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                trio.run(call, self.socket, "stop")
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        left = processes_marked(str(self.root))
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
        return left


async def _status_pid(path: str) -> int:
    return int((await call(path, "status"))["pid"])


def processes_marked(value: str, *, marker: str = MARKER) -> list[int]:
    """Live processes whose environment has `marker=value`."""
    needle = f"{marker}={value}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


@dataclass
class Usage:
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    fds_start: int = 0
    fds_peak: int = 0
    fds_end: int = 0
    samples: int = 0
    died: bool = False


async def monitor(pid: int, usage: Usage, died: trio.Event, interval: float = 0.1) -> None:
    """Sample the daemon's memory and fds until cancelled; set `died` if it goes."""
    while True:
        rss, fds = rss_kib(pid), fd_count(pid)
        if rss is None or fds is None or not alive(pid):
            usage.died = True
            died.set()
            return
        usage.rss_peak = max(usage.rss_peak, rss)
        usage.fds_peak = max(usage.fds_peak, fds)
        usage.samples += 1
        await trio.sleep(interval)
