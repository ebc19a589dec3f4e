"""Helpers for the service tests: the CLI as a user runs it, fake service managers."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, Sandbox


def service_cli(
    box: Sandbox, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`ptysup service ARGS` as the user of `box` runs it."""
    env = dict(env or box.env)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "tests.service.cli", "service", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=box.home,
        timeout=timeout,
        check=False,
    )


def make_fake_tools(tmp_path: Path) -> Path:
    """A directory of fake systemctl and launchctl that log their arguments to calls.log;
    FAKE_FAIL=WORD makes a call whose arguments contain WORD fail like a missing bus."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = """#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_LOG"
case " $* " in
  *" $FAKE_FAIL "*) echo "Failed to connect to bus: No medium found" >&2; exit 1 ;;
esac
case "$1 $2" in
  "--user show")
    printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\n'
    printf 'UnitFileState=enabled\\nMainPID=4242\\nStatusText=2 sessions (1 running), 0 clients\\n'
    ;;
  "print "*) printf 'gui/0/local.pty-supervisor = {\\n\\tstate = running\\n\\tpid = 4243\\n}\\n' ;;
  "bootout "*) echo "Boot-out failed: 3: No such process" >&2; exit 3 ;;
esac
exit 0
"""
    for name in ("systemctl", "launchctl"):
        tool = bin_dir / name
        tool.write_text(script)
        tool.chmod(0o755)
    return bin_dir


def with_fake_tools(box: Sandbox, bin_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(box.env, **extra)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["FAKE_LOG"] = str(bin_dir / "calls.log")
    env.setdefault("FAKE_FAIL", "never-fails")
    return env


def calls(bin_dir: Path) -> list[str]:
    log = bin_dir / "calls.log"
    return log.read_text().splitlines() if log.exists() else []
