"""A stuck observer: a client subscribed to a session that never reads its socket. The
child writing to that session should not notice, and the daemon's memory should stay
bounded."""

import json
import socket
import struct
import threading
import time
from typing import Any

from bench import Progress
from bench.payloads import Payload
from bench.sandbox import TAG_VAR, Daemon, Sandbox, cpu_seconds, rss_kib
from bench.stats import pairwise, summary

SAMPLE_EVERY = 0.005
FIGURES = ("seconds", "daemon_cpu_s", "peak_rss_mb")


def frame(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message).encode()
    return struct.pack(">I", len(payload)) + payload


class PeakRss:
    """Samples a process's resident memory in a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self.peak = max(self.peak, rss_kib(self.pid))

    def cancel(self) -> None:
        """Stop sampling, the figure unwanted (the measurement failed)."""
        self._stop.set()
        self._thread.join()

    def stop(self) -> float:
        self.cancel()
        self.peak = max(self.peak, rss_kib(self.pid))
        return self.peak * 1024 / 1e6


def stuck_observer(daemon: Daemon, session: str) -> socket.socket:
    """Subscribe to `session` on a connection that is never read."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(daemon.socket)
    sock.sendall(
        frame({"type": "hello", "protocol": 1, "capabilities": [], "client": "stuck"})
        + frame({"id": 1, "op": "subscribe", "session": session, "since": 0, "follow": True})
    )
    return sock


def measure(daemon: Daemon, box: Sandbox, payload: Payload, observed: bool) -> dict[str, Any]:
    env = {"PATH": "/usr/bin:/bin", TAG_VAR: box.tag}
    argv = ["sh", "-c", 'read _ && exec cat "$0"', payload.path]
    observer = None
    with daemon.connect() as client:
        sid = client.spawn(argv, cwd="/", env=env)["id"]
        try:
            if observed:
                observer = stuck_observer(daemon, sid)
                deadline = time.monotonic() + 10
                while client.info(sid)["subscribers"] < 1:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the observer did not get subscribed")
                    time.sleep(0.005)
            peak = PeakRss(daemon.pid)
            cpu = cpu_seconds(daemon.pid)
            start = time.perf_counter()
            client.write(sid, "\n")
            session = client.wait(sid, timeout=30 + payload.size / 1e6)["session"]
            elapsed = time.perf_counter() - start
            cpu = cpu_seconds(daemon.pid) - cpu
            peak_mb = peak.stop()
            if session["state"] != "exited" or session["exit_code"] != 0:
                raise RuntimeError(f"the writer did not finish: {session}")
        finally:
            client.remove(sid)
            if observer is not None:
                observer.close()
    return {
        "seconds": elapsed,
        "daemon_cpu_s": cpu,
        "peak_rss_mb": peak_mb,
        "output": session["end"],
    }


def run(box: Sandbox, payload: Payload, runs: int, progress: Progress) -> dict[str, Any]:
    daemon = box.daemon()
    plain: list[dict[str, Any]] = []
    observed: list[dict[str, Any]] = []
    for i in range(runs):
        for with_observer in (i % 2 == 1, i % 2 == 0):
            result = measure(daemon, box, payload, with_observer)
            (observed if with_observer else plain).append(result)
            progress(
                f"observer: run {i + 1}/{runs} {'with' if with_observer else 'without'} "
                f"{result['seconds']:.3f} s, peak RSS {result['peak_rss_mb']:.1f} MB"
            )
    daemon.stop()
    plain_s = [r["seconds"] for r in plain]
    observed_s = [r["seconds"] for r in observed]
    return {
        "title": "stuck observer",
        "bytes": payload.size,
        "without": {key: summary([r[key] for r in plain]) for key in FIGURES},
        "with": {key: summary([r[key] for r in observed]) for key in FIGURES},
        "ratio": pairwise(observed_s, plain_s),
        "cpu_ratio": pairwise(
            [r["daemon_cpu_s"] for r in observed], [r["daemon_cpu_s"] for r in plain]
        ),
    }
