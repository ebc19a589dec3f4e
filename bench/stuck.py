"""Slow and stuck clients cost the child nothing: the time a session's child takes to write
a flood of lines with `ptysup attach` clients of each kind on the session, as a ratio to
the same flood with none, and the daemon's peak memory meanwhile."""

import contextlib
import errno
import os
import select
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

from bench import Progress
from bench.observer import PeakRss
from bench.payloads import Payload
from bench.sandbox import PTYSUP, TAG_VAR, Daemon, Sandbox, cpu_seconds
from bench.stats import pairwise, short, summary
from bench.terminal import COLS, READ_SIZE, ROWS, Terminal, Timeout
from bench.tools import rotation

ALONE = "alone"
READ_ONLY = "read-only"
RELAY = "relay"
MID_FLOOD = "mid-flood"
STUCK = "stuck-controller"
CASES = (ALONE, READ_ONLY, RELAY, MID_FLOOD, STUCK)
TITLES = {
    ALONE: "(a) no client",
    READ_ONLY: "(b) attach --read-only, never read",
    RELAY: "(c) attach --read-only --relay, never read",
    MID_FLOOD: "(d) attach mid-flood, read",
    STUCK: "(e) attach (controller), never read",
}
# What each case runs on the bench's terminal, after `ptysup attach`; None: no client.
ATTACH_ARGS: dict[str, list[str] | None] = {
    ALONE: None,
    READ_ONLY: ["--read-only"],
    RELAY: ["--read-only", "--relay"],
    MID_FLOOD: [],
    STUCK: [],
}
SPEED_GOAL = 1 / 0.95
"""(b) and (c): at least 0.95 times the speed of (a), so at most this time ratio."""
PATIENCE_S = 2.0
"""How long an attached terminal may hold its child back (supervisor/daemon/session/flow.py)."""
NOISE_S = 0.5
"""What (e) may take beyond (a) + PATIENCE_S before it counts as slowed."""
MARKER = "ptysup-bench-flood-over"
FIGURES = ("seconds", "daemon_cpu_s", "peak_rss_mb")


class Screen:
    """Reads a client's terminal as fast as it comes, in a thread, noting when `MARKER`
    first shows, until the client closes the terminal or `stop()`."""

    def __init__(self, term: Terminal) -> None:
        self.term = term
        self.seen_at: float | None = None
        self.first_output_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        marker = MARKER.encode()
        master = self.term.master
        tail = b""
        while not self._stop.is_set():
            readable, _, _ = select.select([master], [], [], 0.1)
            if not readable:
                continue
            try:
                data = os.read(master, READ_SIZE)
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return
                raise
            if not data:
                return
            if self.first_output_at is None:
                self.first_output_at = time.perf_counter()
            if self.seen_at is None and marker in tail + data:
                self.seen_at = time.perf_counter()
            tail = data[-len(marker) :]

    def wait(self, timeout: float) -> float | None:
        """When the marker showed, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while self.seen_at is None and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.005)
        return self.seen_at

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def attach(box: Sandbox, daemon: Daemon, sid: str, args: list[str]) -> Terminal:
    """`ptysup attach ARGS SID` on a terminal of the bench's."""
    argv = [PTYSUP, "--socket", daemon.socket, "--no-start", "attach", *args, sid]
    return Terminal(argv, box.env, box.env["HOME"])


def end_client(term: Terminal) -> None:
    """Kill the client's process group (its pid: the client and the guardian it forked,
    which would wait for ever to give back a terminal nobody reads) and close the PTY."""
    with contextlib.suppress(OSError):
        os.killpg(term.proc.pid, signal.SIGKILL)
    term.proc.wait()
    os.close(term.master)


def until(condition: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.005)


class FloodTooShort(RuntimeError):
    """(d): the flood ended before the client had attached (a loaded machine)."""


