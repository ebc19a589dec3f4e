"""Seed 000 end to end: a terminal opened in repo A, whose shell `cd`s to `~`, keeps A's
OpenCode context for nested terminals and for the real OpenCode 1.18.33 started there."""

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.opencode.project import project_for
from supervisor.opencode.sessions import list_sessions
from tests.conftest import Sandbox, make_sandbox
from tests.opencode.helpers import OPENCODE, commit, git

pytestmark = [pytest.mark.slow, pytest.mark.opencode]


class Shell:
    """A supervised interactive bash, driven by writing lines and waiting for markers."""

    def __init__(self, box: Sandbox, sid: str) -> None:
        self.box = box
        self.sid = sid
        self.count = 0

    def do(self, line: str, timeout: float = 30) -> str:
        """Run `line`; return its output (between the previous and this marker)."""
        self.count += 1
        start = self.box.json("info", self.sid)["end"]
        self.box.ok("write", self.sid, f"{line}; echo MARK-$((1000+{self.count}))", "--enter")
        done = self.box.run(
            "expect",
            self.sid,
            f"MARK-{1000 + self.count}",
            "--since",
            str(start),
            "--timeout",
            str(timeout),
            timeout=timeout + 30,
        )
        assert done.returncode == 0, f"{line!r} did not finish: {self.output(start)}"
        return self.output(start)

    def output(self, since: int) -> str:
        data = self.box.run("read", self.sid, "--since", str(since)).stdout
        return data.decode(errors="replace").replace("\r\n", "\n")


@pytest.fixture
def box(short_tmp: Path) -> Iterator[Sandbox]:
    assert OPENCODE.exists(), "the pinned OpenCode is missing: run scripts/setup --tests"
    sandbox = make_sandbox(
        short_tmp,
        OPENCODE_DISABLE_AUTOUPDATE="1",
        OPENCODE_DISABLE_MODELS_FETCH="1",
    )
    sandbox.env["PATH"] = f"{OPENCODE.parent}:{sandbox.env['PATH']}"
    try:
        yield sandbox
    finally:
        left = sandbox.cleanup()
        assert not left, f"processes left behind: {left}"


@pytest.fixture
def repo(box: Sandbox) -> Path:
    path = box.root / "repoA"
    path.mkdir()
    git(path, "init", "-q", env=box.env)
    commit(path, "root of A", env=box.env)
    return path


def open_shell(box: Sandbox, cwd: Path) -> Shell:
    sid = box.spawn("bash", "--norc", "--noprofile", "-i", cwd=str(cwd))
    shell = Shell(box, sid)
    shell.do("unset HISTFILE; bind 'set enable-bracketed-paste off' 2>/dev/null")
    return shell


def env_of(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"OPENCODE_\w+|PTYSUP_\w+|PATH", key):
            found[key] = value
    return found


def test_nested_spawns_from_home_keep_the_parent_project(box: Sandbox, repo: Path) -> None:
    expected = project_for(str(repo)).id
    assert expected != "global"
    shell = open_shell(box, repo)
    top = box.json("info", shell.sid)["context"]
    assert top["directory"] == str(repo) and top["project_id"] == expected
    assert top["source"] == "cwd"

    out = shell.do("cd ~ && pwd && ptysup run -- env")
    assert str(box.home) in out
    nested = env_of(out)
    assert "OPENCODE_PROJECT_ID" in nested, out
    assert nested["OPENCODE_DIRECTORY"] == str(repo)
    assert nested["OPENCODE_PROJECT_ID"] == expected
    assert nested["PTYSUP_SOCKET"] == box.socket
    assert nested["PATH"].split(":")[0].endswith("/shim")

    deeper = env_of(shell.do("ptysup run -- ptysup run -- ptysup run -- env"))
    assert deeper["OPENCODE_DIRECTORY"] == str(repo)
    assert deeper["OPENCODE_PROJECT_ID"] == expected

    why = json.loads(shell.do("ptysup context --json").split("\n", 1)[1].rsplit("MARK", 1)[0])
    assert why["source"] == "parent-session" and why["parent"] == shell.sid
    assert why["directory"] == str(repo)


