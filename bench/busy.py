"""A keystroke's round trip while others flood: the `echo` workload (bench/latency.py)
through one session of a tool while four other sessions of the same tool, in the same
server where it has one, print without pause to terminals the bench reads and discards."""

import contextlib
import errno
import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench import Progress, latency, tools
from bench.baseline import Build
from bench.payloads import LINE
from bench.sandbox import Daemon, Sandbox, cpu_seconds
from bench.stats import percentile, short, summary
from bench.terminal import READ_SIZE, Terminal, Timeout

FLOODERS = 4
TEXT = LINE.rstrip(b"\n").decode()
"""What each flooder prints, line after line (`yes` adds the LF): the `lines` workload's."""
STALL_S = 0.5
"""A flooder's terminal showing nothing for longer than this during the samples fails the
measurement: the echo would have been measured without the flood."""
START_S = 30.0
GOAL_P99_US = 1000.0
FIGURES = (
    "window_s",
    "flood_mb_per_s",
    "slowest_mb_per_s",
    "written_mb_per_s",
    "longest_gap_s",
    "daemon_cpu_pct",
)


def flood_command(pidfile: str) -> list[str]:
    """`yes` for ever; its pid (also its process group's: it leads its terminal's session
    under every tool) in `pidfile`."""
    return ["sh", "-c", 'echo $$ > "$0"; exec yes "$1"', pidfile, TEXT]


@dataclass(frozen=True)
class Window:
    """What the flooders' terminals showed while the samples were taken."""

    seconds: float
    received: list[int]
    longest_gap: list[float]
    closed: list[bool]


