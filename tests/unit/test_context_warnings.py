"""`ptysup context` warns of what would still take a nested OpenCode elsewhere."""

import os
from pathlib import Path

import pytest

from supervisor.cli.opencode import context_warnings


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    directory = tmp_path / "shim"
    directory.mkdir()
    (directory / "opencode").write_text("#!/bin/sh\n")
    (directory / "opencode").chmod(0o755)
    other = tmp_path / "other"
    other.mkdir()
    (other / "opencode").write_text("#!/bin/sh\n")
    (other / "opencode").chmod(0o755)
    return directory


def test_nothing_to_say_where_pwd_is_true_and_the_shim_is_first(
    shim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(shim.parent)
    env = {"PWD": str(shim.parent), "PATH": f"{shim}:/usr/bin", "PTYSUP_SESSION": "1"}
    assert context_warnings(str(shim), env) == []


def test_a_stale_pwd_is_named(shim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(shim.parent)
    (warning,) = context_warnings(str(shim), {"PWD": "/", "PATH": f"{shim}:/usr/bin"})
    assert "PWD says /" in warning and os.getcwd() in warning


def test_an_opencode_ahead_of_the_shim_is_named(
    shim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(shim.parent)
    other = shim.parent / "other"
    env = {"PWD": str(shim.parent), "PATH": f"{other}:{shim}", "PTYSUP_SESSION": "1"}
    (warning,) = context_warnings(str(shim), env)
    assert f"{other}/opencode" in warning and "not the shim" in warning
    outside = {"PWD": str(shim.parent), "PATH": str(other)}
    assert context_warnings(str(shim), outside) == []
    assert context_warnings(None, env) == []
