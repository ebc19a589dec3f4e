"""Issue 22: the `opencode` shim, run as a real process with a stale `PWD`, gives the
OpenCode it starts a `PWD` naming the directory that OpenCode runs in, in every branch (no
terminal project, the same project, another project pinned, released), and says so under
`PTYSUP_SHIM_DEBUG=1`. OpenCode 1.18's `run` takes its directory from `$PWD` when it is set.

The real OpenCode is replaced by a Python script (a shell would repair `PWD` itself at
start-up) that answers the shim's probe like OpenCode 1.18.33 and otherwise prints the
`PWD` it got, its working directory and its arguments.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor.opencode import shim
from supervisor.opencode.probe import probe
from supervisor.opencode.project import project_for
from tests.opencode.helpers import commit, git, private_env

HELP = {
    "--version": "1.18.33\n",
    "--help": """\
opencode [project]

start opencode tui

Commands:
  opencode [project]        start opencode tui                          [default]
  opencode attach <url>     attach to a running opencode server
  opencode run [message..]  run opencode with a message
  opencode serve            starts a headless opencode server
  opencode session          manage sessions
  opencode db               database tools

Positionals:
  project  path to start opencode in                                     [string]

Options:
  -h, --help        show help                                           [boolean]
  -v, --version     show version number                                 [boolean]
  -m, --model       model to use in the format of provider/model         [string]
  -c, --continue    continue the last session                           [boolean]
  -s, --session     session id to continue                               [string]
      --prompt      prompt to use                                        [string]
""",
    "run --help": """\
opencode run [message..]

run opencode with a message

Options:
  -c, --continue    continue the last session                           [boolean]
  -s, --session     session id to continue                               [string]
  -m, --model       model to use in the format of provider/model         [string]
      --attach      attach to a running opencode server                  [string]
      --dir         directory to run in                                  [string]
  -f, --file        file(s) to attach to message                          [array]
""",
    "attach --help": """\
opencode attach <url>

attach to a running opencode server

Options:
      --dir         directory to run in                                  [string]
  -c, --continue    continue the last session                           [boolean]
  -s, --session     session id to continue                               [string]
""",
}

FAKE = f"""#!{sys.executable}
import json, os, sys
HELP = json.loads({json.dumps(json.dumps(HELP))})
args = sys.argv[1:]
if " ".join(args) in HELP:
    sys.stdout.write(HELP[" ".join(args)])
    sys.exit(0)
