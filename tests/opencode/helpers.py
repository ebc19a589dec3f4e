"""Helpers for tests that drive the real OpenCode: a private home, git, processes that end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENCODE = REPO_ROOT / ".tools" / "opencode" / "node_modules" / ".bin" / "opencode"
GIT_DATE = "2020-01-01T00:00:00Z"


def private_env(root: Path) -> dict[str, str]:
    """An environment whose home, XDG directories and temp directory all live under ``root``."""
    dirs = {
        "HOME": root / "home",
        "XDG_DATA_HOME": root / "home" / ".local" / "share",
        "XDG_CONFIG_HOME": root / "home" / ".config",
        "XDG_CACHE_HOME": root / "home" / ".cache",
        "XDG_STATE_HOME": root / "home" / ".local" / "state",
        "TMPDIR": root / "tmp",
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        **{k: str(v) for k, v in dirs.items()},
    }


def git(cwd: Path | str, *args: str, env: dict[str, str]) -> str:
    """Run git deterministically: fixed identity, dates and default branch."""
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        env={**env, "GIT_AUTHOR_DATE": GIT_DATE, "GIT_COMMITTER_DATE": GIT_DATE},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {done.stderr}")
    return done.stdout.strip()


def commit(cwd: Path | str, message: str, *, env: dict[str, str]) -> str:
    git(cwd, "commit", "-q", "--allow-empty", "-m", message, env=env)
    return git(cwd, "rev-parse", "HEAD", env=env)


class OpenCodeProcess:
    """A real OpenCode in its own process group, with its output in a log file."""

    def __init__(self, argv: list[str], *, cwd: Path | str, env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.output())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"OpenCode never printed {pattern!r}:\n{self.output()}")

    def stop(self) -> None:
        """End the whole process group and check that nothing of it is left."""
        pgid = self.proc.pid
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + 5
        while _live_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _live_members(pgid), f"processes left in group {pgid}"


def _live_members(pgid: int) -> list[int]:
    if not sys.platform.startswith("linux"):
        return []
    live = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(entry))
    return live


@contextmanager
def running(
    argv: list[str], *, cwd: Path | str, env: dict[str, str], log: Path
) -> Iterator[OpenCodeProcess]:
    proc = OpenCodeProcess(argv, cwd=cwd, env=env, log=log)
    try:
        yield proc
    finally:
        proc.stop()


@contextmanager
def opencode_server(binary: str, *, env: dict[str, str], cwd: Path) -> Iterator[str]:
    """``opencode serve`` on a free local port; yields its base URL."""
    argv = [binary, "serve", "--hostname", "127.0.0.1", "--port", "0"]
    with running(argv, cwd=cwd, env=env, log=cwd / "serve.log") as proc:
        yield proc.wait_for_output(r"http://127\.0\.0\.1:\d+")[0]
