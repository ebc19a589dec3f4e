"""Issue 22 end to end: where the real OpenCode 1.18.33 files a session started from a
supervised terminal (the `project_id` and `directory` of its `session` row) when the
directory reaches it through a stale `PWD`, a project without commits, a first commit made
later, `--session`/`--continue` from another directory, or rc files that put another
`opencode` ahead of the shim. Driven by the scripted model, in a private HOME.

OpenCode 1.18's `run` takes its directory from `path.resolve(process.env.PWD ??
process.cwd())`, so a child started with a working directory of its own but the parent's
`PWD` lands in the parent's directory unless something corrects `PWD`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor.opencode.project import project_for
from tests.conftest import BIN, Sandbox, wait_until
from tests.e2e.test_opencode_context import Shell
from tests.opencode.helpers import OPENCODE, git
from tests.plugin.conftest import World, opened_world

pytestmark = [pytest.mark.slow, pytest.mark.opencode, pytest.mark.timeout(420)]

RUN_LIMIT = 120
"""Seconds one `opencode run` may take (a cold start in a fresh HOME takes 10-20 s here)."""


@dataclass(frozen=True)
class Row:
    """One row of OpenCode's `session` table, with the number of its messages."""

    id: str
    project_id: str
    directory: str
    messages: int


@dataclass
class Scene:
    """The module's world: project A (a repository with a commit, and A/sub), its OpenCode
    id and resolved directory, and the shim the daemon installs."""

    world: World
    a: Path
    a_id: str

    @property
    def box(self) -> Sandbox:
        return self.world.box

    @property
    def home(self) -> Path:
        return self.world.box.home

    @property
    def sub(self) -> Path:
        return self.a / "sub"

    @property
    def shim(self) -> str:
        return os.path.join(os.path.dirname(self.box.socket), "shim", "opencode")

    def rows(self) -> dict[str, Row]:
        """Every session OpenCode has filed, read from its own database."""
        db = Path(self.world.env["XDG_DATA_HOME"]) / "opencode" / "opencode.db"
        if not db.exists():
            return {}
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            found = conn.execute(
                "SELECT s.id, s.project_id, s.directory,"
                " (SELECT count(*) FROM message m WHERE m.session_id = s.id)"
                " FROM session s ORDER BY s.time_created"
            ).fetchall()
        return {r[0]: Row(*r) for r in found}

    def new_rows(self, before: dict[str, Row]) -> list[Row]:
        return [row for sid, row in self.rows().items() if sid not in before]

    def one_new_row(self, before: dict[str, Row], what: str) -> Row:
        added = self.new_rows(before)
        assert len(added) == 1, f"{what}: expected one new session row, got {added}"
        return added[0]


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    """The plugin tests' world (tests/plugin/conftest.py), shared by the whole module: a
    private HOME and XDG directories, ptysup's daemon, the plugin installed, project A, and
    OpenCode configured for the scripted model on 127.0.0.1."""
    assert OPENCODE.exists(), "the pinned OpenCode is missing: run scripts/setup --tests"
    base = Path(tempfile.mkdtemp(prefix="ps-", dir="/tmp"))
    try:
        with opened_world(base, daemon_env=True) as world:
            a = Path(os.path.realpath(world.project))
            a_id = project_for(str(a)).id
            assert a_id != "global"
            yield Scene(world, a, a_id)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(autouse=True)
def ends_its_terminals(scene: Scene) -> Iterator[None]:
    """Each test's terminals end with it, and nothing of them is left running."""
    yield
    box = scene.box
    ids = [s["id"] for s in box.json("list")]
    if ids:
        box.ok("rm", *ids)
    daemon = box.daemon_pid()
    assert wait_until(lambda: not [p for p in box.leftovers() if p != daemon], timeout=15), (
        f"processes left behind: {[p for p in box.leftovers() if p != daemon]}"
    )


def open_terminal(box: Sandbox, cwd: Path, *argv: str) -> Shell:
    """A supervised interactive shell in `cwd`: `bash --norc --noprofile -i` unless `argv`
    names another (one that reads rc files)."""
    command = argv or ("bash", "--norc", "--noprofile", "-i")
    shell = Shell(box, box.spawn(*command, cwd=str(cwd)))
    shell.do("unset HISTFILE; bind 'set enable-bracketed-paste off' 2>/dev/null")
    return shell


def bounded(shell: Shell, command: str, limit: float = RUN_LIMIT) -> str:
    """Run `command` in `shell` under `timeout`: a hang is a clear failure, not a stuck test."""
    out = shell.do(f"timeout -k 5 {limit:g} {command}; echo EXIT=$?", timeout=limit + 30)
    status = re.findall(r"^EXIT=(\d+)", out, re.M)
    assert status, f"no exit status for {command!r}:\n{out[-3000:]}"
    if status[-1] == "124":
        raise AssertionError(f"{command!r} did not finish within {limit:g} s (it hangs):\n{out}")
    assert status[-1] == "0", f"{command!r} exited {status[-1]}:\n{out[-3000:]}"
    return out


