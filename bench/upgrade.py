"""Upgrade in place, as a client sees it: the longest pause in a followed session's output
while the daemon re-executes itself, and the bytes lost (none is the goal)."""

import itertools
import re
import sys
import threading
import time
from typing import Any

from bench import Progress
from bench.sandbox import Daemon, Sandbox
from bench.stats import summary

COUNTER = (
    "import time\ni = 0\nwhile True:\n    print(i, flush=True)\n    i += 1\n    time.sleep(0.002)\n"
)


def measure(daemon: Daemon) -> dict[str, Any]:
    from supervisor.client import connect
    from supervisor.client.errors import ClientError
    from supervisor.protocol.messages import Output

    with connect(daemon.socket, autostart=False) as client:
        sid = client.spawn([sys.executable, "-c", COUNTER], cwd="/")["id"]
    time.sleep(0.3)
    arrivals: list[float] = []
    received = bytearray()
    stop = threading.Event()

    def follow() -> None:
        offset = 0
        while not stop.is_set():
            try:
                with connect(daemon.socket, autostart=False) as follower:
                    sub = follower.call(
                        "subscribe", session=sid, since=offset, follow=True, lossless=True
                    )["sub"]
                    while not stop.is_set():
                        event = follower.next_event(0.05)
                        if isinstance(event, Output) and event.sub == sub:
                            arrivals.append(time.monotonic())
                            received.extend(event.data[offset - event.offset :])
                            offset = event.offset + len(event.data)
            except ClientError:
                time.sleep(0.005)

    thread = threading.Thread(target=follow)
    thread.start()
    time.sleep(0.5)
    began = time.monotonic()
    done = daemon.cli("upgrade", timeout=60)
    ended = time.monotonic()
    time.sleep(0.5)
    stop.set()
    thread.join()
    if done.returncode != 0:
        raise RuntimeError(f"upgrade failed: {done.stderr.decode(errors='replace')}")
    window = [t for t in arrivals if began - 0.5 <= t <= ended + 0.5]
    pause = max((b - a for a, b in itertools.pairwise(window)), default=0.0)
    numbers = [int(n) for n in re.findall(rb"(?m)^(\d+)\r$", bytes(received))]
    gaps = sum(1 for a, b in itertools.pairwise(numbers) if b != a + 1)
    return {
        "pause_ms": pause * 1000,
        "command_s": ended - began,
        "lines": len(numbers),
        "gaps": gaps,
    }


def run(box: Sandbox, runs: int, progress: Progress) -> dict[str, Any]:
    samples = []
    for i in range(runs):
        daemon = Daemon(box, box.path(f"up{i}"))
        daemon.start()
        try:
            samples.append(measure(daemon))
        finally:
            daemon.stop()
        progress(f"upgrade {i + 1}/{runs}: pause {samples[-1]['pause_ms']:.0f} ms")
    return {
        "pause_ms": summary([s["pause_ms"] for s in samples]),
        "command_s": summary([s["command_s"] for s in samples]),
        "gaps": sum(s["gaps"] for s in samples),
        "lines": sum(s["lines"] for s in samples),
    }
