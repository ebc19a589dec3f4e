"""The `opencode` shim's way out of pinning, and its word when no real opencode exists."""

from pathlib import Path

import pytest

from tests.conftest import Sandbox
from tests.e2e.test_opencode_context import Shell
from tests.opencode.helpers import commit, git

pytestmark = pytest.mark.slow

FAKE = '#!/bin/sh\necho "REAL $* in $(pwd)"\n'


def shell_in(sandbox: Sandbox, cwd: Path, path: str) -> Shell:
    sid = sandbox.spawn("bash", "--norc", "--noprofile", "-i", cwd=str(cwd), env=f"PATH={path}")
    shell = Shell(sandbox, sid)
    shell.do("unset HISTFILE; bind 'set enable-bracketed-paste off' 2>/dev/null")
    return shell


def test_context_release_lets_the_shim_follow_cd(sandbox: Sandbox) -> None:
    repos = []
    for name in ("repoA", "repoB"):
        path = sandbox.root / name
        path.mkdir()
        git(path, "init", "-q", env=sandbox.env)
        commit(path, f"root of {name}", env=sandbox.env)
        repos.append(path)
    fake = sandbox.root / "fakebin"
    fake.mkdir()
    (fake / "opencode").write_text(FAKE)
    (fake / "opencode").chmod(0o755)
    shell = shell_in(sandbox, repos[0], f"{fake}:{sandbox.env['PATH']}")
    released = shell.do("ptysup context release")
    assert "now works in the project of the directory it runs in" in released
    out = shell.do(f"cd {repos[1]} && PTYSUP_SHIM_DEBUG=1 opencode hello")
    assert "not pinned: `ptysup context release`" in out
    assert f"REAL hello in {repos[1]}" in out
    assert "keeps to the terminal's project again" in shell.do("ptysup context pin")


def test_the_shim_says_when_no_real_opencode_exists(sandbox: Sandbox) -> None:
    shell = shell_in(sandbox, sandbox.home, sandbox.env["PATH"])
    out = shell.do("opencode --version; echo rc=$?")
    assert "no real opencode to run" in out
    assert "rc=127" in out