def measure(
    daemon: Daemon, box: Sandbox, payload: Payload, case: str, times: int = 1
) -> dict[str, Any]:
    """One case; the child prints the payload `times` times over, then the marker."""
    env = {"PATH": "/usr/bin:/bin", TAG_VAR: box.tag}
    script = 'read _ && i=0 && while [ $i -lt "$2" ]; do cat "$0"; i=$((i+1)); done && echo "$1"'
    argv = ["sh", "-c", script, payload.path, MARKER, str(times)]
    args = ATTACH_ARGS[case]
    term: Terminal | None = None
    screen: Screen | None = None
    peak: PeakRss | None = None
    extra: dict[str, Any] = {}
    with daemon.connect() as client:
        sid = client.spawn(argv, cwd="/", env=env, cols=COLS, rows=ROWS)["id"]
        try:
            if args is not None and case != MID_FLOOD:
                term = attach(box, daemon, sid, args)
                until(lambda: client.info(sid)["attached"] >= 1, f"{case}: no client attached")
            peak = PeakRss(daemon.pid)
            cpu = cpu_seconds(daemon.pid)
            start = time.perf_counter()
            client.write(sid, "\n")
            if case == MID_FLOOD:
                half = payload.terminal_bytes * times // 2
                until(
                    lambda: client.info(sid)["end"] >= half,
                    "the flood did not reach its middle",
                    timeout=30 + payload.size / 1e6,
                )
                extra["attach_at_s"] = time.perf_counter() - start
                extra["attach_at_mb"] = client.info(sid)["end"] / 1e6
                term = attach(box, daemon, sid, args or [])
                screen = Screen(term)
                until(
                    lambda: (
                        client.info(sid)["attached"] >= 1 or client.info(sid)["state"] != "running"
                    ),
                    "the mid-flood client did not attach",
                )
                if not client.info(sid)["attached"]:
                    raise FloodTooShort("the flood ended before the client attached")
            session = client.wait(sid, timeout=30 + payload.size / 1e6)["session"]
            elapsed = time.perf_counter() - start
            cpu = cpu_seconds(daemon.pid) - cpu
            peak_mb = peak.stop()
            if session["state"] != "exited" or session["exit_code"] != 0:
                raise RuntimeError(f"the writer did not finish: {session}")
            if screen is not None:
                seen = screen.wait(30)
                if seen is None:
                    raise RuntimeError("the mid-flood client's screen never showed the end")
                extra["marker_s"] = seen - start
                extra["marker_after_exit_s"] = seen - start - elapsed
                if screen.first_output_at is not None:
                    extra["first_output_s"] = screen.first_output_at - start
        finally:
            if peak is not None:
                peak.cancel()  # stopped already, unless the measurement failed
            if screen is not None:
                screen.stop()
            if term is not None:
                end_client(term)
                extra["client_cpu_s"] = term.child_cpu()
            client.remove(sid)
    per = {"seconds": elapsed / times, "daemon_cpu_s": cpu / times}  # per payload printed
    return {**per, "peak_rss_mb": peak_mb, **extra}


def warm_up(daemon: Daemon, box: Sandbox) -> None:
    """A session with some output, unmeasured: the first in a fresh daemon pays for
    loading the screen engine (about half a second)."""
    env = {"PATH": "/usr/bin:/bin", TAG_VAR: box.tag}
    with daemon.connect() as client:
        sid = client.spawn(["seq", "100000"], cwd="/", env=env, cols=COLS, rows=ROWS)["id"]
        client.wait(sid, timeout=30)
        client.remove(sid)


def measure_long_enough(
    daemon: Daemon, box: Sandbox, payload: Payload, case: str
) -> dict[str, Any]:
    """`measure`; (d) again with a flood twice as long, up to three times, while the flood
    ends before its client has attached."""
    times = 1
    while True:
        try:
            result = measure(daemon, box, payload, case, times)
        except FloodTooShort:
            if times >= 8:
                raise
            daemon.remove_all()
            times *= 2
            continue
        result["payload_times"] = times
        return result


def run(box: Sandbox, payload: Payload, runs: int, progress: Progress) -> dict[str, Any]:
    daemon = box.daemon()
    warm_up(daemon, box)
    results: dict[str, list[dict[str, Any] | None]] = {case: [] for case in CASES}
    failures: dict[str, list[str]] = {case: [] for case in CASES}
    for i in range(runs):
        for case in rotation(CASES, i):
            name = f"stuck: run {i + 1}/{runs} {TITLES[case]}"
            try:
                result = measure_long_enough(daemon, box, payload, case)
            except (RuntimeError, Timeout, TimeoutError) as exc:
                results[case].append(None)
                failures[case].append(f"run {i + 1}: {exc}")
                progress(f"{name} FAILED: {short(str(exc))}")
                daemon.remove_all()
                continue
            results[case].append(result)
            progress(f"{name} {result['seconds']:.3f} s, peak RSS {result['peak_rss_mb']:.1f} MB")
    daemon.stop()
    return {
        "title": "slow and stuck clients",
        "bytes": payload.size,
        "terminal_bytes": payload.terminal_bytes,
        "speed_goal": SPEED_GOAL,
        "patience_s": PATIENCE_S,
        "noise_s": NOISE_S,
        "cases": {case: _case(case, results, failures[case]) for case in CASES},
    }