print(json.dumps({{"pwd": os.environ.get("PWD"), "cwd": os.getcwd(), "args": args}}))
"""


@dataclass(frozen=True)
class Ran:
    """What the fake OpenCode saw, and what the shim said."""

    pwd: str | None
    cwd: str
    args: list[str]
    stderr: str


@dataclass
class Setup:
    shim: Path
    socket_dir: Path
    fake: Path
    env: dict[str, str]
    a: str
    """Project A (a repository with a commit), resolved; A/sub is inside it."""
    a_id: str
    d: str
    """Another project (a repository with another root commit)."""
    plain: str
    """A directory outside git (project `global`)."""
    stale: str
    """An existing directory none of the above: what a stale PWD names."""

    @property
    def sub(self) -> str:
        return os.path.join(self.a, "sub")

    def run(self, *argv: str, cwd: str, pwd: str | None, **extra: str) -> Ran:
        env = {**self.env, **extra}
        if pwd is None:
            env.pop("PWD", None)
        else:
            env["PWD"] = pwd
        done = subprocess.run(
            [str(self.shim), *argv],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"the shim exited {done.returncode}: {done.stderr}"
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        return Ran(seen["pwd"], seen["cwd"], seen["args"], done.stderr)

    def terminal(self, directory: str) -> dict[str, str]:
        """What the daemon gives a terminal opened in `directory`."""
        return {
            "OPENCODE_DIRECTORY": directory,
            "OPENCODE_PROJECT_ID": project_for(directory).id,
            "PTYSUP_SESSION": "7",
        }


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    env = private_env(tmp_path / "oc")
    base = Path(os.path.realpath(tmp_path))
    a, d, plain = base / "A", base / "D", base / "plain"
    for path in (a / "sub", d, plain):
        path.mkdir(parents=True)
    for repo, message in ((a, "root of A"), (d, "root of D")):
        git(repo, "init", "-q", env=env)
        commit(repo, message, env=env)
    socket_dir = base / "sock"
    shim_dir = Path(shim.install(str(socket_dir / "shim")))
    fake = base / "real" / "opencode"
    fake.parent.mkdir()
    fake.write_text(FAKE)
    fake.chmod(0o755)
    caps = probe(str(fake), str(base / "probe-check"))
    assert caps.tui_project and caps.run_dir and caps.attach_dir, caps  # the fake is believed
    a_id = project_for(str(a)).id
    assert a_id not in ("global", project_for(str(d)).id)
    # the shim imports the same `supervisor` as this process
    same_code = {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}
    return Setup(
        shim=shim_dir / shim.SHIM_NAME,
        socket_dir=socket_dir,
        fake=fake,
        env={**env, **same_code, "PTYSUP_OPENCODE_BIN": str(fake)},
        a=str(a),
        a_id=a_id,
        d=str(d),
        plain=str(plain),
        stale=env["HOME"],
    )


def names(pwd: str | None, directory: str) -> bool:
    """Whether `pwd` is an absolute path of `directory` (symlinks allowed)."""
    return (
        pwd is not None
        and os.path.isabs(pwd)
        and os.path.realpath(pwd) == os.path.realpath(directory)
    )


def assert_pwd(ran: Ran, directory: str) -> None:
    assert os.path.realpath(ran.cwd) == os.path.realpath(directory), ran
    assert names(ran.pwd, directory), (
        f"OpenCode ran in {ran.cwd} with PWD={ran.pwd}: its `run` would work in {ran.pwd}"
    )


@pytest.mark.parametrize("stale", ["elsewhere", "missing"])
def test_no_terminal_project(setup: Setup, stale: str) -> None:
    pwd = setup.stale if stale == "elsewhere" else "/no/such/directory"
    ran = setup.run("run", "hi", cwd=setup.sub, pwd=pwd)
    assert ran.args == ["run", "hi"]
    assert_pwd(ran, setup.sub)


def test_a_pwd_that_names_the_directory_through_a_symlink_is_kept(setup: Setup) -> None:
    link = os.path.join(os.path.dirname(setup.a), "link")
    os.symlink(setup.sub, link)
    ran = setup.run("run", "hi", cwd=setup.sub, pwd=link)
    assert (ran.pwd, ran.args) == (link, ["run", "hi"])
    ran = setup.run("run", "hi", cwd=setup.sub, pwd=link, **setup.terminal(setup.a))
    assert (ran.pwd, ran.args) == (link, ["run", "hi"])


def test_an_unset_pwd_is_fine(setup: Setup) -> None:
    ran = setup.run("run", "hi", cwd=setup.sub, pwd=None, **setup.terminal(setup.a))
    assert ran.args == ["run", "hi"]
    assert ran.pwd is None or names(ran.pwd, setup.sub), ran


@pytest.mark.parametrize("argv", [["run", "hi"], []], ids=["run", "tui"])
def test_same_project(setup: Setup, argv: list[str]) -> None:
    ran = setup.run(*argv, cwd=setup.sub, pwd=setup.stale, **setup.terminal(setup.a))
    assert ran.args == argv
    assert_pwd(ran, setup.sub)


@pytest.mark.parametrize("where", ["another-project", "outside-git"])
@pytest.mark.parametrize(
    "argv",
    [["run", "hi"], [], ["attach", "http://127.0.0.1:4096"], ["session", "list"]],
    ids=["run", "tui", "attach", "other-subcommand"],
)
def test_another_project_pinned(setup: Setup, where: str, argv: list[str]) -> None:
    cwd = setup.d if where == "another-project" else setup.plain
    ran = setup.run(*argv, cwd=cwd, pwd=setup.stale, **setup.terminal(setup.a))
    if argv[:1] in (["run"], ["attach"]):
        assert ran.args == [*argv, "--dir", setup.a]
        assert_pwd(ran, cwd)
    elif not argv:
        assert ran.args == [setup.a]
        assert_pwd(ran, cwd)
    else:
        assert ran.args == argv
        assert_pwd(ran, setup.a)


def test_outside_git_on_both_sides_is_decided_by_directory(setup: Setup) -> None:
    terminal = setup.terminal(setup.plain)
    assert terminal["OPENCODE_PROJECT_ID"] == "global"
    ran = setup.run("run", "hi", cwd=setup.stale, pwd=setup.stale, **terminal)
    assert ran.args == ["run", "hi", "--dir", setup.plain]
    assert_pwd(ran, setup.stale)


def test_released(setup: Setup) -> None:
    marker = Path(shim.released_marker(str(setup.socket_dir), "7"))
    marker.parent.mkdir(parents=True)
    marker.touch()
    ran = setup.run("run", "hi", cwd=setup.d, pwd=setup.stale, **setup.terminal(setup.a))
    assert ran.args == ["run", "hi"]
    assert_pwd(ran, setup.d)


@pytest.mark.parametrize("where", ["same-project", "another-project", "no-project"])
def test_debug_says_it_corrected_pwd(setup: Setup, where: str) -> None:
    extra = {"PTYSUP_SHIM_DEBUG": "1"}
    if where != "no-project":
        extra.update(setup.terminal(setup.a))
    cwd = setup.d if where == "another-project" else setup.sub
    ran = setup.run("run", "hi", cwd=cwd, pwd=setup.stale, **extra)
    said = re.findall(r"^opencode \(ptysup shim\): .*$", ran.stderr, re.M)
    assert any("PWD" in line for line in said), f"nothing said about PWD={setup.stale}: {said}"
    assert_pwd(ran, cwd)
