"""Lossless readers: `ptysup read --follow` processes whose output the harness consumes at a
chosen pace (or not at all for a while), and a reader on the Python client that holds the
daemon to the protocol's own rule for a subscription (docs/protocol.md, "Never missing a
byte without being told"), subscribing again from where it was after an upgrade."""

from __future__ import annotations

import bisect
import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from integrity.daemon import PrivateDaemon
from integrity.lines import Notice, Stream, Verdict, compare_segments, compare_stream, notices
from supervisor.client.blocking import Client
from supervisor.client.errors import ClientError, ConnectionLost
from supervisor.protocol.messages import Event, Output

READ_SIZE = 65536
RECONNECT_TIMEOUT = 60.0


class Arrivals:
    """When a reader's bytes came: (time.monotonic(), bytes so far) after each read."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.sizes: list[int] = []

    def add(self, size: int) -> None:
        self.times.append(time.monotonic())
        self.sizes.append(size)

    def when(self, position: int) -> float | None:
        """When the byte at `position` (counted from 0) had come, or the last read."""
        i = bisect.bisect_right(self.sizes, position)
        if i < len(self.times):
            return self.times[i]
        return self.times[-1] if self.times else None


class FollowReader:
    """`ptysup read SESSION --follow --since 0` into a pipe the harness reads: `delay`
    seconds of sleep after each read of up to 64 KiB; `stall` stops reading the pipe for a
    while; `stop` stops the process itself (SIGSTOP) for a while."""

    def __init__(self, daemon: PrivateDaemon, name: str, session: str, delay: float) -> None:
        self.name = name
        self.session = session
        self.delay = delay
        self.proc = daemon.popen("read", session, "--follow", "--since", "0")
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out = bytearray()
        self.err = bytearray()
        self.arrivals = Arrivals()
        self.err_arrivals = Arrivals()
        self.stalled_until = 0.0
        self.returncode: int | None = None
        self._threads = [
            threading.Thread(target=self._consume, name=f"{name}-out", daemon=True),
            threading.Thread(target=self._errors, name=f"{name}-err", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _consume(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            pause = self.stalled_until - time.monotonic()
            if pause > 0:
                time.sleep(min(pause, 0.1))
                continue
            try:
                data = os.read(fd, READ_SIZE)
            except OSError:
                return
            if not data:
                return
            self.out += data
            self.arrivals.add(len(self.out))
            if self.delay:
                time.sleep(self.delay)

    def _errors(self) -> None:
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        while data := os.read(fd, 4096):
            self.err += data
            self.err_arrivals.add(len(self.err))

    def stall(self, seconds: float) -> None:
        self.stalled_until = time.monotonic() + seconds

    def stop(self, seconds: float) -> None:
        """SIGSTOP now, SIGCONT after `seconds` (on a timer)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGSTOP)
        timer = threading.Timer(seconds, self.cont)
        timer.daemon = True
        timer.start()

    def cont(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)

    def finish(self, timeout: float) -> bool:
        """Wait for the process to end (at the session's end) and its pipes to drain."""
        self.stalled_until = 0.0
        self.cont()
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        for thread in self._threads:
            thread.join(10)
        return True

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.cont()
            self.proc.kill()
            self.proc.wait()
        self.returncode = self.proc.returncode
        for thread in self._threads:
            thread.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def notices(self) -> list[Notice]:
        return notices(bytes(self.err), self.err_arrivals.when)

    def verdict(self, expected: Stream, end: int) -> Verdict:
        return compare_stream(expected, bytes(self.out), self.notices(), end)

    def describe(self) -> str:
        pace = f"sleeps {self.delay * 1000:.0f} ms a read" if self.delay else "fast"
        return f"{self.name} (`ptysup read {self.session} --follow`, {pace})"


@dataclass
class ClientReader:
    """A lossless subscription on the Python client, checked frame by frame."""

    daemon: PrivateDaemon
    name: str
    session: str
    delay: float
    segments: list[tuple[int, bytes]] = field(default_factory=list)
    skips: list[Notice] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    resubscribed: int = 0
    arrivals: Arrivals = field(default_factory=Arrivals)
    received: int = 0
    ended: bool = False
    error: str = ""
    stalled_until: float = 0.0
    _thread: threading.Thread | None = None
    _closing: threading.Event = field(default_factory=threading.Event)

    def start(self) -> ClientReader:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stall(self, seconds: float) -> None:
        self.stalled_until = time.monotonic() + seconds

    def _subscribe(self, since: int) -> tuple[Client, int, int]:
        deadline = time.monotonic() + RECONNECT_TIMEOUT
        while True:
            try:
                client = self.daemon.client(timeout=10)
                result = client.call(
                    "subscribe", session=self.session, since=since, follow=True, lossless=True
                )
            except ClientError:
                if time.monotonic() > deadline or self._closing.is_set():
                    raise
                time.sleep(0.05)
                continue
            start = int(result["start"])
            if start != since:
                self.skips.append(Notice(since, start, since == 0, time.monotonic()))
            return client, int(result["sub"]), start

    def _run(self) -> None:
        try:
            client, sub, at = self._subscribe(0)
        except ClientError as exc:
            self.error = f"cannot subscribe: {exc}"
            return
        try:
            while not self._closing.is_set():
                pause = self.stalled_until - time.monotonic()
                if pause > 0:
                    time.sleep(min(pause, 0.1))
                    continue
                try:
                    event = client.next_event(0.5)
                except ConnectionLost:
                    client.close()
                    client, sub, at = self._subscribe(at)
                    self.resubscribed += 1
                    continue
                if isinstance(event, Output) and event.sub == sub:
                    if event.offset != at:
                        self.violations.append(
                            f"an output frame at {event.offset} when the next byte was {at}"
                        )
                    self.segments.append((event.offset, event.data))
                    self.received += len(event.data)
                    self.arrivals.add(self.received)
                    at = event.offset + len(event.data)
                    if self.delay:
                        time.sleep(self.delay)
                elif isinstance(event, Event) and event.sub == sub:
                    if event.event == "skipped":
                        start, end = int(event.fields["from"]), int(event.fields["to"])
                        if start != at:
                            self.violations.append(f"skipped from {start} when next was {at}")
                        self.skips.append(Notice(start, end, False, time.monotonic()))
                        at = end
                    elif event.event == "end":
                        offset = event.fields.get("offset")
                        if isinstance(offset, int) and offset != at:
                            self.violations.append(f"end at {offset} when next was {at}")
                        self.ended = True
                        return
        except ClientError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            client.close()

    def finish(self, timeout: float) -> bool:
        if self._thread is None:
            return True
        self.stalled_until = 0.0
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def kill(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(5)

    def verdict(self, expected: Stream, end: int) -> Verdict:
        start = self.skips[0].end if self.skips and self.skips[0].truncated else 0
        skips = [s for s in self.skips if not (s.truncated and s.start == 0)]
        verdict = compare_segments(expected, self.segments, skips, end, start)
        if self.skips and self.skips[0].truncated:
            verdict.skipped_with_notice += self.skips[0].end
        if self.violations and verdict.ok:
            verdict.ok = False
            verdict.problem = "the protocol's offsets broke: " + "; ".join(self.violations[:3])
        if self.error and verdict.ok:
            verdict.ok = False
            verdict.problem = self.error
        return verdict

    def describe(self) -> str:
        pace = f"sleeps {self.delay * 1000:.0f} ms a frame" if self.delay else "fast"
        return f"{self.name} (Python client, lossless subscription to {self.session}, {pace})"
