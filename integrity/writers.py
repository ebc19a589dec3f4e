"""Writers of keys that run beside the schedule: `ptysup write SESSION -` fed from a file, and
`write` requests on the Python client. Each lane runs its pastes one after the other, so the
bytes of one stream are typed in order; a writer that fails (an upgrade broke its connection,
and it said so) retires its stream, and the lane goes on with a new one."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from integrity.daemon import PrivateDaemon
from integrity.keys import KeyStream, StreamPool
from supervisor.client.errors import ClientError

WHOLE_LIMIT = 64 * 1024
"""A CLI paste up to this size goes as one write request (the CLI reads stdin in larger
pieces); a larger one is checked for order only."""


@dataclass
class Paste:
    step: int
    size: int
    started: float = 0.0
    ended: float = 0.0
    ok: bool = True
    detail: str = ""


@dataclass
class Lane:
    """One writer of one recording session: `cli` or `client`."""

    daemon: PrivateDaemon
    session: str
    sid: str
    kind: str
    name: str
    pool: StreamPool
    files: Path
    overlaps_upgrade: Callable[[float, float], bool]
    pastes: list[Paste] = field(default_factory=list)
    stream: KeyStream | None = None
    _jobs: queue.Queue[Paste | None] = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Lane:
        self.stream = self.pool.new(self.name)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def paste(self, step: int, size: int) -> None:
        self._jobs.put(Paste(step, size))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._one(job)

    def _one(self, job: Paste) -> None:
        if self.stream is None:  # out of alphabets after many failed writers
            return
        how = f"step #{job.step}: {self.kind} write of {job.size} B"
        whole = self.kind == "client" or job.size <= WHOLE_LIMIT
        with self._lock:
            data, piece = self.stream.take(job.size, job.step, how, whole)
        job.started = time.monotonic()
        if self.kind == "cli":
            path = self.files / f"{self.name}-{job.step}.paste"
            path.write_bytes(data)
            with open(path, "rb") as stdin:
                try:
                    done = self.daemon.run("write", self.sid, "-", stdin=stdin, timeout=300)
                    job.ok = done.returncode == 0
                    job.detail = done.stderr.decode(errors="replace").strip()
                except subprocess.TimeoutExpired:
                    job.ok, job.detail = False, "`ptysup write` did not end within 300 s"
            path.unlink(missing_ok=True)
        else:
            try:
                with self.daemon.client(timeout=300) as c:
                    c.write(self.sid, data)
            except (ClientError, OSError) as exc:
                job.ok, job.detail = False, f"{type(exc).__name__}: {exc}"
        job.ended = time.monotonic()
        piece.settled, piece.failed = True, not job.ok
        self.pastes.append(job)
        if not job.ok:
            with self._lock:
                self.stream.tainted_at = piece.start
                try:
                    self.stream = self.pool.new(f"{self.name}.{len(self.pool.streams)}")
                except RuntimeError:
                    self.stream = None

    def finish(self, timeout: float) -> bool:
        self._jobs.put(None)
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def unexplained_failures(self) -> list[Paste]:
        """Writers that failed with no upgrade under way to explain it."""
        return [
            p for p in self.pastes if not p.ok and not self.overlaps_upgrade(p.started, p.ended)
        ]
