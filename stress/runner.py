"""Runs the cases against a socket, many connections at once, and checks every outcome."""

import errno
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from stress.cases import Batch, Burst, FrameCase, Generator, Group, StreamCase, Valid, greeting
from stress.wire import HELLO, Closed, Connection, DaemonBroke, Frame

DEADLINE = 20.0
"""Seconds a case may take before it counts as a hang."""
KEEP_FAILURES = 100
GIVE_UP = 1000
"""Failures after which the run stops: the daemon is broken, more cases add nothing."""
SAMPLE_BYTES = 512


@dataclass
class KindTally:
    cases: int = 0
    errors: int = 0
    closes: int = 0


@dataclass
class Failure:
    kind: str
    reason: str
    sample: str
    """The first bytes that were sent, in hex: enough to replay the case."""


@dataclass
class Tally:
    kinds: dict[str, KindTally] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    failure_count: int = 0
    signatures: dict[str, int] = field(default_factory=dict)
    valid_answered: int = 0
    resets: int = 0
    connections: int = 0

    def outcome(self, kind: str, errored: bool) -> None:
        entry = self.kinds.setdefault(kind, KindTally())
        entry.cases += 1
        if errored:
            entry.errors += 1
        else:
            entry.closes += 1

    def fail(self, kind: str, reason: str, sent: bytes, signature: str | None = None) -> None:
        """Count a failed case; `signature` (default: the reason) groups failures alike."""
        self.kinds.setdefault(kind, KindTally()).cases += 1
        self.failure_count += 1
        key = f"{kind}: {signature or reason}"
        self.signatures[key] = self.signatures.get(key, 0) + 1
        if len(self.failures) < KEEP_FAILURES:
            self.failures.append(Failure(kind, reason, sent[:SAMPLE_BYTES].hex()))

    @property
    def cases(self) -> int:
        return sum(k.cases for k in self.kinds.values())


def _signature(message: dict[str, Any]) -> str:
    """What a reply says, without its id."""
    return f"{message.get('type')} {message.get('code', '')}: {str(message.get('message'))[:120]}"


def _describe(message: dict[str, Any] | None) -> str:
    text = repr(message)
    return text if len(text) < 300 else text[:300] + "..."


async def _read_to_end(conn: Connection, frames: list[Frame]) -> bool:
    """Collect frames until the daemon closes; False if it was a reset."""
    try:
        while True:
            frames.append(await conn.next())
    except Closed as closed:
        return not closed.reset


async def _open(path: str, rcvbuf: int | None = None) -> Connection:
    for attempt in range(50):
        try:
            return await Connection.open(path, rcvbuf)
        except BlockingIOError:
            # The listen backlog is full: a burst outran accept(). Try again shortly.
            await trio.sleep(0.01 * (attempt + 1))
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                raise
            await trio.sleep(0.01 * (attempt + 1))
    return await Connection.open(path, rcvbuf)


# -- batches of frame cases ----------------------------------------------------


async def run_batch(path: str, batch: Batch, tally: Tally) -> None:
    sent = b"".join(item.data for item in batch.items)
    first_kind = next((i.kind for i in batch.items if isinstance(i, FrameCase)), "batch")
    try:
        conn = await _open(path)
    except OSError as exc:
        for item in batch.items:
            if isinstance(item, FrameCase):
                tally.fail(item.kind, f"cannot connect: {exc}", item.data)
        return
    tally.connections += 1
    by_id: dict[Any, FrameCase | Valid] = {}
    nulls: deque[FrameCase] = deque()
    for item in batch.items:
        if isinstance(item, FrameCase) and item.request_id is None:
            nulls.append(item)
        else:
            by_id[_key(item.request_id)] = item
    try:
        with trio.move_on_after(DEADLINE):
            await conn.send(HELLO + sent)
            await conn.hello()
            while by_id or nulls:
                reply = await conn.next()
                message = reply.message
                if message is None or message["type"] not in ("error", "result"):
                    continue
                _check_reply(message, by_id, nulls, tally)
            if batch.ending == "eof":
                conn.shutdown()
                frames: list[Frame] = []
                if not await _read_to_end(conn, frames):
                    tally.resets += 1
                for extra in frames:
                    if extra.message is not None and extra.type in ("error", "result"):
                        tally.fail(
                            first_kind,
                            f"a reply nobody asked for: {_describe(extra.message)}",
                            sent,
                        )
    except Closed:
        reason = "the daemon closed the connection before answering"
        _fail_rest(by_id, nulls, tally, reason)
    except DaemonBroke as exc:
        _fail_rest(by_id, nulls, tally, str(exc))
    except OSError as exc:
        _fail_rest(by_id, nulls, tally, f"socket error: {exc}")
    finally:
        conn.close()
    _fail_rest(by_id, nulls, tally, f"no reply within {DEADLINE:.0f} s")


