"""Another build of ptysup to measure beside this one: a checkout of the project with its
own `.venv`, whose daemon and client run with that venv's Python and code only."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Variables that would make the baseline's Python import this checkout's code or venv.
LEAKS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONUSERBASE")
CURRENT_BIN = str(Path(sys.executable).parent)
PROBE = "import supervisor, sys; print(supervisor.__file__); print(supervisor.__version__)"


@dataclass(frozen=True)
class Build:
    """A checkout's ptysup: its directory, its venv's bin/ and the commands in it."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / ".venv" / "bin"

    @property
    def ptysup(self) -> str:
        return str(self.bin / "ptysup")

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """`base` (a sandbox's environment) with this build's bin/ first on PATH in place
        of the current build's, and nothing that points Python elsewhere."""
        env = {k: v for k, v in base.items() if k not in LEAKS}
        rest = [p for p in base["PATH"].split(":") if p and p != CURRENT_BIN]
        env["PATH"] = ":".join([str(self.bin), *rest])
        return env


def problem(root: Path) -> str | None:
    """Why `root` cannot serve as a baseline, or None."""
    build = Build(root)
    if not root.is_dir():
        return f"{root} is not a directory"
    for command in (build.ptysup, build.python):
        if not os.access(command, os.X_OK):
            return f"{command} is missing (set up that checkout's .venv first)"
    return None


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def describe(build: Build, env: dict[str, str]) -> dict[str, Any]:
    """What the baseline is, for the results: its commit, and where its Python imports
    `supervisor` from when run the way its daemon is (it must be inside the checkout)."""
    proc = subprocess.run(
        [build.python, "-c", PROBE],
        env=build.env(env),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    lines = proc.stdout.split("\n")
    if proc.returncode != 0 or len(lines) < 2:
        raise RuntimeError(f"{build.python} cannot import supervisor: {proc.stderr.strip()}")
    module, version = lines[0], lines[1]
    if not Path(module).resolve().is_relative_to(build.root.resolve()):
        raise RuntimeError(f"{build.python} imports supervisor from {module}, not {build.root}")
    status = _git(build.root, "status", "--porcelain", "--", "supervisor")
    return {
        "dir": str(build.root),
        "commit": _git(build.root, "rev-parse", "HEAD"),
        "dirty": bool(status),
        "ptysup": version,
        "supervisor": module,
    }
