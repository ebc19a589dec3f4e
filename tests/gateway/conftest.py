from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.opencode.helpers import commit, git, private_env


@dataclass(frozen=True)
class Repos:
    a: Path
    a_sub: Path
    b: Path
    outside: Path


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    """Repository A (with a subdirectory), repository B and a directory outside git."""
    env = private_env(tmp_path / "git")
    a, b, outside = tmp_path / "A", tmp_path / "B", tmp_path / "outside"
    for path in (a / "sub", b, outside):
        path.mkdir(parents=True)
    for repo, message in ((a, "a"), (b, "b")):
        git(repo, "init", "-q", env=env)
        commit(repo, message, env=env)
    return Repos(a, a / "sub", b, outside)
