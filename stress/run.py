"""One stress run: canaries up, the fuzzer against the daemon, then every check."""

import contextlib
import os
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import trio

from stress.canary import CanarySession, Prober, percentile, start_canaries
from stress.cases import Generator, Target
from stress.daemon import Usage, alive, fd_count, monitor, rss_kib
from stress.runner import Tally, fuzz
from stress.wire import HELLO, Closed, Connection, call, control

SETTLE_TIMEOUT = 15.0
FD_SLACK = 3


@dataclass
class Options:
    cases: int
    seconds: float
    seed: int
    lanes: int
    canaries: int
    max_latency: float
    max_rss_growth_mib: float


async def run(socket: str, options: Options, self_started: bool) -> dict[str, Any]:
    status = await call(socket, "status")
    pid = int(status["pid"])
    generator_target = Target([], int(status["limits"]["max_frame"]))
    canaries = await start_canaries(socket, options.canaries)
    generator_target.canaries = [c.name for c in canaries]
    generator = Generator(random.Random(options.seed), generator_target)
    prober = Prober(socket, [c.name for c in canaries])
    tally = Tally()
    usage = Usage()
    died = trio.Event()
    progress = _Progress(options.cases)
    try:
        async with trio.open_nursery() as nursery:
            for canary in canaries:
                nursery.start_soon(canary.watch)
            nursery.start_soon(prober.run)
            await trio.sleep(0.5)
            baseline = await _connections(socket)
            usage.rss_start = usage.rss_peak = rss_kib(pid) or 0
            usage.fds_start = usage.fds_peak = fd_count(pid) or 0
            nursery.start_soon(monitor, pid, usage, died)
            started = time.monotonic()
            await fuzz(
                socket,
                generator,
                options.cases,
                options.seconds,
                options.lanes,
                tally,
                died,
                progress.update,
            )
            duration = time.monotonic() - started
            progress.done(tally.cases, tally.failure_count)
            settled = await _settle(socket, baseline, died)
            usage.rss_end = rss_kib(pid) or 0
            usage.fds_end = fd_count(pid) or 0
            end_status = None if died.is_set() else await call(socket, "status")
            canary_report = await _check_canaries(socket, canaries)
            nursery.cancel_scope.cancel()
    finally:
        for canary in canaries:
            canary.conn.close()
        if alive(pid):
            for canary in canaries:
                with contextlib.suppress(OSError, RuntimeError, Closed):
                    await call(socket, "remove", session=canary.id)
    return _summary(
        options,
        socket,
        pid,
        self_started,
        tally,
        usage,
        duration,
        baseline,
        settled,
        end_status,
        canary_report,
        prober,
    )


