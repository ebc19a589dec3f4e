"""One run of a random schedule against a private daemon: the sessions, readers, terminals and
writers it sets up, the steps done at their times, the end (every child finished, every reader
drained, every key recorded), and the invariants checked on what everyone got."""

from __future__ import annotations

import base64
import json
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from integrity import invariants as inv
from integrity.daemon import Memory, MiB, PrivateDaemon
from integrity.invariants import Checks
from integrity.keys import KeyStream, StreamPool
from integrity.keys import check as check_keys
from integrity.lines import Stream, plan_spec
from integrity.readers import ClientReader, FollowReader
from integrity.schedule import Printer, Recorder, Schedule, Step
from integrity.terminal import PtyClient
from integrity.writers import Lane
from supervisor.client.errors import ClientError

SESSION_ALLOWANCE_MIB = 8
BASE_MIB = 150
SETTLE = 30.0
"""Seconds a quiet moment (keys read, clients back after an upgrade) may take to come."""
FINISH = 180.0
"""Seconds the end of a run (children finishing, readers draining) may take."""

Log = Callable[[str], None]


def rss_bound_mib(schedule: Schedule, subscriptions: int) -> float:
    """The stated bound: 150 MiB, plus per session its ring and 8 MiB (screen engine,
    queues), plus per lossless subscription what it may hold queued."""
    sessions = len(schedule.printers) + len(schedule.recorders)
    ring = schedule.ring_size / MiB
    backlog = max(schedule.backlog, schedule.ring_size) / MiB
    return BASE_MIB + sessions * (ring + SESSION_ALLOWANCE_MIB) + subscriptions * backlog


@dataclass
class Attached:
    name: str
    session: str
    interactive: bool
    relay: bool
    terminal: PtyClient
    step: int
    gone: bool = False


