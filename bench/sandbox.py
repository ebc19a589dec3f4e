"""A private world for one bench run: HOME, XDG dirs and sockets under a short /tmp dir,
and the guarantee that every process started inside it is gone at the end."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.baseline import Build

BIN = Path(sys.executable).parent
PTYSUP = str(BIN / "ptysup")
TAG_VAR = "PTYSUP_BENCH_TAG"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_proc(pid: int, name: str) -> bytes:
    with open(f"/proc/{pid}/{name}", "rb") as f:
        return f.read()


def alive(pid: int) -> bool:
    try:
        return read_proc(pid, "stat").rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def rss_kib(pid: int) -> int:
    for line in read_proc(pid, "status").splitlines():
        if line.startswith(b"VmRSS:"):
            return int(line.split()[1])
    raise OSError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far."""
    fields = read_proc(pid, "stat").rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Sandbox:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pb-", dir="/tmp"))
        self.tag = str(self.root)
        home, runtime = self.root / "home", self.root / "run"
        for d in (home, runtime, self.root / "config", self.root / "data"):
            d.mkdir(exist_ok=True)
        runtime.chmod(0o700)
        self.env = {
            "HOME": str(home),
            "USER": os.environ.get("USER", "root"),
            "LOGNAME": os.environ.get("LOGNAME", "root"),
            "SHELL": "/bin/sh",
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "data"),
            "PTYSUP_SOCKET": str(runtime / "control.sock"),
            "PTYSUP_LOG_LEVEL": "warning",
            TAG_VAR: self.tag,
        }
        for name in ("PTYSUP_SCREEN_ENGINE", "PTYSUP_NATIVE"):  # another engine or byte path
            if os.environ.get(name):
                self.env[name] = os.environ[name]
        self.daemons: list[Daemon] = []
        self.tmux_sockets: list[str] = []
        self._counter = 0

    def path(self, stem: str) -> str:
        """A fresh, short path inside the sandbox."""
        self._counter += 1
        return str(self.root / f"{stem}{self._counter}")

    def daemon(self, build: Build | None = None) -> "Daemon":
        """A daemon of this checkout's ptysup, or of `build`'s."""
        daemon = Daemon(self, self.path("d"), build)
        self.daemons.append(daemon)
        daemon.start()
        return daemon

    def tagged_processes(self) -> list[int]:
        needle = f"{TAG_VAR}={self.tag}\0".encode()
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                if needle in read_proc(int(name), "environ") and alive(int(name)):
                    found.append(int(name))
            except OSError:
                continue
        return found

    def close(self) -> None:
        """End everything started here: daemons politely, tmux servers, then any straggler."""
        for daemon in self.daemons:
            daemon.stop()
        for sock in self.tmux_sockets:
            if os.path.exists(sock):
                subprocess.run(
                    ["tmux", "-S", sock, "kill-server"],
                    env=self.env,
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
        deadline = time.monotonic() + 5
        while (left := self.tagged_processes()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        for daemon in self.daemons:
            daemon.reap()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Daemon:
    """A `ptysup daemon` of our own, on its own socket, stopped with `ptysup stop`. Of
    another build, it runs with that build's ptysup and environment, and so do its
    clients (`cli()`, and the commands in `bench.tools`)."""

    def __init__(self, box: Sandbox, directory: str, build: Build | None = None) -> None:
        self.box = box
        self.build = build
        self.ptysup = PTYSUP if build is None else build.ptysup
        self.env = box.env if build is None else build.env(box.env)
        os.mkdir(directory, 0o700)
        self.socket = os.path.join(directory, "s")
        self.log = os.path.join(directory, "log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def start(self) -> None:
        ready_r, ready_w = os.pipe()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.ptysup, "--socket", self.socket, "daemon", "--ready-fd", str(ready_w)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                pass_fds=(ready_w,),
                start_new_session=True,
                cwd="/",
            )
        os.close(ready_w)
        try:
            with os.fdopen(ready_r, "rb") as ready:
                line = ready.readline()
        except OSError:
            line = b""
        if not line.startswith(b"ready"):
            raise RuntimeError(f"the daemon did not start; see {self.log}")
        self.pid = int(line.split()[1])

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [self.ptysup, "--socket", self.socket, "--no-start", *args],
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=False,
            cwd=self.box.env["HOME"],
        )

    def connect(self):
        """A client of this checkout's library; for this checkout's daemons only."""
        from supervisor.client import connect

        assert self.build is None, "another build's daemon is driven through its CLI"
        return connect(self.socket, autostart=False, timeout=60)

    def forget_exited(self) -> None:
        """Remove the sessions that have ended, so that runs do not pile up scrollback."""
        self._remove(lambda session: session["state"] == "exited")

    def remove_all(self) -> None:
        """Remove every session, ending those still running (after a failed measurement)."""
        self._remove(lambda session: True)

    def _remove(self, which: Callable[[dict[str, Any]], bool]) -> None:
        if self.build is None:
            with self.connect() as client:
                for session in client.list():
                    if which(session):
                        client.remove(session["id"])
            return
        listed = self.cli("list", "--json")
        if listed.returncode != 0:
            raise RuntimeError(f"ptysup list: {listed.stderr.decode(errors='replace')}")
        for session in json.loads(listed.stdout):
            if which(session):
                self.cli("rm", session["id"])

    def stop(self, timeout: float = 120) -> float:
        """Stop it and wait until it has gone; the seconds that took."""
        start = time.monotonic()
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.cli("stop", timeout=timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=max(1.0, timeout - (time.monotonic() - start)))
        return time.monotonic() - start

    def reap(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