class Problems(list[str]):
    """Every way a test's scenario went wrong, reported together."""

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.append(problem)

    def filed(self, row: Row, project_id: str, directory: str, what: str) -> None:
        self.check(
            (row.project_id, row.directory) == (project_id, directory),
            f"{what}: filed under {row.project_id} in {row.directory}, "
            f"not under {project_id} in {directory}",
        )

    def done(self) -> None:
        assert not self, "\n".join(self)


def first_opencode(shell: Shell) -> str:
    out = shell.do("command -v opencode")
    found = re.findall(r"^(/\S*)\s*$", out, re.M)
    assert found, f"`command -v opencode` found nothing:\n{out}"
    return found[0]


def json_in(out: str) -> dict[str, object]:
    """The JSON object a command printed in a terminal, among the echo and the marker."""
    start = re.search(r"^\{", out, re.M)
    assert start, f"no JSON in:\n{out}"
    value, _ = json.JSONDecoder().raw_decode(out[start.start() :])
    assert isinstance(value, dict)
    return value


def inside(directory: str, root: Path) -> bool:
    return directory == str(root) or directory.startswith(f"{root}/")


# 1. A program that starts `opencode` with a working directory of its own keeps its PWD.


def test_a_subprocess_with_its_own_cwd_files_in_the_terminals_project(scene: Scene) -> None:
    shell = open_terminal(scene.box, scene.a)
    shell.do("cd ~")
    before = scene.rows()
    script = f'import subprocess; subprocess.run(["opencode", "run", "p1"], cwd="{scene.sub}")'
    bounded(shell, f"python3 -c '{script}'")
    row = scene.one_new_row(before, "opencode run from python with cwd=A/sub, PWD=~")
    assert row.project_id == scene.a_id and inside(row.directory, scene.a), (
        f"filed under {row.project_id} in {row.directory}, not under A ({scene.a_id}) in "
        f"{scene.a}: OpenCode took the stale PWD {scene.home}"
    )


# 2. `ptysup run --cwd` gives its child a PWD naming that directory.


def test_ptysup_run_with_a_cwd_gives_the_child_that_pwd(scene: Scene) -> None:
    box, home = scene.box, scene.home
    env = {**box.env, "PWD": str(home)}  # as a shell in ~ has it

    def run(*args: str) -> str:
        done = box.run("run", "--no-stdin", *args, env=env, cwd=home, timeout=RUN_LIMIT + 30)
        out = done.stdout.decode(errors="replace")
        assert done.returncode == 0, f"ptysup run {args} exited {done.returncode}:\n{out}"
        return out

    link = home / "link"
    if not link.is_symlink():
        link.symlink_to(scene.sub)
    problems = Problems()
    for cwd in (scene.sub, link):  # a symlinked --cwd keeps its logical form
        pwd = run("--cwd", str(cwd), "--", "printenv", "PWD").strip()
        problems.check(pwd == str(cwd), f"`ptysup run --cwd {cwd}` gave the child PWD={pwd}")

    before = scene.rows()
    run("--cwd", str(scene.a), "--", "opencode", "run", "p2")
    row = scene.one_new_row(before, "ptysup run --cwd A -- opencode run from ~")
    problems.filed(row, scene.a_id, str(scene.a), "ptysup run --cwd A -- opencode run")
    problems.done()


# 3. A terminal outside any project (a plain directory, a repository without commits).


@pytest.mark.parametrize("kind", ["outside-git", "no-commits"])
def test_a_terminal_outside_any_project_keeps_its_directory(scene: Scene, kind: str) -> None:
    where = scene.box.root / f"{kind}-3"
    where.mkdir(exist_ok=True)
    if kind == "no-commits":
        git(where, "init", "-q", env=scene.box.env)
    resolved = os.path.realpath(where)
    assert project_for(resolved).id == "global"
    shell = open_terminal(scene.box, where)
    shell.do("cd ~")
    before = scene.rows()
    bounded(shell, "opencode run p3")
    row = scene.one_new_row(before, f"opencode run from ~ in a terminal opened in {kind}")
    assert (row.project_id, row.directory) == ("global", resolved), (
        f"filed in {row.directory}, not in the terminal's directory {resolved}"
    )


# 4. The first commit is made after the terminal opened.


