"""`PWD` against the working directory: what a child is told, what a caller's PWD means."""

import os
from pathlib import Path

from supervisor import workdir


def test_a_pwd_names_a_directory_only_when_it_is_absolute_clean_and_the_same(
    tmp_path: Path,
) -> None:
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    real = str(tmp_path / "real")
    assert workdir.names_directory(real, real)
    assert workdir.names_directory(str(tmp_path / "link"), real)
    assert not workdir.names_directory(str(tmp_path / "real" / "sub"), real)
    assert not workdir.names_directory(f"{real}/sub/..", real)
    assert not workdir.names_directory(f"{real}/.", real)
    assert not workdir.names_directory("real", real)
    assert not workdir.names_directory(str(tmp_path / "missing"), real)
    assert not workdir.names_directory(None, real)
    assert not workdir.names_directory("", real)


def test_logical_keeps_a_true_pwd_and_replaces_a_stale_one(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    real = str(tmp_path / "real")
    assert workdir.logical(str(tmp_path / "link"), real) == str(tmp_path / "link")
    assert workdir.logical(str(tmp_path / "other"), real) == real
    assert workdir.logical(None, real) == real


def test_a_spawn_keeps_a_symlinked_cwd_and_resolves_one_that_does_not_name_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real" / "sub")
    assert workdir.for_spawn(str(tmp_path / "link")) == str(tmp_path / "link")
    assert workdir.for_spawn(f"{tmp_path}/real//sub/") == str(tmp_path / "real" / "sub")
    # `link/..` is the parent of the target for the kernel, of `link` for normpath
    went = workdir.for_spawn(f"{tmp_path}/link/..")
    assert went == os.path.realpath(tmp_path / "real")


def test_current_and_absolute_follow_a_true_pwd_only(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "real" / "x").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path / "real")
    here = os.getcwd()
    assert workdir.current({"PWD": str(tmp_path / "link")}) == str(tmp_path / "link")
    assert workdir.current({"PWD": "/"}) == here
    assert workdir.current({}) == here
    assert workdir.absolute("x", {"PWD": str(tmp_path / "link")}) == str(tmp_path / "link" / "x")
    assert workdir.absolute("x", {"PWD": "/"}) == os.path.join(here, "x")
    assert workdir.absolute("/abs/../y", {}) == "/y"
