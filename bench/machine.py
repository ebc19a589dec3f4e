"""What the figures were measured on."""

import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import supervisor

ROOT = Path(__file__).resolve().parent.parent


def _output(argv: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (proc.stdout + proc.stderr).strip()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_mb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


def dtach_version() -> str:
    match = re.search(r"version (\S+)", _output(["dtach", "--help"]))
    return match[1] if match else "?"


def describe() -> dict[str, Any]:
    commit = _output(["git", "rev-parse", "--short", "HEAD"], ROOT)
    dirty = bool(_output(["git", "status", "--porcelain", "--", "supervisor"], ROOT))
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_mb": memory_mb(),
        "kernel": platform.release(),
        "os": platform.system(),
        "python": sys.version.split()[0],
        "tmux": _output(["tmux", "-V"]).removeprefix("tmux "),
        "dtach": dtach_version(),
        "ptysup": supervisor.__version__,
        "commit": commit + ("+dirty" if dirty else "") if commit else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