def test_a_forged_session_variable_outside_any_session_is_not_trusted(
    box: Sandbox, repo: Path
) -> None:
    shell = open_shell(box, repo)
    env = dict(box.env, PTYSUP_SESSION=shell.sid)
    out = box.run("run", "--", "env", env=env, cwd=box.home).stdout.decode()
    got = env_of(out.replace("\r\n", "\n"))
    assert got["OPENCODE_DIRECTORY"] == str(box.home)
    assert got["OPENCODE_PROJECT_ID"] == "global"
    why = box.json("context", cwd=box.home, env=env)
    assert why["source"] == "cwd"


def test_the_callers_own_opencode_directory_and_an_explicit_project(
    box: Sandbox, repo: Path
) -> None:
    env = dict(box.env, OPENCODE_DIRECTORY=str(repo))
    why = box.json("context", cwd=box.home, env=env)
    assert (why["source"], why["directory"]) == ("caller-env", str(repo))
    other = box.root / "other"
    other.mkdir()
    explicit = box.json("context", "--project", str(other), cwd=box.home, env=env)
    assert (explicit["source"], explicit["directory"]) == ("explicit", str(other))
    assert explicit["project_id"] == "global"
    shell = open_shell(box, repo)
    inside = env_of(shell.do(f"cd ~ && ptysup run --project {other} -- env"))
    assert inside["OPENCODE_DIRECTORY"] == str(other)
    missing = box.run("spawn", "--project", "/no/such/dir", "--", "true")
    assert missing.returncode == 1 and b"project directory does not exist" in missing.stderr


def wait_for_sessions(env: dict[str, str], project_id: str, count: int, timeout: float = 60):
    deadline = time.monotonic() + timeout
    found = []
    while time.monotonic() < deadline:
        try:
            found = list_sessions(project_id, env=env)
        except Exception:
            found = []
        if len(found) >= count:
            return found
        time.sleep(0.25)
    raise AssertionError(f"OpenCode filed {len(found)} sessions under {project_id}, not {count}")


def test_opencode_from_home_stays_in_the_parent_project(box: Sandbox, repo: Path) -> None:
    project_id = project_for(str(repo)).id
    shell = open_shell(box, repo)
    shell.do("cd ~")
    # `opencode run` cannot finish without a model provider; its session row appears at once
    shell.do("(opencode run 'hello from home' > ~/run.log 2>&1 &)")
    sessions = wait_for_sessions(box.env, project_id, 1)
    assert sessions[0].project_id == project_id
    assert sessions[0].directory == str(repo)
    assert not list_sessions("global", env=box.env)

    listed = shell.do("opencode session list 2>&1 | cat", timeout=60)  # no pager
    assert sessions[0].session_id in listed

    which = json.loads(box.ok("opencode", "which", sessions[0].session_id, "--json", cwd=box.home))
    assert which["project_id"] == project_id
    assert which["directory"] == str(repo)
    assert which["session_id"] == sessions[0].session_id

    before = {s.session_id for s in list_sessions(None, env=box.env)}
    opened = box.ok("opencode", "open", sessions[0].session_id, "--detach", cwd=box.home).strip()
    info = box.json("info", opened)
    assert info["argv"][1:] == [str(repo), "--session", sessions[0].session_id]
    assert info["cwd"] == str(repo)
    assert info["context"]["directory"] == str(repo)
    assert info["context"]["project_id"] == project_id
    time.sleep(3)
    assert box.json("info", opened)["state"] == "running"
    assert {s.session_id for s in list_sessions(None, env=box.env)} == before

    unknown = box.run("opencode", "which", "ses_doesnotexist", cwd=box.home)
    assert unknown.returncode == 1
    assert b"ses_doesnotexist" in unknown.stderr and b"opencode.db" in unknown.stderr
