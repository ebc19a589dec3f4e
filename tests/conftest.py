"""Every test that starts a daemon gets its own HOME, XDG directories and socket, and
leaves no process behind."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from supervisor.procfs import alive

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PTYSUP = str(BIN / "ptysup")


def processes_with_env(needle: bytes) -> list[int]:
    """Pids of live processes whose environment contains `needle`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and needle in environ:
            found.append(int(name))
    return found


def proc_stats() -> Iterator[tuple[int, list[bytes]]]:
    """(pid, fields after the command name) of every process: state, ppid, pgrp, session..."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                yield int(name), f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue


def session_pids(sid: int) -> list[int]:
    """Live processes whose session id is `sid`, read here independently of the daemon."""
    return [pid for pid, fields in proc_stats() if int(fields[3]) == sid and fields[0] != b"Z"]


def held_terminals(pid: int) -> set[str]:
    """The terminals (/dev/pts/N) process `pid` has open."""
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/dev/pts/"):
            held.add(target)
    return held


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@dataclass
class Sandbox:
    """A private user environment: HOME, XDG_*, a socket path, and the ptysup CLI."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])

    @property
    def socket(self) -> str:
        return self.env["PTYSUP_SOCKET"]

    def run(
        self,
        *args: str,
        input: bytes | str | None = None,
        timeout: float = 60,
        check: bool = False,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [PTYSUP, *args],
            input=input.encode() if isinstance(input, str) else input,
            capture_output=True,
            timeout=timeout,
            env=env or self.env,
            cwd=cwd or self.home,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"ptysup {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout!r}\nstderr: {proc.stderr.decode(errors='replace')}"
            )
        return proc

    def ok(self, *args: str, **kwargs: Any) -> str:
        return self.run(*args, check=True, **kwargs).stdout.decode()

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(args[0], "--json", *args[1:], **kwargs))

    def spawn(self, *command: str, **options: str) -> str:
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        return self.ok("spawn", *flags, "--", *command).strip()

    def daemon_pid(self) -> int | None:
        lock = Path(self.socket + ".lock")
        try:
            text = lock.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def leftovers(self) -> list[int]:
        return processes_with_env(f"PTYSUP_SOCKET={self.socket}".encode())

    def cleanup(self) -> list[int]:
        """Stop the daemon and end anything left; return what had been left."""
        pid = self.daemon_pid()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.run("--no-start", "stop", timeout=30)
        if pid and alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        left = [p for p in self.leftovers() if p != pid]
        for p in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        return left


def make_sandbox(base: Path, **extra: str) -> Sandbox:
    home = base / "home"
    runtime = base / "run"
    for d in (home, runtime, base / "config", base / "data", base / "state", base / "cache"):
        d.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    env = {
        "HOME": str(home),
        "USER": os.environ.get("USER", "root"),
        "LOGNAME": os.environ.get("LOGNAME", "root"),
        "SHELL": "/bin/bash",
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_DATA_HOME": str(base / "data"),
        "XDG_STATE_HOME": str(base / "state"),
        "XDG_CACHE_HOME": str(base / "cache"),
        "PTYSUP_SOCKET": str(runtime / "pty-supervisor" / "control.sock"),
        "PTYSUP_KILL_GRACE": "0.5",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if "PTYSUP_NATIVE" in os.environ:  # scripts/test runs the suite on both byte paths
        env["PTYSUP_NATIVE"] = os.environ["PTYSUP_NATIVE"]
    env.update(extra)
    return Sandbox(base, env)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temporary directory: socket paths must stay under ~100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ps-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sandbox(short_tmp: Path) -> Iterator[Sandbox]:
    box = make_sandbox(short_tmp)
    try:
        yield box
    finally:
        left = box.cleanup()
        assert not left, f"processes left behind: {left}"
