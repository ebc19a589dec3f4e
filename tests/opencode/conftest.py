from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers import OPENCODE, private_env


@pytest.fixture(scope="session")
def opencode_bin() -> str:
    """The pinned OpenCode; its absence is a failure, not a reason to skip."""
    if not (OPENCODE.is_file() and os.access(OPENCODE, os.X_OK)):
        pytest.fail(f"OpenCode is not installed at {OPENCODE}: run `scripts/setup --tests`")
    return str(OPENCODE)


@pytest.fixture
def oc_env(tmp_path: Path) -> dict[str, str]:
    """A private HOME, XDG directories and TMPDIR for one test."""
    return private_env(tmp_path / "oc")
