"""The plugin in the real pinned OpenCode, driven by a scripted model: the seed scenario."""

from __future__ import annotations

import json
import os
import re
import sqlite3

import pytest

from supervisor.opencode.project import project_for
from tests.plugin.conftest import World
from tests.plugin.scripted_model import steps

pytestmark = [pytest.mark.slow, pytest.mark.opencode]


def terminal_id(results: list[str]) -> str:
    match = re.search(r"ID: (\d+)", results[0])
    assert match, results
    return match[1]


def sessions(world: World) -> list[tuple[str, str, str]]:
    db = world.opencode("db", "path").strip().splitlines()[-1]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT id, project_id, directory FROM session ORDER BY time_created"
        ).fetchall()


def test_nested_opencode_in_the_agents_terminal_stays_in_the_project(world: World) -> None:
    a = os.path.realpath(world.project)
    a_id = project_for(a).id
    world.model.scripts["outer prompt"] = steps(
        {
            "tool": "pty_spawn",
            "args": {
                "command": "bash",
                "args": ["--norc", "--noprofile"],
                "description": "a shell in A",
            },
        },
        lambda r: {
            "tool": "pty_write",
            "args": {
                "id": terminal_id(r),
                "data": "cd ~ && opencode run 'nested prompt'; echo NESTED-DONE $?\\n",
            },
        },
        lambda r: {
            "tool": "pty_wait",
            "args": {"id": terminal_id(r), "pattern": r"NESTED-DONE \d+", "timeout": 200},
        },
        {
            "tool": "bash",
            "args": {
                "command": 'cd ~ && echo "dir=$OPENCODE_DIRECTORY project=$OPENCODE_PROJECT_ID"'
                " && command -v opencode && pwd",
                "description": "show the context",
            },
        },
        lambda r: {"tool": "pty_read", "args": {"id": terminal_id(r), "pattern": "NESTED"}},
    )
    world.model.scripts["nested prompt"] = steps()
    world.opencode("run", "outer prompt")

    assert re.search(r"NESTED-DONE 0", world.results("pty_wait")[0]), world.results("pty_wait")
    bash = world.results("bash")[0]
    assert f"dir={a} project={a_id}" in bash, bash
    shim = os.path.join(os.path.dirname(world.box.socket), "shim", "opencode")
    assert shim in bash and world.box.env["HOME"] in bash, bash
    assert "NESTED-DONE 0" in world.results("pty_read")[0]

    # The nested session is filed under A in OpenCode's own database, not under global.
    filed = sessions(world)
    assert len(filed) == 2, filed
    assert all(project == a_id and directory == a for _, project, directory in filed), filed

    # The terminal outlives `opencode run`, labelled with the session that started it.
    (terminal,) = world.box.json("list")
    assert terminal["state"] == "running"
    assert terminal["labels"]["opencode.session"] == filed[0][0]
    assert terminal["context"]["directory"] == a and terminal["context"]["project_id"] == a_id

    # A later run lists it, reads it, and ends it.
    world.model.scripts["later prompt"] = steps(
        {"tool": "pty_list", "args": {}},
        {"tool": "pty_screen", "args": {"id": terminal["id"]}},
        {"tool": "pty_kill", "args": {"id": terminal["id"], "cleanup": True}},
    )
    world.opencode("run", "later prompt")
    assert f"[{terminal['id']}] a shell in A" in world.results("pty_list")[0]
    assert f"OpenCode session: {filed[0][0]}" in world.results("pty_list")[0]
    assert "NESTED-DONE 0" in world.results("pty_screen")[0]
    assert "removed" in world.results("pty_kill")[0]
    assert world.box.json("list") == []

    # Without the context a plain terminal started from ~ files its session under global.
    world.model.scripts["plain prompt"] = steps()
    world.opencode("run", "plain prompt", cwd=world.box.home)
    plain = sessions(world)[-1]
    assert plain[1] == "global" and plain[2] == os.path.realpath(world.box.home), plain


def test_bad_tool_input_reaches_the_model_as_an_error(world: World) -> None:
    world.model.scripts["bad prompt"] = steps(
        {"tool": "pty_read", "args": {"id": "404"}},
        {"tool": "pty_write", "args": {"id": "1", "data": "x", "bogus": True}},
    )
    world.opencode("run", "bad prompt")
    said = json.dumps(world.model.seen[-1]["messages"])
    assert "no terminal '404' (it may have been removed); pty_list shows" in said
    assert "bogus" in said