def _key(request_id: Any) -> Any:
    return ("s", request_id) if isinstance(request_id, str) else ("i", request_id)


def _check_reply(
    message: dict[str, Any],
    by_id: dict[Any, FrameCase | Valid],
    nulls: deque[FrameCase],
    tally: Tally,
) -> None:
    request_id = message.get("id")
    if request_id is None:
        if not nulls:
            tally.fail("batch", f"an error nobody caused: {_describe(message)}", b"")
            return
        case = nulls.popleft()
        _check_error(case, message, tally)
        return
    item = by_id.pop(_key(request_id), None)
    if item is None:
        tally.fail("batch", f"a reply to an id never sent: {_describe(message)}", b"")
    elif isinstance(item, Valid):
        if message["type"] == "result":
            tally.valid_answered += 1
        else:
            tally.fail(
                f"valid_{item.op}",
                f"a valid request failed: {_describe(message)}",
                item.data,
                f"a valid request failed: {_signature(message)}",
            )
    else:
        _check_error(item, message, tally)


def _check_error(case: FrameCase, message: dict[str, Any], tally: Tally) -> None:
    if message["type"] != "error":
        tally.fail(case.kind, f"accepted: {_describe(message)}", case.data, "accepted")
    elif message.get("code") not in case.codes:
        expected = "/".join(sorted(case.codes))
        tally.fail(
            case.kind,
            f"expected {expected}, got {_describe(message)}",
            case.data,
            f"expected {expected}, got {_signature(message)}",
        )
    elif case.sub is not None and message.get("sub") != case.sub:
        tally.fail(case.kind, f"the error names another sub: {_describe(message)}", case.data)
    else:
        tally.outcome(case.kind, errored=True)


def _fail_rest(
    by_id: dict[Any, FrameCase | Valid], nulls: deque[FrameCase], tally: Tally, reason: str
) -> None:
    for item in [*by_id.values(), *nulls]:
        kind = item.kind if isinstance(item, FrameCase) else f"valid_{item.op}"
        tally.fail(kind, reason, item.data)
    by_id.clear()
    nulls.clear()


# -- connections of their own --------------------------------------------------


async def run_stream(
    path: str, case: StreamCase, tally: Tally, rng_sleep: Callable[[], float]
) -> None:
    sent = greeting(case) + b"".join(case.chunks)
    try:
        conn = await _open(path, rcvbuf=4096 if case.how == "stall" else None)
    except OSError as exc:
        tally.fail(case.kind, f"cannot connect: {exc}", sent)
        return
    tally.connections += 1
    try:
        if case.how == "abandon":
            await conn.send(sent)
            tally.outcome(case.kind, errored=False)
            return
        if case.how == "stall":
            await conn.send(sent)
            await trio.sleep(case.hold)
            tally.outcome(case.kind, errored=False)
            return
        frames: list[Frame] = []
        clean = True
        with trio.move_on_after(DEADLINE) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_send_case, conn, case, sent, rng_sleep)
                if case.how == "flood":
                    while not any(f.is_error() for f in frames):
                        frames.append(await conn.next())
                    nursery.cancel_scope.cancel()
                else:
                    clean = await _read_to_end(conn, frames)
        if scope.cancelled_caught:
            tally.fail(case.kind, f"not over within {DEADLINE:.0f} s", sent)
            return
        if not clean:
            tally.resets += 1
        _judge_stream(case, frames, tally, sent)
    except Closed:
        tally.fail(case.kind, "the daemon closed the connection before answering", sent)
    except DaemonBroke as exc:
        tally.fail(case.kind, str(exc), sent)
    except OSError as exc:
        tally.fail(case.kind, f"socket error: {exc}", sent)
    finally:
        conn.close()


