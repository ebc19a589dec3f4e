"""Focused cases, one per reproduction in issue 24 that the CLI can show, run by name
(`python -m integrity --case NAME`). Each starts its own daemon with the settings the
reproduction asks for and checks the invariants it breaks."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from integrity import invariants as inv
from integrity.daemon import Memory, MiB, PrivateDaemon
from integrity.invariants import Checks
from integrity.keys import StreamPool
from integrity.keys import check as check_keys
from integrity.lines import Stream, compare_stream, notices
from integrity.readers import ClientReader, FollowReader
from integrity.terminal import PtyClient

Log = Callable[[str], None]
SETTLE = 60.0


@dataclass
class Context:
    """What a case gets: the daemon settings of the run (PTYSUP_NATIVE), a log, a scale."""

    settings: dict[str, str]
    log: Log
    paste_mb: int = 50
    stuck_seconds: float = 20.0


@dataclass
class CaseResult:
    name: str
    defect: str
    checks: Checks
    duration_s: float = 0.0
    byte_path: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.checks.ok

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "defect": self.defect,
            "ok": self.ok,
            "duration_s": round(self.duration_s, 2),
            "byte_path": self.byte_path,
            "facts": self.facts,
            "checks": self.checks.as_json(),
        }


class Case:
    name = ""
    defect = ""
    invariants: ClassVar[list[str]] = []
    settings: ClassVar[dict[str, str]] = {}

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.checks = Checks(self.invariants)
        self.facts: dict[str, Any] = {}

    def run(self) -> CaseResult:
        begun = time.monotonic()
        daemon = PrivateDaemon({**self.ctx.settings, **self.settings})
        result = CaseResult(self.name, self.defect, self.checks)
        try:
            daemon.start()
            result.byte_path = daemon.byte_path()
            self.body(daemon)
        except Exception as exc:
            self.checks[inv.BEHAVES].fail(f"the case broke: {type(exc).__name__}: {exc}")
        finally:
            left = daemon.stop()
            if left:
                self.checks[inv.BEHAVES].fail(f"processes left behind: {left}")
        result.duration_s = time.monotonic() - begun
        result.facts = self.facts
        return result

    def body(self, daemon: PrivateDaemon) -> None:
        raise NotImplementedError

    def spawn(self, daemon: PrivateDaemon, *argv: str, size: str = "80x24") -> str:
        done = daemon.run("spawn", "--size", size, "--", *argv)
        if done.returncode != 0:
            raise RuntimeError(f"spawn failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode().strip()

    def ready(self, daemon: PrivateDaemon, sid: str) -> None:
        done = daemon.run("expect", sid, "READY", "--timeout", "30")
        if done.returncode != 0:
            raise RuntimeError(f"session {sid} never said READY")

    def upgrade(self, daemon: PrivateDaemon) -> None:
        done = daemon.run("upgrade", timeout=120)
        self.checks[inv.BEHAVES].checked += 1
        if done.returncode != 0:
            self.checks[inv.BEHAVES].fail(f"upgrade failed: {done.stderr!r}")

    def wait_file(self, path: str, size: int, timeout: float = SETTLE) -> int:
        """Wait until the file holds `size` bytes, or stops growing for 10 s."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        have = 0
        while time.monotonic() < deadline:
            have = os.path.getsize(path) if os.path.exists(path) else 0
            if have >= size:
                return have
            if have != last:
                last, since = have, time.monotonic()
            elif time.monotonic() - since > 10:
                break
            time.sleep(0.1)
        return have


