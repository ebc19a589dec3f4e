"""A keystroke's round trip: one byte typed into the user's terminal, through the tool, to
`cat` in raw mode and back to the screen."""

import contextlib
import os
import signal
import time
from typing import Any

from bench import Progress, tools
from bench.baseline import Build
from bench.sandbox import Daemon, Sandbox
from bench.stats import pairwise, percentile, short, summary
from bench.terminal import Terminal, Timeout, visible

WARMUP = 20
KEYS = b"abcdefghijklmnopqrstuvwxyz"


def child_command(pidfile: str) -> list[str]:
    return ["sh", "-c", 'echo $$ > "$0"; stty raw -echo; printf READY; exec cat', pidfile]


class Echo:
    """`cat` in raw mode under `tool`, on a terminal of the bench's, ready for keys.
    `tmux_socket`: a tmux server to start the session in (a new one if None)."""

    def __init__(
        self, box: Sandbox, daemon: Daemon | None, tool: str, tmux_socket: str | None = None
    ) -> None:
        self.pidfile = box.path("p")
        self.ended = False
        argv = tools.command(tool, box, daemon, child_command(self.pidfile), tmux_socket)
        self.term = Terminal(argv, tools.env(tool, box, daemon), "/")
        try:
            self.term.read_until(lambda seen: b"READY" in visible(seen), 30)
            self.term.settle()
        except BaseException:
            self.close()
            raise

    def round_trips(self, count: int) -> list[float]:
        """`count` keys typed one at a time, each waited for on the screen: microseconds."""
        master = self.term.master
        times: list[float] = []
        for i in range(count):
            key = KEYS[i % len(KEYS) : i % len(KEYS) + 1]
            start = time.perf_counter_ns()
            os.write(master, key)
            seen = self.term.read_some(10)
            while key not in visible(seen):
                seen += self.term.read_some(10)
            times.append((time.perf_counter_ns() - start) / 1000)
        return times

    def end(self) -> None:
        """End `cat` and wait until the tool has closed the terminal."""
        with open(self.pidfile) as f:
            os.kill(int(f.read()), signal.SIGTERM)
        self.ended = True
        self.term.drain(30)

    def close(self) -> None:
        """Close the terminal; unless `end()` ran, kill `cat` first: under dtach or tmux it
        would outlive its client."""
        with contextlib.suppress(OSError, ValueError):
            if not self.ended:
                with open(self.pidfile) as f:
                    os.kill(int(f.read()), signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.unlink(self.pidfile)
        self.term.close()


def measure(box: Sandbox, daemon: Daemon, tool: str, samples: int) -> list[float]:
    """Round trips in microseconds."""
    echo = Echo(box, daemon, tool)
    try:
        echo.round_trips(WARMUP)
        times = echo.round_trips(samples)
        echo.end()
    finally:
        echo.close()
    if tool in tools.PTYSUP_TOOLS:
        daemon.forget_exited()
    return times


def run(
    box: Sandbox, samples: int, runs: int, progress: Progress, baseline: Build | None = None
) -> dict[str, Any]:
    daemons = tools.Daemons(box, baseline)
    order = tools.with_baseline(tools.INTERACTIVE, baseline is not None)
    p50: dict[str, list[float | None]] = {tool: [] for tool in order}
    p99: dict[str, list[float | None]] = {tool: [] for tool in order}
    failures: dict[str, list[str]] = {tool: [] for tool in order}
    for i in range(runs):
        for tool in tools.rotation(order, i):
            name = f"echo: run {i + 1}/{runs} {tools.TITLES[tool]}"
            try:
                times = measure(box, daemons.of(tool), tool, samples)
            except (RuntimeError, Timeout, OSError) as exc:
                p50[tool].append(None)
                p99[tool].append(None)
                failures[tool].append(f"run {i + 1}: {exc}")
                progress(f"{name} FAILED: {short(str(exc))}")
                if tool in tools.PTYSUP_TOOLS:
                    daemons.of(tool).remove_all()
                continue
            p50[tool].append(percentile(times, 50))
            p99[tool].append(percentile(times, 99))
            progress(f"{name} p50 {p50[tool][-1]:.0f} µs p99 {p99[tool][-1]:.0f} µs")
    daemons.stop()
    columns = percentile_columns(order, p50, p99, failures)
    return {"title": "1-byte keystroke echo", "samples": samples, "columns": columns}


def percentile_columns(
    order: tuple[str, ...],
    p50: dict[str, list[float | None]],
    p99: dict[str, list[float | None]],
    failures: dict[str, list[str]],
) -> dict[str, dict[str, Any]]:
    """Per column, the summaries of p50 and p99 over the runs (None: a failed run), their
    per-run ratios to the raw PTY's and, for this build's ptysup, to the baseline's."""
    columns: dict[str, dict[str, Any]] = {}
    for tool in order:
        if not any(v is not None for v in p50[tool]):
            columns[tool] = {"error": failures[tool][0], "failures": failures[tool]}
            continue
        columns[tool] = {
            "p50_us": over_runs(p50[tool]),
            "p99_us": over_runs(p99[tool]),
            "p50_ratio": ratios(p50[tool], p50[tools.RAW]),
            "p99_ratio": ratios(p99[tool], p99[tools.RAW]),
            "failures": failures[tool],
        }
    before = tools.BEFORE[tools.ATTACH]
    if before in columns and "error" not in columns[tools.ATTACH]:
        columns[tools.ATTACH]["p50_vs_before"] = ratios(p50[tools.ATTACH], p50[before])
        columns[tools.ATTACH]["p99_vs_before"] = ratios(p99[tools.ATTACH], p99[before])
    return columns


def over_runs(values: list[float | None]) -> dict[str, Any]:
    """The summary of the runs that succeeded (None: a failed run)."""
    return summary([v for v in values if v is not None])


def ratios(values: list[float | None], raw: list[float | None]) -> dict[str, Any] | None:
    """Per-run ratios over the runs in which both succeeded."""
    pairs = [(v, b) for v, b in zip(values, raw, strict=True) if v is not None and b is not None]
    return pairwise([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else None
