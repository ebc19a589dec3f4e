"""Issue 23, item 4: `ptysup opencode plugin install|uninstall` never writes or removes
through a symbolic link, and removes only what its own manifest lists. Every attack runs
in a fake HOME under tmp_path; the "keys" and ".bashrc" are files there."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from supervisor.opencode import plugin_install as pi
from tests.conftest import PTYSUP

KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n"
BASHRC = b"# my bashrc\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    (home / ".ssh" / "id_ed25519").write_bytes(KEY)
    (home / ".ssh" / "index.js").write_bytes(b"// not the plugin's\n")
    (home / ".bashrc").write_bytes(BASHRC)
    return home


def ptysup(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }
    return subprocess.run([PTYSUP, *args], env=env, capture_output=True, text=True, check=False)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_a_symlinked_plugins_ptysup_in_a_project_is_refused(home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".opencode" / "plugins").mkdir(parents=True)
    (repo / ".opencode" / "plugins" / "ptysup").symlink_to(home / ".ssh")
    ssh = snapshot(home / ".ssh")

    done = ptysup(home, "opencode", "plugin", "install", "--project", str(repo))
    assert done.returncode == 1
    link = repo / ".opencode" / "plugins" / "ptysup"
    assert f"{link} is a symbolic link (to {home / '.ssh'})" in done.stderr
    assert snapshot(home / ".ssh") == ssh
    assert not (repo / ".opencode" / "plugins" / "ptysup.js").exists()

    gone = ptysup(home, "opencode", "plugin", "uninstall", "--project", str(repo))
    assert gone.returncode == 1 and f"{link} is a symbolic link" in gone.stderr
    assert snapshot(home / ".ssh") == ssh


def test_a_symlinked_dot_opencode_or_plugins_in_a_project_is_refused(
    home: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".opencode").symlink_to(home / ".ssh")
    done = ptysup(home, "opencode", "plugin", "install", "--project", str(repo))
    assert done.returncode == 1 and f"{repo / '.opencode'} is a symbolic link" in done.stderr
    (repo / ".opencode").unlink()
    (repo / ".opencode").mkdir()
    (repo / ".opencode" / "plugins").symlink_to(home / ".ssh")
    done = ptysup(home, "opencode", "plugin", "install", "--project", str(repo))
    assert done.returncode == 1 and "plugins is a symbolic link" in done.stderr
    assert sorted(os.listdir(home / ".ssh")) == ["id_ed25519", "index.js"]


def test_a_symlinked_plugins_ptysup_in_the_global_config_is_refused(home: Path) -> None:
    plugins = home / ".config" / "opencode" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "ptysup").symlink_to(home / ".ssh")
    done = ptysup(home, "opencode", "plugin", "install")
    assert done.returncode == 1 and f"{plugins / 'ptysup'} is a symbolic link" in done.stderr
    assert sorted(os.listdir(home / ".ssh")) == ["id_ed25519", "index.js"]
    assert (home / ".ssh" / "id_ed25519").read_bytes() == KEY


def test_a_planted_temporary_file_link_is_not_written_through(home: Path) -> None:
    plugins = home / ".config" / "opencode" / "plugins"
    (plugins / "ptysup").mkdir(parents=True)
    (plugins / ".ptysup.js.tmp").symlink_to(home / ".bashrc")
    for name in pi._plugin_files(pi.source_dir()):
        (plugins / "ptysup" / f".{name}.tmp").symlink_to(home / ".bashrc")

    done = ptysup(home, "opencode", "plugin", "install")
    assert done.returncode == 0, done.stderr
    assert (home / ".bashrc").read_bytes() == BASHRC
    assert (plugins / ".ptysup.js.tmp").is_symlink()
    assert (plugins / "ptysup.js").read_text() == pi.ENTRY_TEXT
    assert not (plugins / "ptysup.js").is_symlink()
    assert not [p for p in plugins.rglob("*.tmp") if not p.is_symlink()], "no temporary left"


def test_a_link_where_a_file_of_ours_belongs_is_refused(home: Path) -> None:
    plugins = home / ".config" / "opencode" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "ptysup.js").symlink_to(home / ".bashrc")
    done = ptysup(home, "opencode", "plugin", "install")
    assert done.returncode == 1 and f"{plugins / 'ptysup.js'} is a symbolic link" in done.stderr
    (plugins / "ptysup.js").unlink()
    assert ptysup(home, "opencode", "plugin", "install").returncode == 0
    (plugins / "ptysup" / "tools.js").unlink()
    (plugins / "ptysup" / "tools.js").symlink_to(home / ".bashrc")
    done = ptysup(home, "opencode", "plugin", "install")
    assert done.returncode == 1 and "tools.js is a symbolic link" in done.stderr
    assert (home / ".bashrc").read_bytes() == BASHRC
    gone = ptysup(home, "opencode", "plugin", "uninstall")
    assert gone.returncode == 0, gone.stderr
    assert (home / ".bashrc").read_bytes() == BASHRC


def test_the_users_own_files_beside_the_plugin_are_kept(home: Path) -> None:
    files = home / ".config" / "opencode" / "plugins" / "ptysup"
    files.mkdir(parents=True)
    (files / "notes.md").write_text("mine\n")
    assert ptysup(home, "opencode", "plugin", "install").returncode == 0
    assert ptysup(home, "opencode", "plugin", "install").returncode == 0
    assert (files / "notes.md").read_text() == "mine\n"
    record = json.loads((files / "install.json").read_text())

    gone = ptysup(home, "opencode", "plugin", "uninstall")
    assert gone.returncode == 0, gone.stderr
    assert sorted(os.listdir(files)) == ["notes.md"]
    assert "holds files ptysup did not write (notes.md)" in gone.stdout
    assert "notes.md" not in record["files"] and "index.js" in record["files"]


def test_an_install_over_a_previous_one_removes_only_what_its_manifest_lists(
    home: Path,
) -> None:
    files = home / ".config" / "opencode" / "plugins" / "ptysup"
    assert ptysup(home, "opencode", "plugin", "install").returncode == 0
    record = json.loads((files / "install.json").read_text())
    record["files"].append("old-module.js")
    record["files"].append("../../../../.bashrc")
    (files / "install.json").write_text(json.dumps(record))
    (files / "old-module.js").write_text("// stale\n")
    (files / "extra.js").write_text("// the user's\n")

    again = ptysup(home, "opencode", "plugin", "install")
    assert again.returncode == 0, again.stderr
    assert f"removed {files / 'old-module.js'}" in again.stdout
    assert not (files / "old-module.js").exists()
    assert (files / "extra.js").exists()
    assert (home / ".bashrc").read_bytes() == BASHRC


def test_a_directory_of_that_name_that_is_not_ours_is_left_alone(home: Path) -> None:
    files = home / ".config" / "opencode" / "plugins" / "ptysup"
    files.mkdir(parents=True)
    (files / "index.js").write_text("// someone else's ptysup\n")
    done = ptysup(home, "opencode", "plugin", "install")
    assert done.returncode == 1 and "no install.json: it is not this plugin's" in done.stderr
    assert (files / "index.js").read_text() == "// someone else's ptysup\n"
    assert ptysup(home, "opencode", "plugin", "uninstall").returncode == 0
    assert (files / "index.js").exists()
