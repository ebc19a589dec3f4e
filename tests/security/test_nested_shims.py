"""Issue 23, item 6 and the `locate` point of "Also": the `opencode` shims of two nested
daemons (`PATH=shimB:shimA:…`) used to exec each other for ever, each skipping only its
own directory; and a relative PATH entry made the shim run `./opencode` after moving into
the project. A shim skips every marked shim directory and every shim script, and runs
OpenCode by an absolute path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.opencode import shim
from supervisor.opencode.locate import SHIM_MARKER, OpenCodeNotFound, find_opencode, is_shim

FAKE = """#!/bin/sh
case "$*" in
  --help) printf 'Commands:\\n  opencode serve  starts a headless opencode server\\n' ;;
  *) echo "REAL $* in $(pwd)" ;;
esac
"""


def fake_opencode(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    binary = directory / "opencode"
    binary.write_text(FAKE)
    binary.chmod(0o755)
    return binary


@pytest.fixture
def shims(tmp_path: Path) -> tuple[Path, Path]:
    return Path(shim.install(str(tmp_path / "a" / "shim"))), Path(
        shim.install(str(tmp_path / "b" / "shim"))
    )


def run_shim(
    script: Path, path: str, tmp_path: Path, cwd: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": path,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "PTYSUP_SHIM_CACHE": str(tmp_path / "shim-cache"),
        "PWD": str(cwd),
        "LANG": "C.UTF-8",
        **extra,
    }
    return subprocess.run(
        [str(script), "--version"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_install_marks_the_shim_directory(shims: tuple[Path, Path]) -> None:
    for directory in shims:
        assert (directory / SHIM_MARKER).is_file()
        assert is_shim(str(directory / "opencode"))


def test_two_nested_shims_find_the_real_opencode_and_never_loop(
    shims: tuple[Path, Path], tmp_path: Path
) -> None:
    shim_a, shim_b = shims
    real = fake_opencode(tmp_path / "fakebin")
    path = os.pathsep.join([str(shim_b), str(shim_a), str(real.parent), "/usr/bin", "/bin"])
    done = run_shim(shim_b / "opencode", path, tmp_path, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("REAL --version in "), done.stdout
    assert find_opencode(path=path, skip=[str(shim_b)]) == str(real)
    assert find_opencode(path=path, skip=[str(shim_a)]) == str(real)


def test_only_shims_on_path_is_a_clear_failure_not_a_loop(
    shims: tuple[Path, Path], tmp_path: Path
) -> None:
    shim_a, shim_b = shims
    path = os.pathsep.join([str(shim_b), str(shim_a), "/usr/bin", "/bin"])
    done = run_shim(shim_b / "opencode", path, tmp_path, tmp_path)
    assert done.returncode == 127
    assert "no real opencode to run" in done.stderr


def test_an_unmarked_shim_and_a_link_to_a_shim_are_passed_over(
    shims: tuple[Path, Path], tmp_path: Path
) -> None:
    shim_a, shim_b = shims
    (shim_a / SHIM_MARKER).unlink()
    userbin = tmp_path / "userbin"
    userbin.mkdir()
    (userbin / "opencode").symlink_to(shim_b / "opencode")
    real = fake_opencode(tmp_path / "fakebin")
    path = os.pathsep.join([str(userbin), str(shim_a), str(real.parent)])
    assert find_opencode(path=path) == str(real)
    done = run_shim(shim_b / "opencode", f"{shim_b}:{path}:/usr/bin:/bin", tmp_path, tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("REAL --version"), done.stderr


def test_a_shim_named_as_the_real_opencode_is_refused(
    shims: tuple[Path, Path], tmp_path: Path
) -> None:
    shim_a, shim_b = shims
    with pytest.raises(OpenCodeNotFound, match="is a ptysup shim"):
        find_opencode(binary=str(shim_a / "opencode"))
    path = f"{shim_b}:/usr/bin:/bin"
    done = run_shim(
        shim_b / "opencode", path, tmp_path, tmp_path, PTYSUP_OPENCODE_BIN=str(shim_a / "opencode")
    )
    assert done.returncode == 127 and "is a ptysup shim, not OpenCode" in done.stderr


def test_relative_path_entries_are_made_absolute_at_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    fake_opencode(work / "bin")
    fake_opencode(work)
    monkeypatch.chdir(work)
    assert find_opencode(path="bin") == str(work / "bin" / "opencode")
    assert find_opencode(path="/nonexistent::bin") == str(work / "opencode")
    assert find_opencode(path=".") == str(work / "opencode")


def test_the_shim_runs_a_relative_path_opencode_after_moving_into_the_project(
    shims: tuple[Path, Path], tmp_path: Path
) -> None:
    _, shim_b = shims
    work = tmp_path / "work"
    fake_opencode(work / "bin")
    anchor = tmp_path / "anchor"
    anchor.mkdir()
    done = subprocess.run(
        [str(shim_b / "opencode"), "serve"],
        env={
            "PATH": f"{shim_b}:bin:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PTYSUP_SHIM_CACHE": str(tmp_path / "shim-cache"),
            "OPENCODE_DIRECTORY": str(anchor),
            "PWD": str(work),
        },
        cwd=work,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"REAL serve in {anchor}"


def test_the_shim_script_is_this_python(shims: tuple[Path, Path]) -> None:
    assert (shims[0] / "opencode").read_text().startswith(f"#!{sys.executable}\n")