class Screens:
    """The flooders' terminals, read as fast as they give and discarded, in one thread
    (select over their masters): per terminal the bytes so far, when it last gave some,
    and the longest it went without since `mark()`."""

    def __init__(self) -> None:
        self.masters: list[int] = []
        self.received: list[int] = []
        self.last: list[float] = []
        self.gap: list[float] = []
        self.closed: list[bool] = []
        self._since = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def add(self, master: int) -> None:
        with self._lock:
            self.masters.append(master)
            self.received.append(0)
            self.last.append(time.perf_counter())
            self.gap.append(0.0)
            self.closed.append(False)

    def _read(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                fds = [m for m, closed in zip(self.masters, self.closed, strict=True) if not closed]
            readable, _, _ = select.select(fds, [], [], 0.05)
            for fd in readable:
                try:
                    data = os.read(fd, READ_SIZE)
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                now = time.perf_counter()
                i = self.masters.index(fd)
                with self._lock:
                    if not data:
                        self.closed[i] = True
                        continue
                    self.gap[i] = max(self.gap[i], now - max(self.last[i], self._since))
                    self.last[i] = now
                    self.received[i] += len(data)

    def wait_flowing(self, count: int, timeout: float) -> None:
        """Until the first `count` terminals have each shown output."""
        deadline = time.monotonic() + timeout
        while not all(self.received[:count]):
            if any(self.closed[:count]) or not self._thread.is_alive():
                raise RuntimeError("a flooder's terminal closed before it showed anything")
            if time.monotonic() > deadline:
                raise Timeout(f"the flooders showed nothing within {timeout:g} s")
            time.sleep(0.01)

    def mark(self) -> tuple[float, list[int]]:
        """The start of a window: the time and the bytes so far."""
        with self._lock:
            self._since = time.perf_counter()
            self.gap = [0.0] * len(self.masters)
            return self._since, list(self.received)

    def window(self, mark: tuple[float, list[int]]) -> Window:
        """What the terminals showed since `mark`."""
        start, before = mark
        with self._lock:
            now = time.perf_counter()
            gaps = [max(g, now - max(t, start)) for g, t in zip(self.gap, self.last, strict=True)]
            received = [n - b for n, b in zip(self.received, before, strict=True)]
            return Window(now - start, received, gaps, list(self.closed))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def written(pid: int) -> int | None:
    """The bytes a process has written so far (`wchar`), or None where not readable."""
    try:
        with open(f"/proc/{pid}/io", "rb") as f:
            for line in f:
                if line.startswith(b"wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def read_pid(pidfile: str) -> int | None:
    try:
        with open(pidfile) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


class Flooders:
    """Four flooders under `tool` (in `tmux_socket`'s server for tmux, on `daemon` for
    ptysup), each on a terminal of the bench's that a `Screens` reads."""

    def __init__(self, box: Sandbox, daemon: Daemon, tool: str, tmux_socket: str | None) -> None:
        self.box, self.daemon, self.tool, self.tmux_socket = box, daemon, tool, tmux_socket
        self.terms: list[Terminal] = []
        self.pidfiles: list[str] = []
        self.pids: list[int] = []

    def start(self, screens: Screens) -> None:
        """Start them one after the other and wait until every terminal shows the flood."""
        env = tools.env(self.tool, self.box, self.daemon)
        for i in range(FLOODERS):
            self.pidfiles.append(self.box.path("f"))
            child = flood_command(self.pidfiles[-1])
            argv = tools.command(self.tool, self.box, self.daemon, child, self.tmux_socket)
            self.terms.append(Terminal(argv, env, "/"))
            screens.add(self.terms[-1].master)
            if i == 0:  # tmux: the first starts the server, the others join it
                screens.wait_flowing(1, START_S)
        screens.wait_flowing(FLOODERS, START_S)
        for pidfile in self.pidfiles:
            pid = read_pid(pidfile)
            if pid is None:
                raise RuntimeError(f"a flooder showed output but left no pid in {pidfile}")
            self.pids.append(pid)

    def written(self) -> list[int | None]:
        return [written(pid) for pid in self.pids]

    def end(self, timeout: float = 10) -> None:
        """Kill every `yes` (its process group) and wait until each tool has closed its
        terminal; a client that does not is killed with its process group."""
        for pidfile in self.pidfiles:
            pid = read_pid(pidfile)
            if pid is not None:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
        for term, pidfile in zip(self.terms, self.pidfiles, strict=True):
            with contextlib.suppress(Timeout, OSError):
                term.drain(timeout)
            term.close()
            with contextlib.suppress(OSError):
                os.unlink(pidfile)


def stalled(window: Window, before: list[int | None], after: list[int | None]) -> str | None:
    """Why the flood did not run through the window, or None."""
    ms = window.seconds * 1000
    for i in range(FLOODERS):
        if window.closed[i]:
            return f"flooder {i + 1}'s terminal closed during the samples"
        if window.received[i] == 0:
            return f"flooder {i + 1}'s terminal showed nothing in the {ms:.0f} ms of samples"
        if window.longest_gap[i] > STALL_S:
            return f"flooder {i + 1}'s terminal showed nothing for {window.longest_gap[i]:.2f} s"
        if before[i] is not None and before[i] == after[i]:
            return f"flooder {i + 1} wrote nothing in the {ms:.0f} ms of samples"
    return None


def measure(box: Sandbox, daemon: Daemon, tool: str, samples: int) -> dict[str, float | None]:
    """Echo round trips with the flooders running: p50 and p99 (µs) and the flood's figures
    over the samples' window."""
    tmux_socket = box.path("t") if tool == tools.TMUX else None
    if tool in tools.PTYSUP_TOOLS:  # the flood measured, not the screen engine's loading
        daemon.cli("run", "--", "seq", "100000")
    with contextlib.ExitStack() as stack:
        if tmux_socket is not None:
            stack.callback(kill_server, box, tmux_socket)
        flooders = Flooders(box, daemon, tool, tmux_socket)
        stack.callback(flooders.end)
        screens = Screens()
        stack.callback(screens.stop)  # first: `end` reads the terminals to their end
        flooders.start(screens)
        echo = latency.Echo(box, daemon, tool, tmux_socket)
        stack.callback(echo.close)
        echo.round_trips(latency.WARMUP)
        ptysup = tool in tools.PTYSUP_TOOLS
        before = flooders.written()
        cpu = cpu_seconds(daemon.pid) if ptysup else 0.0
        mark = screens.mark()
        began = time.monotonic()
        times = echo.round_trips(samples)
        while time.monotonic() - began < STALL_S:  # a window long enough to judge a stall
            times += echo.round_trips(max(1, samples // 10))
        window = screens.window(mark)
        cpu = cpu_seconds(daemon.pid) - cpu if ptysup else 0.0
        after = flooders.written()
        if why := stalled(window, before, after):
            raise RuntimeError(f"the flood stalled: {why}")
        echo.end()
    if ptysup:
        daemon.forget_exited()
    carried = sum(window.received)
    wrote = [a - b for a, b in zip(after, before, strict=True) if a is not None and b is not None]
    return {
        "p50_us": percentile(times, 50),
        "p99_us": percentile(times, 99),
        "window_s": window.seconds,
        "flood_mb_per_s": carried / window.seconds / 1e6,
        "slowest_mb_per_s": min(window.received) / window.seconds / 1e6,
        "written_mb_per_s": sum(wrote) / window.seconds / 1e6 if len(wrote) == FLOODERS else None,
        "longest_gap_s": max(window.longest_gap),
        "daemon_cpu_pct": cpu / window.seconds * 100 if ptysup else None,
    }


def kill_server(box: Sandbox, sock: str) -> None:
    if os.path.exists(sock):
        subprocess.run(
            ["tmux", "-S", sock, "kill-server"],
            env=box.env,
            capture_output=True,
            timeout=10,
            check=False,
        )


def _brief(result: dict[str, float | None]) -> str:
    text = f"p50 {result['p50_us']:.0f} µs p99 {result['p99_us']:.0f} µs, flood "
    text += f"{result['flood_mb_per_s']:.0f} MB/s on the terminals"
    if (wrote := result["written_mb_per_s"]) is not None:
        text += f", {wrote:.0f} MB/s written"
    if (cpu := result["daemon_cpu_pct"]) is not None:
        text += f", daemon CPU {cpu:.0f} %"
    return text


def run(
    box: Sandbox, samples: int, runs: int, progress: Progress, baseline: Build | None = None
) -> dict[str, Any]:
    daemons = tools.Daemons(box, baseline)
    order = tools.with_baseline(tools.INTERACTIVE, baseline is not None)
    results: dict[str, list[dict[str, float | None] | None]] = {tool: [] for tool in order}
    failures: dict[str, list[str]] = {tool: [] for tool in order}
    for i in range(runs):
        for tool in tools.rotation(order, i):
            name = f"busy: run {i + 1}/{runs} {tools.TITLES[tool]}"
            try:
                result = measure(box, daemons.of(tool), tool, samples)
            except (RuntimeError, Timeout, OSError) as exc:
                results[tool].append(None)
                failures[tool].append(f"run {i + 1}: {exc}")
                progress(f"{name} FAILED: {short(str(exc))}")
                if tool in tools.PTYSUP_TOOLS:
                    daemons.of(tool).remove_all()
                continue
            results[tool].append(result)
            progress(f"{name} {_brief(result)}")
    daemons.stop()
    columns = latency.percentile_columns(
        order,
        {tool: [None if r is None else r["p50_us"] for r in rs] for tool, rs in results.items()},
        {tool: [None if r is None else r["p99_us"] for r in rs] for tool, rs in results.items()},
        failures,
    )
    for tool, column in columns.items():
        done = [r for r in results[tool] if r is not None]
        for key in FIGURES if "error" not in column else ():
            values = [r[key] for r in done if r[key] is not None]
            column[key] = summary(values) if len(values) == len(done) else None
    return {
        "title": f"keystroke echo, {FLOODERS} other sessions flooding",
        "samples": samples,
        "flooders": FLOODERS,
        "flood_text": TEXT,
        "stall_s": STALL_S,
        "goal_p99_us": GOAL_P99_US,
        "columns": columns,
    }