class _Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()
        self.last = self.started

    def update(self, cases: int) -> None:
        now = time.monotonic()
        if now - self.last >= 5.0:
            self.last = now
            print(
                f"  {cases}/{self.total} cases, {now - self.started:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    def done(self, cases: int, failures: int) -> None:
        took = time.monotonic() - self.started
        print(f"  {cases} cases in {took:.1f} s, {failures} failures", file=sys.stderr, flush=True)


async def _connections(socket: str) -> int:
    """The daemon's connections, not counting the one that asks."""
    return int((await call(socket, "status"))["connections"]) - 1


async def _settle(socket: str, baseline: int, died: trio.Event) -> int:
    """Wait until the daemon has let go of every fuzzer connection; its count then."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    count = -1
    while not died.is_set():
        count = await _connections(socket)
        if count <= baseline or time.monotonic() > deadline:
            break
        await trio.sleep(0.1)
    await trio.sleep(0.3)
    return count


async def _read_all(socket: str, session: str) -> tuple[int, bytes]:
    conn = await Connection.open(socket)
    try:
        await conn.send(
            HELLO
            + control({"id": 1, "op": "subscribe", "session": session, "since": 0, "follow": False})
        )
        await conn.hello()
        start, data, sub = 0, bytearray(), None
        while True:
            frame = await conn.next()
            message = frame.message
            if message is None:
                data += frame.data
            elif message.get("id") == 1:
                if message["type"] != "result":
                    raise RuntimeError(f"cannot read {session}: {message}")
                start, sub = message["result"]["start"], message["result"]["sub"]
            elif message.get("event") == "end" and message.get("sub") == sub:
                return start, bytes(data)
    finally:
        conn.close()


async def _check_canaries(socket: str, canaries: list[CanarySession]) -> dict[str, Any]:
    problems: list[str] = []
    counts: list[int] = []
    for canary in canaries:
        lines, line_problems = canary.lines()
        counts.append(lines)
        problems += [f"{canary.name}: {p}" for p in canary.problems + line_problems]
        try:
            info = await call(socket, "info", session=canary.id)
            start, ring = await _read_all(socket, canary.id)
        except (OSError, RuntimeError, Closed) as exc:
            problems.append(f"{canary.name}: cannot be read any more: {exc}")
            continue
        if info["state"] != "running" or info["pid"] != canary.pid:
            problems.append(f"{canary.name}: state {info['state']}, pid {info['pid']}")
        seen = bytes(canary.received)
        overlap = min(len(seen), start + len(ring))
        if start < overlap and seen[start:overlap] != ring[: overlap - start]:
            problems.append(f"{canary.name}: the scrollback differs from what the watcher saw")
        if lines == 0:
            problems.append(f"{canary.name}: printed nothing")
    return {
        "sessions": len(canaries),
        "lines": counts,
        "intact": not problems,
        "problems": problems,
    }


def _summary(
    options: Options,
    socket: str,
    pid: int,
    self_started: bool,
    tally: Tally,
    usage: Usage,
    duration: float,
    baseline: int,
    settled: int,
    end_status: dict[str, Any] | None,
    canary: dict[str, Any],
    prober: Prober,
) -> dict[str, Any]:
    kinds = {k: asdict(v) for k, v in sorted(tally.kinds.items())}
    totals = {
        "cases": tally.cases,
        "errors": sum(v["errors"] for v in kinds.values()),
        "closes": sum(v["closes"] for v in kinds.values()),
    }
    ms = [x * 1000 for x in prober.latencies]
    latency = {
        "count": len(ms),
        "p50": percentile(ms, 0.5),
        "p99": percentile(ms, 0.99),
        "max": max(ms, default=0.0),
        "slowest": prober.slowest[1],
        "threshold": options.max_latency * 1000,
        "errors": prober.errors[:10],
    }
    same_pid = end_status is not None and end_status["pid"] == pid and alive(pid)
    growth = (usage.rss_peak - usage.rss_start) / 1024
    checks = {
        "cases run": (
            tally.cases >= options.cases,
            f"{tally.cases} of {options.cases}",
        ),
        "every case ended in an error or a close": (
            tally.failure_count == 0,
            f"{tally.failure_count} failures",
        ),
        "same daemon": (same_pid, f"pid {pid} {'still serving' if same_pid else 'is gone'}"),
        "canaries intact": (
            canary["intact"],
            "; ".join(canary["problems"][:5]) or f"{sum(canary['lines'])} lines, no gap",
        ),
        "canary latency": (
            latency["max"] <= latency["threshold"] and not prober.errors,
            f"max {latency['max']:.0f} ms (limit {latency['threshold']:.0f} ms)"
            + (f"; {len(prober.errors)} failed round trips" if prober.errors else ""),
        ),
        "memory bounded": (
            growth <= options.max_rss_growth_mib,
            f"peak {growth:+.1f} MiB over the start (limit {options.max_rss_growth_mib:.0f} MiB)",
        ),
        "fds back": (
            usage.fds_end - usage.fds_start <= FD_SLACK,
            f"{usage.fds_start} at the start, {usage.fds_end} at the end",
        ),
        "connections back": (
            0 <= settled <= baseline,
            f"{baseline} before, {settled} after",
        ),
    }
    return {
        "tool": "python -m stress",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": options.seed,
        "cases_requested": options.cases,
        "seconds_requested": options.seconds,
        "lanes": options.lanes,
        "duration_s": round(duration, 2),
        "cases": tally.cases,
        "connections": tally.connections,
        "kinds": kinds,
        "totals": totals,
        "valid_answered": tally.valid_answered,
        "resets": tally.resets,
        "failure_count": tally.failure_count,
        "failure_signatures": dict(sorted(tally.signatures.items(), key=lambda kv: -kv[1])),
        "failures": [asdict(f) for f in tally.failures],
        "canary": canary,
        "latency_ms": latency,
        "daemon": {
            "pid": pid,
            "same_pid": same_pid,
            "self_started": self_started,
            "socket": socket,
            "connections_baseline": baseline,
            "connections_end": settled,
        },
        "rss_kib": {"start": usage.rss_start, "peak": usage.rss_peak, "end": usage.rss_end},
        "fds": {"start": usage.fds_start, "peak": usage.fds_peak, "end": usage.fds_end},
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()},
        "ok": all(ok for ok, _ in checks.values()),
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "load_at_end": os.getloadavg()[0],
        },
    }
