"""The daemon under test: `ptysup daemon` in a private HOME with its own XDG directories and
socket, every process started for it marked so that nothing outlives the run; the CLI and
the Python client pointed at it; its memory read from /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from stress import daemon as stress_daemon
from stress.daemon import rss_kib
from supervisor.client.blocking import Client, connect

MARKER = "PTYSUP_INTEGRITY_RUN"
ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def ptysup_command() -> list[str]:
    script = Path(sys.executable).parent / "ptysup"
    return [str(script)] if script.exists() else [sys.executable, "-m", "supervisor"]


class PrivateDaemon:
    """One daemon of this checkout for one run. `settings` are PTYSUP_* variables for it
    (PTYSUP_NATIVE among them); the children it spawns get the harness's environment."""

    def __init__(self, settings: dict[str, str]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ig-", dir="/tmp"))
        runtime = self.root / "run"
        for d in ("home", "run", "config", "data", "state", "cache", "files"):
            (self.root / d).mkdir()
        runtime.chmod(0o700)
        self.files = self.root / "files"
        self.socket = str(runtime / "pty-supervisor" / "control.sock")
        self.log = self.root / "daemon.log"
        self.settings = dict(settings)
        self.env = {
            "HOME": str(self.root / "home"),
            "USER": os.environ.get("USER", "root"),
            "LOGNAME": os.environ.get("LOGNAME", "root"),
            "SHELL": "/bin/sh",
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
            "PYTHONPATH": str(ROOT),
            "PYTHONDONTWRITEBYTECODE": "1",
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_STATE_HOME": str(self.root / "state"),
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "PTYSUP_SOCKET": self.socket,
            MARKER: str(self.root),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self.status: dict[str, Any] = {}

    def start(self, timeout: float = 60.0) -> int:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*ptysup_command(), "daemon"],
                env={**self.env, **self.settings},
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
            try:
                with self.client(timeout=5) as c:
                    self.status = c.status()
                    self.pid = int(self.status["pid"])
                    return self.pid
            except Exception:  # not up yet, whatever the reason
                time.sleep(0.05)
        raise RuntimeError(f"the daemon did not answer within {timeout:.0f} s: {self.tail()}")

    def client(self, timeout: float | None = 30.0) -> Client:
        return connect(self.socket, autostart=False, timeout=timeout)

    def byte_path(self) -> str:
        path = self.status.get("byte_path")
        return str(path.get("byte_path")) if isinstance(path, dict) else "unknown"

    def command(self, *args: str) -> list[str]:
        return [*ptysup_command(), "--no-start", *args]

    def run(
        self, *args: str, timeout: float = 60.0, stdin: IO[bytes] | int | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """One `ptysup` command to its end."""
        return subprocess.run(
            self.command(*args),
            env=self.env,
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            capture_output=True,
            timeout=timeout,
            cwd=self.files,
            check=False,
        )

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.command(*args), env=self.env, cwd=self.files, **kwargs)

    def program(self, *args: str) -> list[str]:
        """argv of one of the harness's children (integrity.programs)."""
        return [sys.executable, "-m", "integrity.programs", *args]

    def tail(self, lines: int = 8) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, keep_log: Path | None = None) -> list[int]:
        """Stop the daemon, end whatever is left, remove the directory; return the pids
        that had been left behind."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception), self.client(timeout=10) as c:
                c.stop(timeout=20)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        left = processes_marked(str(self.root))
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if keep_log is not None:
            with contextlib.suppress(OSError):
                keep_log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.log, keep_log)
        shutil.rmtree(self.root, ignore_errors=True)
        return left


def processes_marked(value: str) -> list[int]:
    return stress_daemon.processes_marked(value, marker=MARKER)


@dataclass
class Memory:
    """The daemon's RSS, sampled on a thread until stopped."""

    pid: int
    interval: float = 0.2
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Memory:
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        begun = time.monotonic()
        while not self._stop.is_set():
            rss = rss_kib(self.pid)
            if rss is not None:
                self.samples.append((time.monotonic() - begun, rss))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def peak_kib(self) -> int:
        return max((kib for _, kib in self.samples), default=0)

    @property
    def first_kib(self) -> int:
        return self.samples[0][1] if self.samples else 0

    @property
    def last_kib(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def at(self, t: float) -> int:
        """The last sample at or before `t` seconds after the start."""
        kib = self.first_kib
        for when, value in self.samples:
            if when > t:
                break
            kib = value
        return kib
