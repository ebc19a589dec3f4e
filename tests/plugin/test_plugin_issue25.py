"""Issue 25 through the real OpenCode and the scripted model: where pty_wait searches and
what it says, across `opencode run`s (items 1, 2, 5, 7); the tools reach only this project's
terminals and pty_kill asks (item 3); a frozen daemon costs the bash tool little (item 4);
`opencode session delete` removes that session's terminals (item 6)."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.plugin.conftest import World
from tests.plugin.scripted_model import steps

pytestmark = [pytest.mark.slow, pytest.mark.opencode]


def terminal_id(results: list[str]) -> str:
    match = re.search(r"ID: (\d+)", results[0])
    assert match, results
    return match[1]


def tool_results(world: World) -> list[str]:
    """Every tool result of the last conversation, in order."""
    return [
        m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
        for m in world.model.seen[-1]["messages"]
        if m.get("role") == "tool"
    ]


def configure(world: World, **permission: object) -> None:
    config = Path(world.env["XDG_CONFIG_HOME"]) / "opencode" / "opencode.json"
    data = json.loads(config.read_text())
    data["permission"] = {**data["permission"], **permission}
    config.write_text(json.dumps(data))


STRAY_DCS = "printf 'x\\\\033Py\\\\n'; echo AFTER-$((40+2))\\n"


def test_pty_wait_searches_after_the_last_input_across_runs(world: World) -> None:
    go = world.project / "go"  # the second build prints its line once this exists
    second_build = f"until [ -e {go} ]; do sleep 0.1; done; echo BUILD-1-OK\\n"
    runaway = "for i in $(seq 60); do printf 'a%.0s' $(seq 24); echo '!'; done; echo BUILD-1-OK\\n"
    world.model.scripts["first prompt"] = steps(
        {"tool": "pty_spawn", "args": {"command": "bash", "args": ["--norc", "--noprofile"]}},
        lambda r: {
            "tool": "pty_write",
            "args": {"id": terminal_id(r), "data": "echo STEP-$((1)); echo STEP-$((1+1))\\n"},
        },
        lambda r: {
            "tool": "pty_wait",
            "args": {"id": terminal_id(r), "pattern": "^STEP-1", "timeout": 10},
        },
        lambda r: {
            "tool": "pty_wait",
            "args": {"id": terminal_id(r), "pattern": "^STEP-2", "timeout": 5},
        },
        lambda r: {
            "tool": "pty_write",
            "args": {"id": terminal_id(r), "data": STRAY_DCS},
        },
        lambda r: {
            "tool": "pty_wait",
            "args": {"id": terminal_id(r), "pattern": "^AFTER-42", "timeoutSeconds": 10},
        },
        lambda r: {"tool": "pty_write", "args": {"id": terminal_id(r), "data": runaway}},
        lambda r: {
            "tool": "pty_wait",
            "args": {"id": terminal_id(r), "pattern": "^BUILD-1-OK", "timeoutSeconds": 20},
        },
        lambda r: {"tool": "pty_read", "args": {"id": terminal_id(r), "pattern": "(a+)+$"}},
        lambda r: {
            "tool": "pty_write",
            "args": {"id": terminal_id(r), "data": second_build},
        },
    )
    started = time.monotonic()
    world.opencode("run", "first prompt")
    first = tool_results(world)
    assert len(first) == 10, first
    step1, step2, after, build = first[2], first[3], first[5], first[7]
    assert "<pty_matched" in step1 and "Line: STEP-1" in step1, step1
    assert "<pty_matched" in step2 and "Line: STEP-2" in step2, step2
    assert re.search(r"Match ends at byte: \d+", step1), step1
    assert "<pty_matched" in after and "AFTER-42" in after, after
    assert "<pty_matched" in build, build
    assert "took more than 5 s" in first[8] and "was stopped" in first[8], first[8]
    assert time.monotonic() - started < 120

    (terminal,) = world.box.json("list")
    world.model.scripts["second prompt"] = steps(
        {
            "tool": "pty_wait",
            "args": {"id": terminal["id"], "pattern": "BUILD-1-OK", "timeoutSeconds": 1},
        },
        lambda r: (
            go.touch(),
            {
                "tool": "pty_wait",
                "args": {"id": terminal["id"], "pattern": "BUILD-1-OK", "timeoutSeconds": 20},
            },
        )[1],
        {"tool": "pty_kill", "args": {"id": terminal["id"], "cleanup": True}},
    )
    world.opencode("run", "second prompt")
    early, late, killed = tool_results(world)
    # neither the first build's line nor the echo of the command typed is the answer
    assert "<pty_wait_timeout>" in early and "where the last input was typed" in early, early
    assert "<pty_matched" in late and "Line: BUILD-1-OK" in late, late
    assert "removed" in killed
    assert world.box.json("list") == []


def test_the_tools_reach_only_this_projects_terminals_and_pty_kill_asks(world: World) -> None:
    configure(world, bash={"*": "allow", "ptysup rm *": "deny"})
    theirs = world.box.spawn("sh", "-c", "echo SECRET-TOKEN=s3cr3t; exec sleep 600")
    world.model.scripts["reach prompt"] = steps(
        {"tool": "pty_read", "args": {"id": theirs}},
        {"tool": "pty_kill", "args": {"id": theirs, "cleanup": True}},
        {"tool": "pty_spawn", "args": {"command": "sleep", "args": ["600"], "description": "mine"}},
        lambda r: {"tool": "pty_kill", "args": {"id": terminal_id(r[2:]), "cleanup": True}},
        {"tool": "pty_list", "args": {}},
    )
    world.opencode("run", "reach prompt")
    read, kill_theirs, spawned, kill_mine, listed = tool_results(world)
    for said in (read, kill_theirs):
        assert f"terminal {theirs} is not one of this project's terminals" in said, said
        assert "not started by OpenCode's pty_spawn" in said, said
    assert "SECRET-TOKEN" not in json.dumps(world.model.seen)
    mine = terminal_id([spawned])
    assert "ptysup rm" in kill_mine and "prevents you from using" in kill_mine, kill_mine
    assert f"[{mine}] mine" in listed and f"[{theirs}]" not in listed, listed
    assert "Only this project's terminals are listed" in listed, listed
    left = {s["id"]: s["state"] for s in world.box.json("list")}
    assert left == {theirs: "running", mine: "running"}, left


def sessions(world: World) -> list[str]:
    db = world.opencode("db", "path").strip().splitlines()[-1]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM session ORDER BY time_created")]


def test_opencode_session_delete_removes_that_sessions_terminals(world: World) -> None:
    ignores_hup = ["-c", "trap '' HUP; sleep 600"]
    spawn = {"tool": "pty_spawn", "args": {"command": "sh", "args": ignores_hup}}
    world.model.scripts["doomed prompt"] = steps(spawn, spawn, spawn)
    world.opencode("run", "doomed prompt")
    world.model.scripts["kept prompt"] = steps(spawn)
    world.opencode("run", "kept prompt")
    doomed, kept = sessions(world)
    by_session: dict[str, list[str]] = {}
    for s in world.box.json("list"):
        by_session.setdefault(s["labels"]["opencode.session"], []).append(s["id"])
    assert len(by_session[doomed]) == 3 and len(by_session[kept]) == 1, by_session

    world.opencode("session", "delete", doomed)
    left = [s["id"] for s in world.box.json("list")]
    assert left == by_session[kept], left


def test_a_frozen_daemon_costs_the_bash_tool_little(world: World) -> None:
    world.box.json("status")  # the daemon runs
    pid = world.box.daemon_pid()
    assert pid
    bash = [
        {"tool": "bash", "args": {"command": f"echo hi-{i} $(date +%s.%N)", "description": "hi"}}
        for i in range(4)
    ]
    world.model.scripts["frozen prompt"] = steps(*bash, {"tool": "pty_list", "args": {}})
    os.kill(pid, signal.SIGSTOP)
    try:
        world.opencode("run", "frozen prompt")
    finally:
        os.kill(pid, signal.SIGCONT)
    said = tool_results(world)
    ran = []
    for i in range(4):
        match = re.search(rf"hi-{i} (\d+\.\d+)", said[i])
        assert match, said[i]
        ran.append(float(match[1]))
    # each bash call waited for the daemon's greeting (10 s) before the bound; now the first
    # waits 500 ms at most and the next ones not at all (the failure is remembered)
    gaps = [b - a for a, b in itertools.pairwise(ran)]
    assert max(gaps) < 4, gaps
    assert "the pty-supervisor daemon is unavailable" in said[4], said[4]
    assert "did not greet within 5 s: it may be stopped (SIGSTOP)" in said[4], said[4]