async def _send_case(
    conn: Connection, case: StreamCase, sent: bytes, rng_sleep: Callable[[], float]
) -> None:
    if case.how == "drip":
        i = 0
        while i < len(sent):
            step = 1 + int(rng_sleep() * 3000)
            if not await conn.send(sent[i : i + step]):
                return
            i += step
            await trio.sleep(rng_sleep())
    elif not await conn.send(sent):
        return
    if case.how in ("eof", "half_open", "drip"):
        conn.shutdown()


def _judge_stream(case: StreamCase, frames: list[Frame], tally: Tally, sent: bytes) -> None:
    if not frames or frames[0].type != "hello":
        tally.fail(case.kind, "no hello first", sent)
        return
    errors = [f.message for f in frames if f.is_error() and f.message is not None]
    results = [f.message for f in frames if f.type == "result"]
    if any(e.get("code") == "internal" for e in errors):
        internal = next(e for e in errors if e.get("code") == "internal")
        tally.fail(case.kind, f"internal error: {_describe(errors)}", sent, _signature(internal))
    elif results and not case.results_allowed:
        tally.fail(case.kind, f"a hostile request succeeded: {_describe(results[0])}", sent)
    elif case.expect == "error" and not errors:
        tally.fail(case.kind, "closed without the error it owed", sent)
    elif case.expect == "error" and errors[-1].get("code") not in case.codes:
        tally.fail(
            case.kind, f"expected {'/'.join(sorted(case.codes))}: {_describe(errors[-1])}", sent
        )
    elif case.expect == "close" and errors:
        tally.fail(case.kind, f"an error where only a close was due: {_describe(errors[0])}", sent)
    else:
        tally.outcome(case.kind, errored=bool(errors))


async def run_burst(path: str, burst: Burst, tally: Tally) -> None:
    async with trio.open_nursery() as nursery:
        for case in burst.cases:
            nursery.start_soon(run_batch, path, Batch([_as_burst(case)], "eof"), tally)


def _as_burst(case: FrameCase) -> FrameCase:
    return FrameCase("burst", case.data, case.request_id, case.codes, case.sub)


# -- the whole run -------------------------------------------------------------


MAX_STALLED = 16
"""Stalled readers held at once; they wait in the background, not in a lane."""


async def run_group(
    path: str,
    group: Group,
    tally: Tally,
    generator: Generator,
    background: trio.Nursery,
    stalls: trio.Semaphore,
) -> None:
    if isinstance(group, Batch):
        await run_batch(path, group, tally)
    elif isinstance(group, Burst):
        await run_burst(path, group, tally)
    elif group.how == "stall":
        await stalls.acquire()
        background.start_soon(_stall, path, group, tally, stalls)
    else:
        await run_stream(path, group, tally, lambda: generator.rng.uniform(0, 0.002))


async def _stall(path: str, case: StreamCase, tally: Tally, stalls: trio.Semaphore) -> None:
    try:
        await run_stream(path, case, tally, lambda: 0.0)
    finally:
        stalls.release()


async def fuzz(
    path: str,
    generator: Generator,
    total: int,
    seconds: float,
    lanes: int,
    tally: Tally,
    abort: trio.Event,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Run `total` cases over at least `seconds`, `lanes` groups at a time."""
    issued = 0
    start = trio.current_time()

    async def lane() -> None:
        nonlocal issued
        while issued < total and not abort.is_set() and tally.failure_count < GIVE_UP:
            first = issued
            group = generator.group(total - issued)
            issued += group.count
            if seconds > 0:
                await trio.sleep_until(start + seconds * first / total)
            await run_group(path, group, tally, generator, background, stalls)
            if on_progress is not None:
                on_progress(tally.cases)

    stalls = trio.Semaphore(MAX_STALLED)
    async with trio.open_nursery() as background, trio.open_nursery() as nursery:
        for _ in range(lanes):
            nursery.start_soon(lane)
