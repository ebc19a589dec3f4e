"""`ptysup opencode plugin install|uninstall|status` in a private HOME."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PTYSUP
from tests.opencode.helpers import OPENCODE

pytestmark = pytest.mark.slow


def ptysup(home: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "PATH": path if path is not None else f"{OPENCODE.parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }
    return subprocess.run([PTYSUP, *args], env=env, capture_output=True, text=True, check=False)


def fake_opencode(directory: Path, version: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    binary = directory / "opencode"
    binary.write_text(f"#!/bin/sh\necho {version}\n")
    binary.chmod(0o755)
    return str(directory)


def test_install_is_idempotent_and_keeps_the_users_config(tmp_path: Path) -> None:
    config = tmp_path / ".config" / "opencode"
    config.mkdir(parents=True)
    own = '{\n  // mine\n  "theme": "x", "plugin": ["something-else"]\n}\n'
    (config / "opencode.jsonc").write_text(own)
    (config / "plugins").mkdir()
    (config / "plugins" / "other.js").write_text("export default {}\n")

    first = ptysup(tmp_path, "opencode", "plugin", "install")
    assert first.returncode == 0, first.stderr
    assert f"installed in {config / 'plugins'}" in first.stdout
    assert "(1.18.33)" in first.stdout
    entry = config / "plugins" / "ptysup.js"
    assert 'export { default } from "./ptysup/index.js"' in entry.read_text()
    record = json.loads((config / "plugins" / "ptysup" / "install.json").read_text())
    assert os.access(record["command"][0], os.X_OK)
    snapshot = {p: p.read_bytes() for p in config.rglob("*") if p.is_file()}

    second = ptysup(tmp_path, "opencode", "plugin", "install", "--json")
    assert json.loads(second.stdout)["changed"] == []
    assert {p: p.read_bytes() for p in config.rglob("*") if p.is_file()} == snapshot
    assert (config / "opencode.jsonc").read_text() == own
    assert (config / "plugins" / "other.js").read_text() == "export default {}\n"

    status = ptysup(tmp_path, "opencode", "plugin", "status")
    assert status.returncode == 0
    assert "installed, up to date" in status.stdout

    (config / "plugins" / "ptysup" / "tools.js").write_text("// edited\n")
    stale = ptysup(tmp_path, "opencode", "plugin", "status")
    assert stale.returncode == 1 and "out of date" in stale.stdout
    assert ptysup(tmp_path, "opencode", "plugin", "install").returncode == 0

    gone = ptysup(tmp_path, "opencode", "plugin", "uninstall")
    assert gone.returncode == 0 and "removed" in gone.stdout
    assert not entry.exists() and not (config / "plugins" / "ptysup").exists()
    assert (config / "opencode.jsonc").read_text() == own
    assert (config / "plugins" / "other.js").exists()
    assert "nothing to remove" in ptysup(tmp_path, "opencode", "plugin", "uninstall").stdout
    assert ptysup(tmp_path, "opencode", "plugin", "status").returncode == 1


def test_project_install_goes_to_its_dot_opencode(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    done = ptysup(tmp_path, "opencode", "plugin", "install", "--project", str(project))
    assert done.returncode == 0, done.stderr
    assert (project / ".opencode" / "plugins" / "ptysup.js").is_file()
    assert not (tmp_path / ".config" / "opencode" / "plugins").exists()
    missing = ptysup(tmp_path, "opencode", "plugin", "install", "--project", str(tmp_path / "no"))
    assert missing.returncode == 1 and "no such directory" in missing.stderr


def test_too_old_or_missing_opencode_is_said_clearly(tmp_path: Path) -> None:
    old = fake_opencode(tmp_path / "old", "1.2.0")
    refused = ptysup(tmp_path, "opencode", "plugin", "install", path=f"{old}:/usr/bin:/bin")
    assert refused.returncode == 1
    assert "is OpenCode 1.2.0, too old for this plugin" in refused.stderr
    assert "opencode upgrade" in refused.stderr and "--force" in refused.stderr
    assert not (tmp_path / ".config" / "opencode" / "plugins").exists()
    forced = ptysup(
        tmp_path, "opencode", "plugin", "install", "--force", path=f"{old}:/usr/bin:/bin"
    )
    assert forced.returncode == 0

    weird = fake_opencode(tmp_path / "weird", "nightly")
    unknown = ptysup(tmp_path, "opencode", "plugin", "status", path=f"{weird}:/usr/bin:/bin")
    assert "printed no version ('nightly')" in unknown.stdout

    none = ptysup(tmp_path, "opencode", "plugin", "status", path="/usr/bin:/bin")
    assert "OpenCode was not found" in none.stdout


def test_opencode_pty_in_the_config_is_pointed_out(tmp_path: Path) -> None:
    config = tmp_path / ".config" / "opencode"
    config.mkdir(parents=True)
    (config / "opencode.json").write_text('{"plugin": ["opencode-pty"]}')
    done = ptysup(tmp_path, "opencode", "plugin", "install")
    assert "loads opencode-pty, whose pty_* tools have the same names" in done.stdout
    assert (config / "opencode.json").read_text() == '{"plugin": ["opencode-pty"]}'


def test_a_foreign_entry_file_is_never_overwritten(tmp_path: Path) -> None:
    plugins = tmp_path / ".config" / "opencode" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "ptysup.js").write_text("// mine\n")
    done = ptysup(tmp_path, "opencode", "plugin", "install")
    assert done.returncode == 1 and "is not this plugin's" in done.stderr
    assert ptysup(tmp_path, "opencode", "plugin", "uninstall").returncode == 1
    assert (plugins / "ptysup.js").read_text() == "// mine\n"