@dataclass
class Keys:
    """A recording session: its file, its key streams, its writers."""

    recorder: Recorder
    sid: str
    path: Path
    pool: StreamPool = field(default_factory=StreamPool)
    typed: KeyStream | None = None
    lanes: dict[str, Lane] = field(default_factory=dict)

    def recorded(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError:
            return b""


@dataclass
class Timeline:
    """Each session's output end over time, to tell which step an offset was printed in."""

    points: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def when(self, sid: str, offset: int) -> float | None:
        for t, ends in self.points:
            if ends.get(sid, -1) >= offset:
                return t
        return None


class ScheduleRun:
    def __init__(self, schedule: Schedule, daemon: PrivateDaemon, log: Log) -> None:
        self.schedule = schedule
        self.daemon = daemon
        self.log = log
        self.checks = Checks()
        self.sids: dict[str, str] = {}
        self.printers: dict[str, Printer] = {p.name: p for p in schedule.printers}
        self.keys: dict[str, Keys] = {}
        self.clients: dict[str, Attached] = {}
        self.readers: dict[str, FollowReader | ClientReader] = {}
        self.reader_session: dict[str, str] = {}
        self.step_times: list[tuple[float, Step]] = []
        self.upgrades: list[tuple[float, float]] = []
        self.ring_checks: list[dict[str, Any]] = []
        self.timeline = Timeline()
        self.begun = 0.0
        self.begun_wall = 0.0
        self._stop = threading.Event()
        self._rng = random.Random(schedule.seed ^ 0x5EED)
        self.memory = Memory(daemon.pid)
        self.subscriptions = 0
        self.streams: dict[str, Stream] = {}

    # -- helpers ------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.begun

    def step_at(self, t: float | None) -> str | None:
        """The step under way at `t` (seconds into the run)."""
        if t is None:
            return None
        current = None
        upgrade = None
        for started, step in self.step_times:
            if started > t:
                break
            current = step
            if step.action == "upgrade":
                upgrade = step
        text = current.text() if current else f"t={t:.2f}s (before the first step)"
        if upgrade is not None and upgrade is not current:
            text += f"; seen at t={t:.2f}s, after the upgrade of step #{upgrade.index}"
        return text

    def step_text(self, index: int | None) -> str | None:
        if index is None:
            return None
        for _, step in self.step_times:
            if step.index == index:
                return step.text()
        return f"step #{index}"

    def overlaps_upgrade(self, start: float, end: float) -> bool:
        """Whether an upgrade ran between the monotonic times `start` and `end`."""
        start, end = start - self.begun, end - self.begun
        return any(s - 1.0 <= end and start <= e + 1.0 for s, e in self.upgrades)

    def behaves(self, detail: str, step: Step | None = None) -> None:
        self.checks[inv.BEHAVES].fail(detail, step.text() if step else None)
        self.log(f"  ! {detail}")

    def info(self, name: str) -> dict[str, Any] | None:
        try:
            with self.daemon.client(timeout=20) as c:
                return c.info(self.sids[name])
        except ClientError:
            return None

    # -- setup --------------------------------------------------------------------

    def setup(self) -> None:
        d = self.daemon
        for p in self.schedule.printers:
            argv = d.program("lines", plan_spec(p.plan), "--delay", str(p.delay), "--hold", "0.3")
            self.sids[p.name] = self._spawn(p.name, p.cols, p.rows, argv)
        for r in self.schedule.recorders:
            path = d.files / f"{r.name}.keys"
            argv = d.program(
                "record", str(path), "--interval", str(r.interval), "--chunk", str(r.chunk)
            )
            sid = self._spawn(r.name, r.cols, r.rows, argv)
            self.sids[r.name] = sid
            keys = Keys(r, sid, path)
            keys.typed = keys.pool.new(f"{r.name}:typed")
            for kind in ("cli1", "cli2", "client"):
                keys.lanes[kind] = Lane(
                    d,
                    r.name,
                    sid,
                    "client" if kind == "client" else "cli",
                    f"{r.name}:{kind}",
                    keys.pool,
                    d.files,
                    self.overlaps_upgrade,
                ).start()
            self.keys[r.name] = keys
        for r in self.schedule.recorders:
            done = d.run("expect", self.sids[r.name], "READY", "--timeout", str(SETTLE))
            if done.returncode != 0:
                raise RuntimeError(f"recorder {r.name} did not start: {done.stderr!r}")
        for spec in self.schedule.readers:
            self._add_reader(spec.name, spec.session, spec.kind, spec.delay)

    def _spawn(self, name: str, cols: int, rows: int, argv: list[str]) -> str:
        done = self.daemon.run("spawn", "--name", name, "--size", f"{cols}x{rows}", "--", *argv)
        if done.returncode != 0:
            raise RuntimeError(f"cannot spawn {name}: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode().strip()

    def _add_reader(self, name: str, session: str, kind: str, delay: float) -> None:
        sid = self.sids[session]
        reader: FollowReader | ClientReader
        if kind == "client":
            reader = ClientReader(self.daemon, name, sid, delay).start()
        else:
            reader = FollowReader(self.daemon, name, sid, delay)
        self.readers[name] = reader
        self.reader_session[name] = session
        self.subscriptions += 1

    # -- the schedule -------------------------------------------------------------

    def execute(self) -> None:
        self.begun = time.monotonic()
        self.begun_wall = time.time()
        self.memory.start()
        sampler = threading.Thread(target=self._sample, name="timeline", daemon=True)
        sampler.start()
        try:
            self.setup()
            for step in self.schedule.steps:
                wait = step.at - self.now()
                if wait > 0:
                    time.sleep(wait)
                self.step_times.append((self.now(), step))
                self.log(f"{self.now():7.2f}s {step.text()}")
                try:
                    getattr(self, f"do_{step.action}")(step, **step.args)
                except Exception as exc:
                    self.behaves(f"the step failed: {type(exc).__name__}: {exc}", step)
            self.finish()
        finally:
            self._stop.set()
            sampler.join(5)
            self.memory.stop()
            self.cleanup()

    def _sample(self) -> None:
        client = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self.daemon.client(timeout=5)
                ends = {s["id"]: int(s["end"]) for s in client.list()}
                self.timeline.points.append((self.now(), ends))
            except (ClientError, OSError):
                if client is not None:
                    client.close()
                client = None
            self._stop.wait(0.25)
        if client is not None:
            client.close()

    # -- steps --------------------------------------------------------------------

    def do_attach(
        self,
        step: Step,
        client: str,
        session: str,
        read_only: bool,
        relay: bool,
        cols: int,
        rows: int,
    ) -> None:
        if not self._session_running(session):
            self.log(f"  ({session} has ended; nothing to attach to)")
            return
        keys = self.keys.get(session)
        if keys is not None and not read_only:
            self._settle_typing(session, step)  # control moves: what was typed arrives first
        before = self.info(session)
        args = ["attach", self.sids[session]]
        args += ["--read-only"] if read_only else []
        args += ["--relay"] if relay else []
        terminal = PtyClient(
            client, self.daemon.command(*args), self.daemon.env, str(self.daemon.files), cols, rows
        )
        self.clients[client] = Attached(client, session, not read_only, relay, terminal, step.index)
        self.subscriptions += 1
        want = (before or {}).get("attached", 0) + 1
        if not self._wait_attached(session, want):
            self.behaves(f"{client} did not attach to {session} within {SETTLE:.0f} s", step)

    def _wait_attached(self, session: str, want: int) -> bool:
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            info = self.info(session)
            if info is not None and (info["attached"] >= want or info["state"] != "running"):
                return True
            time.sleep(0.05)
        return False

    def _controller(self, session: str) -> Attached | None:
        live = [c for c in self.clients.values() if c.session == session and not c.gone]
        interactive = [c for c in live if c.interactive]
        return interactive[-1] if interactive else None

    def _settle_typing(self, session: str, step: Step) -> None:
        """Before control moves: the keys typed so far are out of the terminals and in the
        child's file (a key typed by a client that is no longer the controller is dropped,
        as documented; that is not what is tested here)."""
        keys = self.keys[session]
        for c in self.clients.values():
            if c.session == session and not c.gone:
                c.terminal.keys_settled(SETTLE)
        assert keys.typed is not None
        want = keys.typed.expected()
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            recorded = keys.recorded()
            got = recorded.translate(None, bytes(set(range(256)) - set(keys.typed.alphabet)))
            if len(got) >= len(want):
                return
            time.sleep(0.05)
        self.log(f"  (keys typed into {session} still not all read by its child)")

    def do_detach(self, step: Step, client: str) -> None:
        attached = self.clients.get(client)
        if attached is None or attached.gone:
            return
        if attached.interactive and attached.session in self.keys:
            self._settle_typing(attached.session, step)
        attached.terminal.signal(signal.SIGCONT)
        attached.terminal.stalled.clear()
        status = attached.terminal.detach(SETTLE)
        attached.gone = True
        if status is None:
            self.behaves(f"{client} did not detach within {SETTLE:.0f} s", step)
        elif status != 0 and self._session_running(attached.session):
            tail = attached.terminal.text()[-160:]
            self.behaves(f"{client} detached with status {status}: {tail!r}", step)
        attached.terminal.close()

    def _session_running(self, session: str) -> bool:
        info = self.info(session)
        return info is not None and info["state"] == "running"

    def _typist(self, client: str, session: str, step: Step) -> Attached | None:
        attached = self.clients.get(client)
        controller = self._controller(session)
        if attached is None or attached.gone or controller is not attached:
            self.log(f"  ({client} is not the controller of {session}; nothing typed)")
            return None
        return attached

    def do_type(self, step: Step, client: str, session: str, size: int) -> None:
        attached = self._typist(client, session, step)
        keys = self.keys[session]
        if attached is None or keys.typed is None:
            return
        data, _ = keys.typed.take(size, step.index, f"step #{step.index}: typed by {client}", False)
        at = 0
        while at < len(data):
            n = self._rng.randint(1, 8)
            attached.terminal.type(data[at : at + n])
            at += n
            time.sleep(self._rng.choice([0.0, 0.002, 0.01]))

    def do_paste_attach(self, step: Step, client: str, session: str, size: int) -> None:
        attached = self._typist(client, session, step)
        keys = self.keys[session]
        if attached is None or keys.typed is None:
            return
        how = f"step #{step.index}: pasted into {client}'s terminal"
        data, _ = keys.typed.take(size, step.index, how, False)
        attached.terminal.type(data)

    def do_bursts(self, step: Step, client: str, session: str, count: int, pause: float) -> None:
        attached = self._typist(client, session, step)
        keys = self.keys[session]
        if attached is None or keys.typed is None:
            return
        how = f"step #{step.index}: {count} bursts of 64 KiB every {pause * 1000:.0f} ms"
        data, _ = keys.typed.take(count * 65536, step.index, how, False)
        for at in range(0, len(data), 65536):
            attached.terminal.type(data[at : at + 65536], pause)

    def do_paste_write(self, step: Step, session: str, size: int, lane: int) -> None:
        self.keys[session].lanes[f"cli{lane}"].paste(step.index, size)

    def do_client_write(self, step: Step, session: str, size: int) -> None:
        self.keys[session].lanes["client"].paste(step.index, size)

    def do_resize_session(self, step: Step, session: str, cols: int, rows: int) -> None:
        done = self.daemon.run("resize", self.sids[session], str(cols), str(rows))
        if done.returncode != 0 and self._session_running(session):
            self.behaves(f"resize failed: {done.stderr.decode(errors='replace').strip()}", step)

    def do_resize_client(self, step: Step, client: str, cols: int, rows: int) -> None:
        attached = self.clients.get(client)
        if attached is not None and not attached.gone:
            attached.terminal.resize(cols, rows)

    def do_stop_reader(self, step: Step, reader: str, seconds: float) -> None:
        r = self.readers[reader]
        if isinstance(r, FollowReader):
            r.stop(seconds)
        else:
            r.stall(seconds)

    def do_stall_reader(self, step: Step, reader: str, seconds: float) -> None:
        self.readers[reader].stall(seconds)

    def do_stop_client(self, step: Step, client: str, seconds: float) -> None:
        attached = self.clients.get(client)
        if attached is None or attached.gone:
            return
        if attached.relay:
            attached.terminal.signal(signal.SIGSTOP)
            timer = threading.Timer(seconds, attached.terminal.signal, (signal.SIGCONT,))
        else:
            attached.terminal.stalled.set()
            timer = threading.Timer(seconds, attached.terminal.stalled.clear)
        timer.daemon = True
        timer.start()

    def do_late_reader(self, step: Step, reader: str, session: str, delay: float) -> None:
        if not self._session_running(session):
            return
        self._add_reader(reader, session, "cli" if delay == 0 else "client", delay)

    def do_ring_check(self, step: Step, session: str) -> None:
        self._ring(session, step)

    def do_upgrade(self, step: Step) -> None:
        for c in self.clients.values():  # what was typed is in the daemon's hands first
            if not c.gone and not c.terminal.keys_settled(SETTLE):
                self.log(f"  ({c.name}'s keys still not read from its terminal)")
        start = self.now()
        done = self.daemon.run("upgrade", timeout=120)
        if done.returncode != 0:
            self.behaves(f"upgrade failed: {done.stderr.decode(errors='replace').strip()}", step)
        deadline = time.monotonic() + 60
        pid = None
        while time.monotonic() < deadline:
            try:
                with self.daemon.client(timeout=5) as c:
                    pid = int(c.status()["pid"])
                    break
            except (ClientError, OSError):
                time.sleep(0.05)
        if pid != self.daemon.pid:
            self.behaves(
                f"after the upgrade the daemon's pid is {pid}, not {self.daemon.pid}", step
            )
        for session in self.sids:
            live = [c for c in self.clients.values() if c.session == session and not c.gone]
            live = [c for c in live if c.terminal.running()]
            back = not live or not self._session_running(session)
            if not back and not self._wait_attached(session, len(live)):
                self.behaves(f"the clients of {session} did not attach again", step)
        self.upgrades.append((start, self.now()))

    # -- the end ------------------------------------------------------------------

    def finish(self) -> None:
        self.log(f"{self.now():7.2f}s the end: children finish, readers drain, keys arrive")
        for c in self.clients.values():
            c.terminal.stalled.clear()
            c.terminal.signal(signal.SIGCONT)
        for reader in self.readers.values():
            reader.stall(0)
            if isinstance(reader, FollowReader):
                reader.cont()
        for keys in self.keys.values():
            for lane in keys.lanes.values():
                if not lane.finish(FINISH):
                    self.behaves(f"{lane.name}: its pastes did not end within {FINISH:.0f} s")
        deadline = time.monotonic() + FINISH
        for name in self.printers:
            try:
                with self.daemon.client(timeout=None) as c:
                    left = max(1.0, deadline - time.monotonic())
                    done = c.wait(self.sids[name], timeout=left)
                if done.get("timed_out"):
                    self.behaves(f"printer {name} did not finish within {FINISH:.0f} s (held?)")
            except ClientError as exc:
                self.behaves(f"cannot wait for printer {name}: {exc}")
        for name, reader in self.readers.items():
            left = max(1.0, deadline - time.monotonic())
            if not reader.finish(left):
                self.behaves(f"reader {name} did not reach the end of its session")
        for keys in self.keys.values():
            self._await_keys(keys, deadline)
        self._clients_still_there()
        for name in self.sids:
            self._ring(name, None)
        self.check()
        self.check_memory()

    def _clients_still_there(self) -> None:
        """A client ends by itself only when its session does, with the child's status."""
        for c in self.clients.values():
            if c.gone or c.terminal.running():
                continue
            status = c.terminal.proc.returncode
            info = self.info(c.session)
            ended = info is not None and info["state"] != "running"
            late = status == 125 and b"nothing to attach to" in c.terminal.text()
            if not ended or (status != 0 and not late):
                shown = c.terminal.text()[-120:]
                when = ""
                if ended and info is not None and info.get("exited_at"):
                    exited = datetime.fromisoformat(info["exited_at"].replace("Z", "+00:00"))
                    t = exited.timestamp() - self.begun_wall
                    during = any(a <= t <= b + 1 for a, b in self.upgrades)
                    when = f"; its session ended at t={t:.2f}s" + (
                        ", while an upgrade was under way" if during else ""
                    )
                self.behaves(
                    f"{c.name} (attached to {c.session} at step #{c.step}) ended by itself "
                    f"with status {status}{when}: {shown!r}"
                )

    def _await_keys(self, keys: Keys, deadline: float) -> None:
        want = keys.pool.total
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            size = len(keys.recorded())
            if size >= want:
                return
            if size != last:
                last, quiet_since = size, time.monotonic()
            elif time.monotonic() - quiet_since > 5:
                return  # nothing more is coming
            time.sleep(0.1)

    def _ring(self, session: str, step: Step | None) -> None:
        sid = self.sids[session]
        done = self.daemon.run("read", sid, "--json", "--since", "0", timeout=60)
        where = step.text() if step else "the end"
        check = self.checks[inv.RING]
        if done.returncode != 0:
            if step is None or self._session_running(session):
                self.behaves(f"read --json of {session} failed: {done.stderr!r}", step)
            return
        result = json.loads(done.stdout)
        start, end = int(result["start"]), int(result["end"])
        data = base64.b64decode(result["data_b64"])
        capacity = self.schedule.ring_size
        kept = end - start
        record = {"session": session, "at": where, "start": start, "end": end, "kept": kept}
        self.ring_checks.append(record)
        check.checked += 1
        if kept != min(end, capacity) or len(data) != kept:
            check.fail(
                f"{session}: the ring keeps {kept} bytes ({start}..{end}, {len(data)} given) "
                f"of min(end, capacity) = {min(end, capacity)}",
                where,
            )
            return
        printer = self.printers.get(session)
        if printer is not None and data != self._stream(session).data[start:end]:
            check.fail(
                f"{session}: the ring's bytes {start}..{end} are not what was printed", where
            )

    def _stream(self, session: str) -> Stream:
        if session not in self.streams:
            self.streams[session] = Stream(self.printers[session].total)
        return self.streams[session]

    # -- the invariants -----------------------------------------------------------

    def check(self) -> None:
        lossless, held = self.checks[inv.LOSSLESS], self.checks[inv.HELD]
        for name, reader in self.readers.items():
            session = self.reader_session[name]
            info = self.info(session)
            expected = self._stream(session)
            end = int(info["end"]) if info else len(expected)
            if end != len(expected):
                self.behaves(f"{session} printed {len(expected)} bytes but its end is {end}")
            verdict = reader.verdict(expected, end)
            lossless.checked += 1
            held.checked += 1
            if not verdict.ok:
                came = reader.arrivals.when(verdict.position or 0)
                t = None if came is None else came - self.begun
                printed = self.timeline.when(self.sids[session], verdict.offset or 0)
                at = "" if printed is None else f" (printed at t={printed:.2f}s)"
                lossless.fail(f"{reader.describe()}: {verdict.problem}{at}", self.step_at(t))
            if verdict.skipped_after_start:
                seen = verdict.first_skip.seen if verdict.first_skip else None
                t = None if seen is None else seen - self.begun
                held.fail(
                    f"{reader.describe()}: {verdict.skipped_after_start} bytes skipped after it "
                    f"began ({'; '.join(verdict.notes[:2])})",
                    self.step_at(t),
                )
            if verdict.skipped_with_notice and verdict.ok:
                lossless.notes.append(
                    f"{name}: {verdict.skipped_with_notice} B skipped with a notice"
                )
            if isinstance(reader, FollowReader) and reader.returncode not in (0, None):
                self.behaves(f"{reader.describe()} exited {reader.returncode}: {reader.err!r}")
        keys_check, whole = self.checks[inv.KEYS], self.checks[inv.WHOLE]
        for name, keys in self.keys.items():
            verdict = check_keys(keys.recorded(), keys.pool)
            keys_check.checked += 1
            whole.checked += 1
            if not verdict.ok:
                keys_check.fail(f"{name}: {verdict.problem}", self.step_text(verdict.step))
            if not verdict.whole_ok:
                whole.fail(f"{name}: {verdict.whole_problem}", self.step_text(verdict.whole_step))
            keys_check.notes.extend(verdict.notes)
            keys_check.notes.append(f"{name}: {verdict.received} of {verdict.sent} B")
            for lane in keys.lanes.values():
                for paste in lane.unexplained_failures():
                    self.behaves(
                        f"{lane.name}: the write of step #{paste.step} failed with no upgrade "
                        f"under way: {paste.detail}"
                    )
        self.checks[inv.BEHAVES].checked += 1

    def check_memory(self) -> float:
        memory = self.memory
        bound = rss_bound_mib(self.schedule, self.subscriptions)
        check = self.checks[inv.MEMORY]
        check.checked += 1
        peak = memory.peak_kib / 1024
        over = next(((t, kib) for t, kib in memory.samples if kib / 1024 > bound), None)
        if over is not None:
            check.fail(
                f"RSS {over[1] / 1024:.0f} MiB at t={over[0]:.1f}s over the bound "
                f"{bound:.0f} MiB (peak {peak:.0f} MiB)",
                self.step_at(over[0]),
            )
        else:
            check.notes.append(f"peak {peak:.0f} MiB of {bound:.0f} MiB")
        return bound

    def cleanup(self) -> None:
        for c in self.clients.values():
            if not c.gone:
                status = c.terminal.detach(10)
                c.gone = True
                if status is None:
                    self.log(f"  ({c.name} did not detach at the end; ended)")
            c.terminal.close()
        for reader in self.readers.values():
            reader.kill()
        for keys in self.keys.values():
            for lane in keys.lanes.values():
                lane.finish(5)
