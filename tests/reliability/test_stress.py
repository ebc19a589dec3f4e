"""The live fuzzer, with a small count: hostile input for 20 s leaves the daemon (same pid)
and every canary session intact, with memory and fds bounded."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stress.daemon import processes_marked
from tests.conftest import ROOT, Sandbox
from tests.reliability.helpers import request

pytestmark = pytest.mark.slow


def run_stress(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "stress", *args],
        cwd=ROOT,
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def unexplained(summary: dict) -> dict[str, int]:
    return dict(summary["failure_signatures"])


def test_twenty_seconds_of_hostile_input_leave_daemon_and_sessions_intact(
    sandbox: Sandbox, short_tmp: Path
) -> None:
    daemon = sandbox.json("status")["pid"]
    keeper = sandbox.spawn("sh", "-c", "while :; do echo keep; sleep 0.1; done")
    output = short_tmp / "stress.json"
    proc = run_stress(
        "--cases",
        "3000",
        "--seconds",
        "20",
        "--seed",
        "9",
        "--socket",
        sandbox.socket,
        "--output",
        str(output),
    )
    assert output.exists(), proc.stderr.decode()
    summary = json.loads(output.read_text())
    print(proc.stdout.decode())
    assert summary["cases"] >= 3000 and summary["duration_s"] >= 19
    assert unexplained(summary) == {}, summary["failures"][:5]
    checks = {name: c for name, c in summary["checks"].items() if not c["ok"]}
    checks.pop("every case ended in an error or a close", None)
    assert checks == {}
    assert summary["daemon"]["pid"] == daemon and summary["daemon"]["same_pid"]
    assert summary["canary"]["intact"] and min(summary["canary"]["lines"]) > 100
    assert summary["latency_ms"]["max"] < 2000
    assert summary["fds"]["end"] - summary["fds"]["start"] <= 3
    # the user's own session was never touched either, and the canaries are gone
    info = sandbox.json("info", keeper)
    assert info["state"] == "running" and info["end"] > 0
    assert [s["id"] for s in sandbox.json("list")] == [keeper]
    assert sandbox.json("status")["pid"] == daemon


def test_the_command_starts_and_cleans_up_its_own_daemon(short_tmp: Path) -> None:
    output = short_tmp / "own.json"
    proc = run_stress("--cases", "400", "--seed", "5", "--output", str(output))
    summary = json.loads(output.read_text())
    assert summary["daemon"]["self_started"]
    assert summary["checks"]["nothing left behind"]["ok"], proc.stdout.decode()
    assert unexplained(summary) == {}
    run_dir = Path(summary["daemon"]["socket"]).parents[2]
    assert not run_dir.exists()
    assert processes_marked(str(run_dir)) == []


def test_a_non_ascii_data_b64_is_a_bad_request(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "sleep 300")
    reply = request(sandbox.socket, {"id": 1, "op": "write", "session": sid, "data_b64": "\u00e9"})
    assert reply["type"] == "error" and reply["code"] == "bad_request", reply