class RunTail(Case):
    name = "run-tail"
    defect = "2: `ptysup run` loses the tail of the output with a slow consumer"
    invariants: ClassVar[list[str]] = [inv.LOSSLESS, inv.HELD, inv.BEHAVES]
    settings: ClassVar[dict[str, str]] = {
        "PTYSUP_RING_SIZE": "65536",
        "PTYSUP_SUBSCRIBER_BACKLOG": "65536",
    }
    LINES = 58_000

    def body(self, daemon: PrivateDaemon) -> None:
        # The issue's: 58,000 lines into a consumer that sleeps 2.5 s, then reads slowly;
        # then a child that exits as soon as it is held, the rest of its output in the PTY.
        for attempt in (1, 2):
            argv = daemon.program("lines", f"{self.LINES}@0")
            out, err, status = self._run(daemon, argv)
            expected = Stream(self.LINES)
            label = f"run #{attempt} ({self.LINES} lines, a slow consumer)"
            self._record(label, compare_stream(expected, out, notices(err), len(expected)))
            self._status(label, status, out)
        count = daemon.files / "held.count"
        out, err, status = self._run(daemon, daemon.program("held", str(count)))
        written = int(count.read_text()) if count.exists() else 0
        expected = Stream(written // 19 + 2)  # a line is at least 19 bytes
        label = f"run #3 (a child that exits when held, after {written} B)"
        self._record(label, compare_stream(expected, out, notices(err), written))
        self._status(label, status, out)

    def _run(self, daemon: PrivateDaemon, argv: list[str]) -> tuple[bytes, bytes, int]:
        proc = daemon.popen("run", "--", *argv)
        assert proc.stdout is not None and proc.stderr is not None
        err = bytearray()
        reader = threading.Thread(target=lambda: err.extend(proc.stderr.read()), daemon=True)
        reader.start()
        time.sleep(2.5)  # the consumer sleeps, then reads 4 KiB every 5 ms
        out = bytearray()
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + SETTLE * 2
        while time.monotonic() < deadline and (data := os.read(fd, 4096)):
            out += data
            time.sleep(0.005)
        try:
            status = proc.wait(SETTLE)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
            self.checks[inv.BEHAVES].fail("`ptysup run` did not end")
        reader.join(10)
        proc.stdout.close()
        proc.stderr.close()
        return bytes(out), bytes(err), status

    def _record(self, label: str, verdict: Any) -> None:
        self.checks[inv.LOSSLESS].checked += 1
        self.checks[inv.HELD].checked += 1
        if not verdict.ok:
            self.checks[inv.LOSSLESS].fail(f"{label}: {verdict.problem}")
        if verdict.skipped_after_start:
            self.checks[inv.HELD].fail(
                f"{label}: skipped {verdict.skipped_after_start} B with a notice"
            )

    def _status(self, label: str, status: int, out: bytes) -> None:
        self.checks[inv.BEHAVES].checked += 1
        self.facts[label] = {"status": status, "bytes": len(out), "lines": out.count(b"\n")}
        if status != 0:
            self.checks[inv.BEHAVES].fail(f"{label}: exited {status}")


class FollowUpgrade(Case):
    name = "follow-upgrade"
    defect = "3: `read --follow` silently loses output across `ptysup upgrade` mid-flood"
    invariants: ClassVar[list[str]] = [inv.LOSSLESS, inv.HELD, inv.BEHAVES]
    LINES = 300_000

    def body(self, daemon: PrivateDaemon) -> None:
        argv = daemon.program("lines", f"{self.LINES}@0", "--delay", "1.5", "--hold", "1")
        sid = self.spawn(daemon, *argv)
        cli = FollowReader(daemon, "follow", sid, 0.05)
        client = ClientReader(daemon, "client", sid, 0.05).start()
        time.sleep(3)
        self.upgrade(daemon)
        expected = Stream(self.LINES)
        for reader in (cli, client):
            if not reader.finish(180):
                self.checks[inv.BEHAVES].fail(f"{reader.describe()} did not reach the end")
                reader.kill()
            verdict = reader.verdict(expected, len(expected))
            self.checks[inv.LOSSLESS].checked += 1
            self.checks[inv.HELD].checked += 1
            self.facts[reader.name] = {
                "received": verdict.received,
                "skipped_with_notice": verdict.skipped_with_notice,
            }
            if not verdict.ok:
                self.checks[inv.LOSSLESS].fail(f"{reader.describe()}: {verdict.problem}")
            if verdict.skipped_after_start:
                self.checks[inv.HELD].fail(
                    f"{reader.describe()}: {verdict.skipped_after_start} B skipped with a "
                    f"notice across the upgrade"
                )
        if cli.returncode not in (0, None):
            self.checks[inv.BEHAVES].fail(f"read --follow exited {cli.returncode}: {cli.err!r}")


class _Keys(Case):
    """A recording child, an attached terminal, and keys pasted into it."""

    invariants: ClassVar[list[str]] = [inv.KEYS, inv.WHOLE, inv.BEHAVES]

    def recorder(
        self, daemon: PrivateDaemon, name: str, *options: str, relay: bool = False
    ) -> tuple[str, str, PtyClient]:
        """A recording child (`options` for it), and a terminal attached to it."""
        path = str(daemon.files / f"{name}.keys")
        sid = self.spawn(daemon, *daemon.program("record", path, *options))
        self.ready(daemon, sid)
        return sid, path, self.attach(daemon, name, sid, *(["--relay"] if relay else []))

    def attach(self, daemon: PrivateDaemon, name: str, sid: str, *extra: str) -> PtyClient:
        with daemon.client() as c:
            before = int(c.info(sid)["attached"])
        terminal = PtyClient(
            name, daemon.command("attach", sid, *extra), daemon.env, str(daemon.files), 80, 24
        )
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            with daemon.client() as c:
                if c.info(sid)["attached"] > before:
                    return terminal
            time.sleep(0.05)
        terminal.close()
        raise RuntimeError(f"{name} did not attach")

    def verify(self, label: str, path: str, pool: StreamPool) -> None:
        got = self.wait_file(path, pool.total)
        with open(path, "rb") as f:
            verdict = check_keys(f.read(), pool)
        self.facts[label] = {"sent": pool.total, "received": got}
        self.checks[inv.KEYS].checked += 1
        self.checks[inv.WHOLE].checked += 1
        if not verdict.ok:
            self.checks[inv.KEYS].fail(f"{label}: {verdict.problem}")
        if not verdict.whole_ok:
            self.checks[inv.WHOLE].fail(f"{label}: {verdict.whole_problem}")


class PasteOrder(_Keys):
    name = "paste-order"
    defect = "4: pasted keys are reordered (64 KiB bursts into a child reading every 10 ms)"
    RECORDS = 100_000
    VARIANTS: ClassVar[list[tuple[float, bool]]] = [
        (0.1, False),
        (0.3, False),
        (0.3, False),
        (0.3, True),
    ]
    """(seconds between bursts, relayed): the issue's 100 ms keeps the daemon's queue
    growing; at 300 ms the child keeps up between bursts, and the plane hands the master
    back and forth most often."""

    def body(self, daemon: PrivateDaemon) -> None:
        for attempt, (pause, relay) in enumerate(self.VARIANTS, 1):
            name = f"paste{attempt}"
            sid, path, terminal = self.recorder(
                daemon, name, "--interval", "0.01", "--chunk", "4096", relay=relay
            )
            pool = StreamPool()
            stream = pool.new(name)
            label = f"{self.RECORDS} records in 64 KiB bursts every {pause * 1000:.0f} ms"
            data, _ = stream.take(self.RECORDS * 11, attempt, label, False)
            for at in range(0, len(data), 65536):
                terminal.type(data[at : at + 65536])
                while terminal.keys_queued():
                    time.sleep(0.005)
                time.sleep(pause)
            self.verify(f"{label}{' (relayed)' if relay else ''}", path, pool)
            terminal.close()
            daemon.run("rm", sid)


class InputUpgrade(_Keys):
    name = "input-upgrade"
    defect = "6: input queued in the daemon is lost across an upgrade"
    SIZE = 100_000

    def body(self, daemon: PrivateDaemon) -> None:
        for relay in (False, True):
            name = "relayed" if relay else "handed"
            sid, path, terminal = self.recorder(daemon, name, "--delay", "4", relay=relay)
            pool = StreamPool()
            data, _ = pool.new(name).take(self.SIZE, 1, "100,000 bytes pasted", False)
            terminal.type(data)
            time.sleep(0.5)
            self.upgrade(daemon)
            self.verify(f"{name} terminal", path, pool)
            terminal.close()
            daemon.run("rm", sid)


class WriteWhole(_Keys):
    name = "write-whole"
    defect = "5: keys typed while a `ptysup write` waits for room land inside its payload"
    SIZE = 200_000

    def body(self, daemon: PrivateDaemon) -> None:
        sid, path, terminal = self.recorder(daemon, "whole", "--delay", "2")
        pool = StreamPool()
        pasted, _ = pool.new("write").take(self.SIZE, 1, "`ptysup write` of 200,000 B", True)
        typed = pool.new("typed")
        paste = daemon.files / "paste"
        paste.write_bytes(pasted)
        with open(paste, "rb") as stdin:
            proc = daemon.popen("write", sid, "-", stdin=stdin)
            time.sleep(0.3)
            for _ in range(40):
                data, _ = typed.take(5, 2, "keys typed meanwhile", False)
                terminal.type(data)
                time.sleep(0.02)
            _, err = proc.communicate(timeout=SETTLE)
        self.checks[inv.BEHAVES].checked += 1
        if proc.returncode != 0:
            self.checks[inv.BEHAVES].fail(f"ptysup write exited {proc.returncode}: {err!r}")
        self.verify("write and keys", path, pool)
        terminal.close()


class PasteMemory(_Keys):
    name = "paste-rss"
    defect = "7: a paste into an attached terminal grows the daemon without bound"
    invariants: ClassVar[list[str]] = [inv.MEMORY, inv.BEHAVES]
    GROWTH_MIB = 32

    def body(self, daemon: PrivateDaemon) -> None:
        sid = self.spawn(daemon, "sleep", "3600")
        terminal = self.attach(daemon, "paste", sid)
        memory = Memory(daemon.pid, 0.1).start()
        time.sleep(1)
        base = memory.last_kib
        size = self.ctx.paste_mb * MiB
        piece = (b"x" * 63 + b"\n") * (MiB // 64)
        for _ in range(self.ctx.paste_mb):
            terminal.type(piece)
        deadline = time.monotonic() + max(15.0, self.ctx.paste_mb * 0.3)
        while time.monotonic() < deadline and terminal.typed < size:
            time.sleep(0.2)
        time.sleep(1)
        memory.stop()
        growth = (memory.peak_kib - base) / 1024
        self.facts.update(
            {
                "pasted_mb": self.ctx.paste_mb,
                "accepted_bytes": terminal.typed,
                "rss_start_mib": round(base / 1024, 1),
                "rss_peak_mib": round(memory.peak_kib / 1024, 1),
                "bound_growth_mib": self.GROWTH_MIB,
            }
        )
        check = self.checks[inv.MEMORY]
        check.checked += 1
        if growth > self.GROWTH_MIB:
            check.fail(
                f"RSS grew {growth:.0f} MiB ({base / 1024:.0f} -> {memory.peak_kib / 1024:.0f}) "
                f"while {terminal.typed / MiB:.1f} of {self.ctx.paste_mb} MiB pasted were "
                f"accepted; bound {self.GROWTH_MIB} MiB"
            )
        else:
            check.notes.append(
                f"grew {growth:.1f} MiB; {terminal.typed / MiB:.1f} MiB accepted (back-pressure)"
            )
        terminal.close()
        daemon.run("rm", sid)


class StuckObserver(_Keys):
    name = "stuck-observer"
    defect = "8: a stuck relayed observer of another size grows the daemon linearly"
    invariants: ClassVar[list[str]] = [inv.MEMORY, inv.BEHAVES]
    GROWTH_MIB = 16

    def body(self, daemon: PrivateDaemon) -> None:
        sid = self.spawn(daemon, *daemon.program("colour"), size="300x100")
        terminal = PtyClient(
            "observer",
            daemon.command("attach", sid, "--read-only", "--relay"),
            daemon.env,
            str(daemon.files),
            299,
            100,
        )
        memory = Memory(daemon.pid, 0.25).start()
        time.sleep(3)
        base = memory.last_kib
        terminal.signal(signal.SIGSTOP)
        seconds = self.ctx.stuck_seconds
        time.sleep(seconds)
        memory.stop()
        end = memory.last_kib
        terminal.signal(signal.SIGCONT)
        growth = (memory.peak_kib - base) / 1024
        self.facts.update(
            {
                "stopped_s": seconds,
                "rss_start_mib": round(base / 1024, 1),
                "rss_end_mib": round(end / 1024, 1),
                "rss_peak_mib": round(memory.peak_kib / 1024, 1),
                "bound_growth_mib": self.GROWTH_MIB,
            }
        )
        check = self.checks[inv.MEMORY]
        check.checked += 1
        if growth > self.GROWTH_MIB:
            check.fail(
                f"RSS grew {growth:.0f} MiB ({base / 1024:.0f} -> {memory.peak_kib / 1024:.0f}) "
                f"in {seconds:.0f} s with the observer stopped; bound {self.GROWTH_MIB} MiB"
            )
        else:
            check.notes.append(f"grew {growth:.1f} MiB in {seconds:.0f} s")
        terminal.close()
        daemon.run("rm", sid)


class RingKeeps(Case):
    name = "ring-keep"
    defect = "1: a ring filled by the plane keeps less than its capacity"
    invariants: ClassVar[list[str]] = [inv.RING, inv.BEHAVES]
    settings: ClassVar[dict[str, str]] = {"PTYSUP_RING_SIZE": "65536"}

    def body(self, daemon: PrivateDaemon) -> None:
        capacity = 65536
        for lines, follow in ((5_400, False), (5_400, True), (40_000, True)):
            sid = self.spawn(daemon, *daemon.program("lines", f"{lines}@0", "--delay", "0.3"))
            reader = FollowReader(daemon, "follow", sid, 0.01) if follow else None
            with daemon.client() as c:
                c.wait(sid, timeout=SETTLE)
            if reader is not None:
                reader.finish(SETTLE)
                reader.kill()
            whole = json.loads(daemon.run("read", sid, "--json", "--since", "0").stdout)
            start, end = int(whole["start"]), int(whole["end"])
            data = base64.b64decode(whole["data_b64"])
            label = f"{end} B{' with a follower' if follow else ''}"
            self.facts[label] = {"start": start, "end": end, "kept": end - start}
            check = self.checks[inv.RING]
            check.checked += 1
            if end - start != min(end, capacity):
                check.fail(f"after {label}: kept {end - start} of {min(end, capacity)}")
            elif data != Stream(lines).data[start:end]:
                check.fail(f"after {label}: the ring's bytes are not what was printed")
            since = max(0, end - capacity + 1)
            part = json.loads(daemon.run("read", sid, "--json", "--since", str(since)).stdout)
            if part["truncated"]:
                check.fail(f"after {label}: `read --since {since}` says truncated")
            daemon.run("rm", sid)


CASES: dict[str, type[Case]] = {
    c.name: c
    for c in (
        RingKeeps,
        RunTail,
        FollowUpgrade,
        PasteOrder,
        WriteWhole,
        InputUpgrade,
        PasteMemory,
        StuckObserver,
    )
}


def run_case(name: str, ctx: Context) -> CaseResult:
    return CASES[name](ctx).run()
