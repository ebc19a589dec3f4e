"""Issue 5 end to end: a daemon pointed at a real, password-protected `opencode serve`; a
supervised shell of repo A that `cd`s to `~` still talks to the server about A."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.opencode.project import project_for
from tests.conftest import Sandbox, make_sandbox
from tests.e2e.test_opencode_context import Shell, wait_for_sessions
from tests.opencode.helpers import OPENCODE, commit, git, opencode_server

pytestmark = [pytest.mark.slow, pytest.mark.opencode]

PASSWORD = "upstream-pw-9f3a"


@pytest.fixture
def gateway_box(short_tmp: Path) -> Iterator[tuple[Sandbox, Path]]:
    assert OPENCODE.exists(), "the pinned OpenCode is missing: run scripts/setup --tests"
    box = make_sandbox(
        short_tmp, OPENCODE_DISABLE_AUTOUPDATE="1", OPENCODE_DISABLE_MODELS_FETCH="1"
    )
    box.env["PATH"] = f"{OPENCODE.parent}:{box.env['PATH']}"
    repo = short_tmp / "repoA"
    repo.mkdir()
    git(repo, "init", "-q", env=box.env)
    commit(repo, "root of A", env=box.env)
    serve_dir = short_tmp / "serve"
    serve_dir.mkdir()
    server_env = dict(box.env, OPENCODE_SERVER_PASSWORD=PASSWORD)
    try:
        with opencode_server(str(OPENCODE), env=server_env, cwd=serve_dir) as url:
            box.env["PTYSUP_OPENCODE_UPSTREAM"] = url
            box.env["OPENCODE_SERVER_PASSWORD"] = PASSWORD  # the caller has it: children must not
            yield box, repo
    finally:
        left = box.cleanup()
        assert not left, f"processes left behind: {left}"


def json_of(shell: Shell, command: str) -> dict:
    """Run `command` in the shell and parse what it prints as JSON."""
    out = shell.do(f"printf 'J<<%s>>\\n' \"$({command})\"")
    found = re.search(r"J<<(\{.*\})>>", out)
    assert found, out
    return json.loads(found[1])


def test_children_reach_the_server_in_their_project_from_home(gateway_box) -> None:
    box, repo = gateway_box
    project_id = project_for(str(repo)).id
    sid = box.spawn("bash", "--norc", "--noprofile", "-i", cwd=str(repo))
    shell = Shell(box, sid)
    shell.do("unset HISTFILE; cd ~")

    url = shell.do('echo "URL=$OPENCODE_SERVER_URL"')
    found = re.search(r"URL=(http://127\.0\.0\.1:\d+/s/[A-Za-z0-9_-]+)", url)
    assert found, url
    server_url = found[1]
    assert PASSWORD not in shell.do("env")

    current = json_of(shell, 'curl -s "$OPENCODE_SERVER_URL/project/current"')
    assert current["id"] == project_id
    assert current["worktree"] == str(repo)

    created = json_of(
        shell,
        "curl -s -X POST -H 'content-type: application/json' -d '{}' "
        '"$OPENCODE_SERVER_URL/session"',
    )
    assert created["projectID"] == project_id
    assert created["directory"] == str(repo)

    events = shell.do('curl -s -N --max-time 3 "$OPENCODE_SERVER_URL/event"', timeout=20)
    assert "server.connected" in events

    base = server_url.split("/s/")[0]
    for path, code in (
        (f"{base}/project/current", "401"),
        (f"{base}/s/wrong/project/current", "403"),
    ):
        out = shell.do(f"curl -s -o /dev/null -w 'code=%{{http_code}}' '{path}'")
        assert f"code={code}" in out, out

    shell.do("(opencode run --attach \"$OPENCODE_SERVER_URL\" 'hello' > ~/attach.log 2>&1 &)")
    sessions = wait_for_sessions(box.env, project_id, 2)
    assert all(s.directory == str(repo) for s in sessions)