def test_a_first_commit_made_later_moves_the_terminal_into_the_new_project(
    scene: Scene,
) -> None:
    b = scene.box.root / "B-4"
    b.mkdir()
    git(b, "init", "-q", env=scene.box.env)
    resolved = os.path.realpath(b)
    shell = open_terminal(scene.box, b)
    assert scene.box.json("info", shell.sid)["context"]["project_id"] == "global"
    shell.do("git -c user.name=t -c user.email=t@e commit -q --allow-empty -m x")
    new_id = project_for(resolved).id
    assert new_id != "global"
    shell.do("cd ~")
    context = json_in(shell.do("ptysup context --json"))
    nested = shell.do("ptysup run -- printenv OPENCODE_PROJECT_ID")
    before = scene.rows()
    bounded(shell, "opencode run p4")
    row = scene.one_new_row(before, "opencode run from ~ after the first commit")

    problems = Problems()
    problems.filed(row, new_id, resolved, "opencode run from ~ after the first commit")
    problems.check(
        context["project_id"] == new_id,
        f"`ptysup context` says project {context['project_id']}, not {new_id}",
    )
    problems.check(
        bool(re.search(rf"^{new_id}\s*$", nested, re.M)),
        f"a nested `ptysup run` does not get OPENCODE_PROJECT_ID={new_id}:\n{nested}",
    )
    problems.done()


# 5. `--session` and `--continue` from another directory of the same project.


@pytest.fixture(scope="module")
def a_session(scene: Scene) -> str:
    """A session OpenCode filed in A, started there directly."""
    before = scene.rows()
    scene.world.opencode("run", "p5", cwd=scene.a, timeout=RUN_LIMIT)
    row = scene.one_new_row(before, "opencode run in A")
    assert (row.project_id, row.directory) == (scene.a_id, str(scene.a)), row
    return row.id


@pytest.mark.parametrize("where", ["sub", "home", "worktree"])
def test_session_from_another_directory_continues_that_session(
    scene: Scene, a_session: str, where: str
) -> None:
    if where == "sub":
        directory = scene.sub
    elif where == "home":
        directory = scene.home
    else:
        directory = scene.box.root / "A-worktree"
        if not directory.exists():
            git(scene.a, "worktree", "add", "-q", "--detach", str(directory), env=scene.box.env)
        assert project_for(str(directory)).id == scene.a_id
    shell = open_terminal(scene.box, scene.a)
    shell.do(f"cd {directory}")
    before = scene.rows()
    bounded(shell, f"opencode run --session {a_session} p6")
    after = scene.rows()
    assert not scene.new_rows(before), (
        f"--session from {where} made a new session: {scene.new_rows(before)}"
    )
    assert after[a_session].messages > before[a_session].messages, (
        f"--session from {where} added nothing to {a_session}: {after[a_session]}"
    )
    assert (after[a_session].project_id, after[a_session].directory) == (
        scene.a_id,
        str(scene.a),
    )


def test_continue_from_a_subdirectory_continues_the_projects_latest_session(
    scene: Scene,
) -> None:
    before = scene.rows()
    scene.world.opencode("run", "p7-first", cwd=scene.a, timeout=RUN_LIMIT)
    latest = scene.one_new_row(before, "opencode run in A")
    assert (latest.project_id, latest.directory) == (scene.a_id, str(scene.a)), latest
    shell = open_terminal(scene.box, scene.a)
    shell.do(f"cd {scene.sub}")
    before = scene.rows()
    bounded(shell, "opencode run --continue p7")
    after = scene.rows()
    assert not scene.new_rows(before), (
        f"--continue from A/sub started a new session instead of continuing {latest.id}: "
        f"{scene.new_rows(before)}"
    )
    assert after[latest.id].messages > before[latest.id].messages, (
        f"--continue from A/sub added nothing to A's latest session {latest.id}"
    )


# 6. Shell start-up files that put another `opencode` ahead of the shim.


def test_a_bashrc_that_prepends_another_opencode_still_finds_the_shim(scene: Scene) -> None:
    # As OpenCode's installer leaves it: its own copy first on PATH, from ~/.bashrc. It is
    # the real binary (a fake one would be what the shim runs, as the next on PATH).
    home = scene.home
    installed = home / ".opencode" / "bin"
    installed.mkdir(parents=True, exist_ok=True)
    if not (installed / "opencode").is_symlink():
        (installed / "opencode").symlink_to(OPENCODE)
    rc = home / ".bashrc"
    rc.write_text('export PATH="$HOME/.opencode/bin:$PATH"\n')
    try:
        shell = open_terminal(scene.box, scene.a, "bash", "-i")
        found = first_opencode(shell)
        shell.do("cd ~")
        before = scene.rows()
        bounded(shell, "opencode run p8")
        added = scene.new_rows(before)
    finally:
        rc.unlink()
    problems = Problems()
    problems.check(found == scene.shim, f"`command -v opencode` is {found}, not the shim")
    assert len(added) == 1, added
    problems.filed(added[0], scene.a_id, str(scene.a), "opencode run from ~ in `bash -i`")
    problems.done()


def test_a_login_shell_whose_profile_resets_path_still_finds_the_shim(scene: Scene) -> None:
    profile = scene.home / ".bash_profile"
    profile.write_text(f"export PATH=/usr/bin:/bin:{BIN}:{OPENCODE.parent}\n")
    try:
        shell = open_terminal(scene.box, scene.a, "bash", "-l")
        found = first_opencode(shell)
    finally:
        profile.unlink()
    assert found == scene.shim, f"`command -v opencode` is {found}, not the shim {scene.shim}"
