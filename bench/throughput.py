"""A chatty child under an attached client: time until it has written everything and the
client has exited, for each column, as a ratio to reading the same PTY directly."""

import os
import time
from typing import Any

from bench import Progress, tools
from bench.baseline import Build
from bench.payloads import Payload
from bench.sandbox import Daemon, Sandbox, cpu_seconds
from bench.stats import pairwise, short, summary
from bench.terminal import Terminal, Timeout, last_line


def child_command(payload: Payload, mark: str) -> list[str]:
    """Print the payload, then leave a mark: the mark proves the child wrote everything."""
    script = 'cat "$0" && : > "$1"'
    if payload.raw_mode:
        script = "stty raw -echo && " + script
    return ["sh", "-c", script, payload.path, mark]


def expected_bytes(tool: str, payload: Payload) -> int | None:
    """What the user's terminal should receive; None where the tool redraws a screen."""
    if tool == tools.TMUX:
        return None
    if tools.outer_cooked(tool):
        return payload.terminal_bytes + payload.newlines
    return payload.terminal_bytes


def measure(box: Sandbox, daemon: Daemon, tool: str, payload: Payload) -> dict[str, Any]:
    mark = box.path("m")
    argv = tools.command(tool, box, daemon, child_command(payload, mark))
    timeout = 30 + payload.size / 2e6
    daemon_cpu = cpu_seconds(daemon.pid) if tool in tools.PTYSUP_TOOLS else None
    start = time.perf_counter()
    term = Terminal(argv, tools.env(tool, box, daemon), box.env["HOME"])
    try:
        status = term.drain(timeout)
        elapsed = time.perf_counter() - start
    finally:
        term.close()
    if status != 0 or not os.path.exists(mark):
        raise RuntimeError(
            f"{tools.TITLES[tool]}: the child did not finish (status {status}); "
            f"the terminal last showed {last_line(term.tail)!r}"
        )
    os.unlink(mark)
    expected = expected_bytes(tool, payload)
    result: dict[str, Any] = {
        "seconds": elapsed,
        "mb_per_s": payload.size / elapsed / 1e6,
        "received": term.received,
        "mean_read": term.received / max(1, term.reads),
        "delivered": None if expected is None else term.received / expected,
        "client_cpu_s": term.child_cpu(),
    }
    if daemon_cpu is not None:
        result["daemon_cpu_s"] = cpu_seconds(daemon.pid) - daemon_cpu
        daemon.forget_exited()
    return result


def run(
    box: Sandbox,
    payload: Payload,
    runs: int,
    title: str,
    progress: Progress,
    baseline: Build | None = None,
) -> dict[str, Any]:
    daemons = tools.Daemons(box, baseline)
    order = tools.with_baseline(tools.ALL, baseline is not None)
    per_tool: dict[str, list[dict[str, Any] | None]] = {tool: [] for tool in order}
    failures: dict[str, list[str]] = {tool: [] for tool in order}
    for i in range(runs):
        for tool in tools.rotation(order, i):
            name = f"{title}: run {i + 1}/{runs} {tools.TITLES[tool]}"
            try:
                result = measure(box, daemons.of(tool), tool, payload)
            except (RuntimeError, Timeout) as exc:
                per_tool[tool].append(None)
                failures[tool].append(f"run {i + 1}: {exc}")
                progress(f"{name} FAILED: {short(str(exc))}")
                if tool in tools.PTYSUP_TOOLS:
                    daemons.of(tool).remove_all()
                continue
            per_tool[tool].append(result)
            progress(f"{name} {result['seconds']:.3f} s")
    daemons.stop()
    columns = {
        tool: column(results, per_tool[tools.RAW], failures[tool])
        for tool, results in per_tool.items()
    }
    for tool, before in tools.BEFORE.items():
        if before in columns and "error" not in columns[tool]:
            columns[tool]["vs_before"] = _ratios(per_tool[tool], per_tool[before])
    return {
        "title": title,
        "bytes": payload.size,
        "raw_mode": payload.raw_mode,
        "terminal_bytes": payload.terminal_bytes,
        "columns": columns,
    }


def _ratios(
    runs: list[dict[str, Any] | None], other: list[dict[str, Any] | None]
) -> dict[str, Any] | None:
    """Per-run ratios of the seconds in `runs` to those in `other`, where both succeeded."""
    pairs = [(r["seconds"], o["seconds"]) for r, o in zip(runs, other, strict=True) if r and o]
    return pairwise([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else None


def column(
    runs: list[dict[str, Any] | None], raw: list[dict[str, Any] | None], failures: list[str]
) -> dict[str, Any]:
    """One column's summaries over its successful runs; ratios over the runs in which
    both it and the raw PTY succeeded."""
    results = [r for r in runs if r is not None]
    if not results:
        return {"error": failures[0], "failures": failures}
    figures: dict[str, Any] = {
        "seconds": summary([r["seconds"] for r in results]),
        "mb_per_s": summary([r["mb_per_s"] for r in results]),
        "ratio": _ratios(runs, raw),
        "client_cpu_s": summary([r["client_cpu_s"] for r in results]),
        "received": [r["received"] for r in results],
        "mean_read_bytes": summary([r["mean_read"] for r in results]),
        "failures": failures,
    }
    if results[0]["delivered"] is not None:
        figures["delivered"] = summary([r["delivered"] for r in results])
    if "daemon_cpu_s" in results[0]:
        figures["daemon_cpu_s"] = summary([r["daemon_cpu_s"] for r in results])
    return figures