def _case(
    case: str, results: dict[str, list[dict[str, Any] | None]], failures: list[str]
) -> dict[str, Any]:
    """One case's summaries over its runs; ratios and differences to (a) over the runs
    in which both succeeded."""
    done = [r for r in results[case] if r is not None]
    if not done:
        return {"error": failures[0], "failures": failures}
    figures: dict[str, Any] = {key: summary([r[key] for r in done]) for key in done[0]}
    pairs = [(r, a) for r, a in zip(results[case], results[ALONE], strict=True) if r and a]
    if case != ALONE and pairs:
        seconds = [r["seconds"] for r, _ in pairs], [a["seconds"] for _, a in pairs]
        figures["ratio"] = pairwise(*seconds)
        figures["extra_s"] = summary([r["seconds"] - a["seconds"] for r, a in pairs])
    figures["failures"] = failures
    return figures


# -- the table ------------------------------------------------------------------------

X = "\u00d7"  # multiplication sign
DASH = "\u2013"


def _range(s: dict[str, Any], fmt: str, unit: str = "") -> str:
    median, low, high = (format(s[k], fmt) for k in ("median", "min", "max"))
    return f"{median}{unit}" if low == high else f"{median}{unit} ({low}{DASH}{high})"


def _mark(ok: bool) -> str:
    return " ✓" if ok else " ✗"


def goal_of(case: str) -> tuple[str, float] | None:
    """The figure a case is judged on and its limit: the time ratio for (b) and (c), the
    seconds beyond (a) for (e)."""
    if case in (READ_ONLY, RELAY):
        return "ratio", SPEED_GOAL
    if case == STUCK:
        return "extra_s", PATIENCE_S + NOISE_S
    return None


def table(data: dict[str, Any]) -> str:
    """The cases side by side: time, ratio to (a), time beyond (a), the daemon's peak
    RSS and CPU; each goal marked."""
    widths = (44, 24, 26, 22, 20, 24)
    head = ("time", f"{X} (a)", "beyond (a)", "daemon peak RSS", "CPU s: daemon + client")
    mib = data["bytes"] / 2**20
    title = f"slow and stuck clients, {mib:.0f} MiB of lines"
    rows = [_row(title, head, widths)]
    rows.append("-" * sum(widths))
    for case in CASES:
        col = data["cases"][case]
        if "error" in col:
            rows.append(TITLES[case].ljust(widths[0]) + f"failed: {short(col['error'], 80)}")
            continue
        failed = f" *{len(col['failures'])}" if col["failures"] else ""
        cells = [_range(col["seconds"], ".2f", " s") + failed, "", ""]
        if "ratio" in col:
            cells[1] = _range(col["ratio"], ".3f", X)
            cells[2] = _range(col["extra_s"], "+.2f", " s")
        goal = goal_of(case)
        if goal is not None and goal[0] in col:
            index = 1 if goal[0] == "ratio" else 2
            cells[index] += _mark(col[goal[0]]["median"] <= goal[1])
        cpu = f"{col['daemon_cpu_s']['median']:.2f}"
        if "client_cpu_s" in col:
            cpu += f" + {col['client_cpu_s']['median']:.2f}"
        cells += [_range(col["peak_rss_mb"], ".0f", " MB"), cpu]
        rows.append(_row(TITLES[case], cells, widths))
    rows.append(
        f"goals: (b), (c) {X} (a) ≤ {SPEED_GOAL:.3f} (0.95 of the speed); "
        f"(e) beyond (a) ≤ {PATIENCE_S:g} s held + {NOISE_S:g} s"
    )
    mid = data["cases"][MID_FLOOD]
    if "marker_s" in mid:
        rows.append(
            f"(d): attached {_range(mid['attach_at_s'], '.2f', ' s')} in "
            f"({_range(mid['attach_at_mb'], '.0f', ' MB')} written); its screen showed the "
            f"end {_range(mid['marker_s'], '.2f', ' s')} in, "
            f"{_range(mid['marker_after_exit_s'], '+.3f', ' s')} after the child ended"
        )
    rows += [f"{TITLES[c]}: {short(f, 160)}" for c in CASES for f in data["cases"][c]["failures"]]
    return "\n".join(rows)


def _row(label: str, cells: Sequence[str], widths: Sequence[int]) -> str:
    padded = (c.ljust(w - 1) + " " for c, w in zip(cells, widths[1:], strict=True))
    return (label.ljust(widths[0]) + "".join(padded)).rstrip()
