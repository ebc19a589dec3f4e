"""`python -m supervisor.daemon`: the entry an upgrade in place executes, and the check
before it, reading its few fixed arguments itself."""

import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.daemon.__main__ import options


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--check-state", "/s"], {"--check-state": "/s"}),
        (["--socket", "/c", "--resume", "/s"], {"--socket": "/c", "--resume": "/s"}),
        (
            ["--resume", "/s", "--no-notify", "--socket", "/c"],
            {"--socket": "/c", "--resume": "/s", "--no-notify": True},
        ),
    ],
)
def test_the_two_forms(argv: list[str], expected: dict[str, object]) -> None:
    assert options(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--socket", "/c"],
        ["--resume", "/s"],
        ["--check-state"],
        ["--check-state", "/s", "--socket", "/c"],
        ["--socket", "/c", "--socket", "/d", "--resume", "/s"],
        ["--socket", "/c", "--resume", "/s", "--ready-fd", "3"],
        ["--check-state", "/s", "--no-notify"],
    ],
)
def test_anything_else_is_refused(argv: list[str]) -> None:
    assert options(argv) is None


def test_a_usage_error_and_a_state_it_cannot_read(tmp_path: Path) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "supervisor.daemon", *argv], capture_output=True, timeout=60
        )

    usage = run("--resume")
    assert usage.returncode == 2 and b"usage: python -m supervisor.daemon" in usage.stderr
    bad = tmp_path / "state"
    bad.write_bytes(b"hello")
    check = run("--check-state", str(bad))
    assert check.returncode == 1 and b"not a pty-supervisor state file" in check.stderr
