"""Many idle sessions: how fast the daemon spawns them through its socket, how much memory
each costs, and how much CPU the daemon burns while they sit there."""

import concurrent.futures
import contextlib
import os
import signal
import time
from typing import Any

from bench import Progress
from bench.sandbox import TAG_VAR, Daemon, Sandbox, cpu_seconds, rss_kib
from bench.stats import percentile, summary

SETTLE = 1.0
CLI_WORKERS = 2
IDLE_CHILD = ["sleep", "1000"]


def idle_cpu(pid: int, window: float) -> float:
    """The daemon's CPU use over `window` seconds, in percent of one core."""
    before = cpu_seconds(pid)
    time.sleep(window)
    return (cpu_seconds(pid) - before) / window * 100


def library_run(box: Sandbox, sessions: int, spawns: int, window: float) -> dict[str, Any]:
    """One fresh daemon, `sessions` spawned one after the other by the blocking client;
    the first `spawns` of them give the latency figures."""
    daemon = box.daemon()
    env = {"PATH": "/usr/bin:/bin", TAG_VAR: box.tag}
    with daemon.connect() as client:
        client.status()
        time.sleep(SETTLE)
        base = rss_kib(daemon.pid)
        latencies = []
        start = time.perf_counter()
        for _ in range(sessions):
            t0 = time.perf_counter()
            client.spawn(IDLE_CHILD, cwd="/", env=env)
            latencies.append((time.perf_counter() - t0) * 1000)
        elapsed = time.perf_counter() - start
        running = client.status()["running"]
    if running != sessions:
        raise RuntimeError(f"{running} of {sessions} idle sessions are running")
    time.sleep(SETTLE)
    rss = rss_kib(daemon.pid)
    cpu = idle_cpu(daemon.pid, window)
    end_children(box, daemon)
    daemon.stop()
    first = latencies[:spawns]
    return {
        "spawn_p50_ms": percentile(first, 50),
        "spawn_p99_ms": percentile(first, 99),
        "seconds": elapsed,
        "base_rss_mb": base * 1024 / 1e6,
        "rss_mb": rss * 1024 / 1e6,
        "per_session_kib": (rss - base) / sessions,
        "idle_cpu_pct": cpu,
    }


def end_children(box: Sandbox, daemon: Daemon) -> None:
    """Kill the idle children and wait until the daemon has seen them go: stopping a daemon
    whose 1000 sessions still run takes over a minute, which the CLI part measures once."""
    for pid in box.tagged_processes():
        if pid != daemon.pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    with daemon.connect() as client:
        while client.status()["running"] and time.monotonic() < deadline:
            time.sleep(0.05)


def cli_run(box: Sandbox, sessions: int, target: int, window: float) -> dict[str, Any]:
    """`sessions` spawned by as many `ptysup spawn` processes, two at a time; the daemon's
    memory extrapolated to `target` sessions."""
    daemon = box.daemon()
    daemon.cli("status")
    time.sleep(SETTLE)
    base = rss_kib(daemon.pid)

    def spawn(_: int) -> int:
        return daemon.cli("spawn", "--", *IDLE_CHILD).returncode

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLI_WORKERS) as pool:
        failures = sum(1 for code in pool.map(spawn, range(sessions)) if code != 0)
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{failures} of {sessions} `ptysup spawn` calls failed")
    time.sleep(SETTLE)
    rss = rss_kib(daemon.pid)
    cpu = idle_cpu(daemon.pid, window)
    stop = daemon.stop()  # with every session still running
    per_session = (rss - base) / sessions
    return {
        "sessions": sessions,
        "seconds": elapsed,
        "base_rss_mb": base * 1024 / 1e6,
        "rss_mb": rss * 1024 / 1e6,
        "per_session_kib": per_session,
        "extrapolated_sessions": target,
        "extrapolated_rss_mb": (base + per_session * target) * 1024 / 1e6,
        "idle_cpu_pct": cpu,
        "stop_seconds": stop,
    }


def run(
    box: Sandbox,
    *,
    sessions: int,
    spawns: int,
    cli_sessions: int,
    window: float,
    runs: int,
    progress: Progress,
) -> dict[str, Any]:
    results = []
    for i in range(runs):
        result = library_run(box, sessions, spawns, window)
        results.append(result)
        progress(
            f"scale: run {i + 1}/{runs} spawn p50 {result['spawn_p50_ms']:.2f} ms, "
            f"{sessions} sessions in {result['seconds']:.1f} s, {result['rss_mb']:.1f} MB, "
            f"idle CPU {result['idle_cpu_pct']:.2f}%"
        )
    cli = cli_run(box, cli_sessions, sessions, window)
    progress(
        f"scale: {cli_sessions} sessions via the CLI: {cli['rss_mb']:.1f} MB, "
        f"{cli['extrapolated_rss_mb']:.1f} MB at {sessions}"
    )
    figures = {key: summary([r[key] for r in results]) for key in results[0]}
    return {
        "title": "spawn latency and idle sessions",
        "sessions": sessions,
        "spawns": spawns,
        "idle_window_s": window,
        "library": figures,
        "cli": cli,
    }
