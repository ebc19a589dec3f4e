"""The benchmark harness runs end to end with tiny sizes. No figure is asserted: only that
every workload produced its numbers and nothing was left running."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TAG = b"PTYSUP_BENCH_TAG="
TOOLS = ["raw", "dtach", "tmux", "ptysup-attach", "ptysup-run"]


def tagged_processes() -> set[int]:
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if TAG in f.read():
                    found.add(int(name))
        except OSError:
            continue
    return found


def number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def figure(value) -> bool:
    """A summary over runs (median, min, max) or a single number."""
    if isinstance(value, dict):
        return all(number(value[k]) for k in ("median", "min", "max"))
    return number(value)


@pytest.mark.slow
def test_quick_bench_writes_every_workload(tmp_path):
    before = tagged_processes()
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "raw PTY" in proc.stdout

    results = json.loads((tmp_path / "latest.json").read_text())
    assert len(list(tmp_path.glob("*.json"))) == 2
    for key in ("cpu", "cores", "kernel", "python", "tmux", "dtach", "load_average"):
        assert results["machine"][key] is not None, key

    workloads = results["workloads"]
    assert set(workloads) == {
        "lines",
        "binary",
        "echo",
        "busy",
        "scale",
        "observer",
        "stuck",
        "upgrade",
    }
    for name in ("lines", "binary"):
        columns = workloads[name]["columns"]
        assert set(columns) == set(TOOLS)
        for tool in TOOLS:
            assert figure(columns[tool]["seconds"]), (name, tool)
            assert figure(columns[tool]["ratio"]), (name, tool)
            assert figure(columns[tool]["mb_per_s"]), (name, tool)
    echo = workloads["echo"]["columns"]
    assert set(echo) == {"raw", "dtach", "tmux", "ptysup-attach"}
    for tool, column in echo.items():
        for key in ("p50_us", "p99_us", "p50_ratio"):
            assert figure(column[key]), (tool, key)
    busy = workloads["busy"]["columns"]
    assert set(busy) == {"raw", "dtach", "tmux", "ptysup-attach"}
    for tool, column in busy.items():
        assert not column["failures"], (tool, column["failures"])
        for key in ("p50_us", "p99_us", "p99_ratio", "flood_mb_per_s", "written_mb_per_s"):
            assert figure(column[key]), (tool, key)
        assert column["flood_mb_per_s"]["min"] > 0, tool
    assert figure(busy["ptysup-attach"]["daemon_cpu_pct"])
    assert "busy echo p99, ptysup (attach)" in {goal["what"] for goal in results["goals"]}
    library = workloads["scale"]["library"]
    for key in ("spawn_p50_ms", "spawn_p99_ms", "seconds", "rss_mb", "per_session_kib"):
        assert figure(library[key]), key
    assert figure(library["idle_cpu_pct"])
    cli = workloads["scale"]["cli"]
    for key in ("rss_mb", "per_session_kib", "extrapolated_rss_mb", "idle_cpu_pct"):
        assert figure(cli[key]), key
    observer = workloads["observer"]
    assert figure(observer["ratio"])
    assert figure(observer["with"]["peak_rss_mb"])
    assert figure(observer["without"]["seconds"])
    cases = workloads["stuck"]["cases"]
    assert set(cases) == {"alone", "read-only", "relay", "mid-flood", "stuck-controller"}
    for case, column in cases.items():
        assert figure(column["seconds"]), case
        assert figure(column["peak_rss_mb"]), case
        assert case == "alone" or figure(column["ratio"]), case
    assert figure(cases["mid-flood"]["marker_s"])
    assert figure(cases["stuck-controller"]["extra_s"])
    assert {"stuck, (b) read-only / none", "stuck, (e) stuck controller, beyond none"} <= {
        goal["what"] for goal in results["goals"]
    }
    upgrade = workloads["upgrade"]
    assert figure(upgrade["pause_ms"])
    assert upgrade["lines"] > 0 and isinstance(upgrade["gaps"], int)
    assert {goal["what"] for goal in results["goals"]}

    assert not tagged_processes() - before, "the bench left processes behind"


@pytest.mark.slow
def test_quick_bench_with_this_checkout_as_baseline(tmp_path):
    """`--baseline` adds the baseline build's columns, each against its own daemon."""
    if not (ROOT / ".venv" / "bin" / "ptysup").exists():
        pytest.skip(f"{ROOT} has no .venv/bin/ptysup to serve as the baseline")
    before = tagged_processes()
    argv = [sys.executable, "-m", "bench", "--quick", "--only", "lines", "--only", "echo"]
    argv += ["--only", "busy"]
    proc = subprocess.run(
        [*argv, "--baseline", str(ROOT), "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "ptysup before (attach)" in proc.stdout
    assert "ptysup before (run)" in proc.stdout

    results = json.loads((tmp_path / "latest.json").read_text())
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert results["baseline"]["commit"] == commit
    assert results["baseline"]["dir"] == str(ROOT)
    assert results["options"]["baseline"] == str(ROOT)
    lines = results["workloads"]["lines"]["columns"]
    assert set(lines) == {*TOOLS, "before-attach", "before-run"}
    for tool in ("before-attach", "before-run"):
        assert figure(lines[tool]["ratio"]), tool
        assert figure(lines[tool]["daemon_cpu_s"]), tool
    for tool in ("ptysup-attach", "ptysup-run"):
        assert figure(lines[tool]["vs_before"]), tool
    echo = results["workloads"]["echo"]["columns"]
    assert set(echo) == {"raw", "dtach", "tmux", "ptysup-attach", "before-attach"}
    assert figure(echo["before-attach"]["p50_ratio"])
    assert figure(echo["ptysup-attach"]["p50_vs_before"])
    busy = results["workloads"]["busy"]["columns"]
    assert set(busy) == set(echo)
    assert figure(busy["before-attach"]["flood_mb_per_s"])
    assert figure(busy["ptysup-attach"]["p99_vs_before"])

    assert not tagged_processes() - before, "the bench left processes behind"


def test_baseline_without_venv_is_refused(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--baseline", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert ".venv" in proc.stderr
