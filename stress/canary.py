"""Canaries: sessions that count out loud while the fuzzer runs, a watcher that checks every
byte of their output arrives with no gap, and a client that keeps timing round trips."""

import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from stress.wire import HELLO, Closed, Connection, control

COUNTER = (
    "import sys, time\n"
    "i = 0\n"
    "while True:\n"
    "    i += 1\n"
    "    sys.stdout.write(f'canary {i}\\n')\n"
    "    sys.stdout.flush()\n"
    "    time.sleep(0.02)\n"
)
LINE = re.compile(rb"canary (\d+)")


@dataclass
class CanarySession:
    name: str
    id: str
    pid: int
    sub: int
    conn: Connection
    received: bytearray = field(default_factory=bytearray)
    next_offset: int = 0
    problems: list[str] = field(default_factory=list)

    async def watch(self) -> None:
        try:
            while True:
                frame = await self.conn.next()
                if frame.message is None:
                    if frame.sub != self.sub:
                        self.problems.append(f"output for another sub {frame.sub}")
                    elif frame.offset != self.next_offset:
                        self.problems.append(
                            f"gap: expected offset {self.next_offset}, got {frame.offset}"
                        )
                    self.received += frame.data
                    self.next_offset = frame.offset + len(frame.data)
                elif frame.type == "event":
                    self.problems.append(f"unexpected event: {frame.message}")
        except Closed:
            self.problems.append("the watcher's connection was closed")

    def lines(self) -> tuple[int, list[str]]:
        """How many counter lines arrived, and what is wrong with them."""
        problems = []
        complete = bytes(self.received).split(b"\r\n")[:-1]
        expected = 1
        for line in complete:
            match = LINE.fullmatch(line)
            if match is None:
                problems.append(f"a line that is not the counter: {line[:80]!r}")
                break
            if int(match.group(1)) != expected:
                problems.append(f"counter jumped from {expected - 1} to {match.group(1).decode()}")
                break
            expected += 1
        return expected - 1, problems


async def start_canaries(path: str, count: int) -> list[CanarySession]:
    tag = secrets.token_hex(4)
    canaries = []
    for n in range(count):
        conn = await Connection.open(path)
        await conn.send(HELLO)
        await conn.hello()
        name = f"canary-{tag}-{n}"
        reply = await conn.request(
            1,
            "spawn",
            argv=[sys.executable, "-u", "-c", COUNTER],
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            name=name,
            subscribe=True,
        )
        if reply["type"] != "result":
            raise RuntimeError(f"cannot start a canary: {reply}")
        result = reply["result"]
        canaries.append(CanarySession(name, result["id"], result["pid"], result["sub"], conn))
    return canaries


@dataclass
class Prober:
    """Round trips on a connection of its own, and now and then on a fresh one."""

    path: str
    canaries: list[str]
    interval: float = 0.02
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")

    async def run(self) -> None:
        conn = await Connection.open(self.path)
        await conn.send(HELLO)
        await conn.hello()
        n = 0
        while True:
            n += 1
            if n % 10 == 0:
                await self._timed("connect+status", self._fresh_status())
            elif n % 3 == 0:
                canary = self.canaries[n % len(self.canaries)]
                await self._timed("read", self._read(conn, n, canary))
            elif n % 3 == 1:
                await self._timed("status", self._request(conn, n, "status"))
            else:
                canary = self.canaries[n % len(self.canaries)]
                await self._timed("info", self._request(conn, n, "info", session=canary))
            await trio.sleep(self.interval)

    async def _timed(self, what: str, job: Any) -> None:
        started = time.perf_counter()
        try:
            await job
        except (OSError, Closed, RuntimeError) as exc:
            self.errors.append(f"{what}: {exc}")
        took = time.perf_counter() - started
        self.latencies.append(took)
        if took > self.slowest[0]:
            self.slowest = (took, what)

    async def _request(self, conn: Connection, n: int, op: str, **args: Any) -> None:
        reply = await conn.request(n, op, **args)
        if reply["type"] != "result":
            raise RuntimeError(f"{op} failed: {reply}")

    async def _read(self, conn: Connection, n: int, canary: str) -> None:
        await conn.send(control({"id": n, "op": "subscribe", "session": canary, "follow": False}))
        sub = None
        while True:
            frame = await conn.next()
            message = frame.message
            if message is None:
                continue
            if message.get("id") == n:
                if message["type"] != "result":
                    raise RuntimeError(f"read failed: {message}")
                sub = message["result"]["sub"]
            elif message.get("event") == "end" and message.get("sub") == sub:
                return

    async def _fresh_status(self) -> None:
        conn = await Connection.open(self.path)
        try:
            await conn.send(HELLO)
            await conn.hello()
            await self._request(conn, 1, "status")
        finally:
            conn.close()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
