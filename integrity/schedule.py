"""The random schedule of one run, made from its seed alone (so a seed replays it): the
sessions and their children, the lossless readers, and the steps at their times."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from integrity.lines import Phase, plan_spec

KiB = 1024
SIZES = [(80, 24), (120, 40), (200, 60), (300, 100), (100, 30), (132, 43)]
PASTE_SIZES = [1, 7, 100, 1000, 4095, 4096, 4097, 10_000, 65_535, 65_536, 100_000, 300_000]


@dataclass
class Printer:
    """A session whose child prints numbered lines by `plan`."""

    name: str
    plan: list[Phase]
    cols: int
    rows: int
    delay: float

    @property
    def total(self) -> int:
        return sum(p.count for p in self.plan)


@dataclass
class Recorder:
    """A session whose child records its keys, reading every `interval` s."""

    name: str
    interval: float
    chunk: int
    cols: int
    rows: int


@dataclass
class Reader:
    """A lossless reader of a printer: `cli` (`read --follow`) or `client` (Python)."""

    name: str
    session: str
    kind: str
    delay: float


@dataclass
class Step:
    index: int
    at: float
    action: str
    args: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.args.items())
        return f"#{self.index} t={self.at:.2f}s {self.action} {args}".rstrip()


@dataclass
class Schedule:
    seed: int
    seconds: float
    ring_size: int
    backlog: int
    printers: list[Printer]
    recorders: list[Recorder]
    readers: list[Reader]
    steps: list[Step]

    def text(self) -> str:
        lines = [
            f"seed {self.seed}, {self.seconds:g} s, ring {self.ring_size} B, "
            f"subscriber backlog {self.backlog} B"
        ]
        for p in self.printers:
            lines.append(
                f"  printer {p.name} {p.cols}x{p.rows}: {p.total} lines, plan {plan_spec(p.plan)}"
            )
        for r in self.recorders:
            lines.append(
                f"  recorder {r.name} {r.cols}x{r.rows}: reads {r.chunk} B every "
                f"{r.interval * 1000:.0f} ms"
            )
        for rd in self.readers:
            lines.append(f"  reader {rd.name} of {rd.session}: {rd.kind}, delay {rd.delay}")
        lines.extend(f"  {step.text()}" for step in self.steps)
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for p, printer in zip(data["printers"], self.printers, strict=True):
            p["plan"] = plan_spec(printer.plan)
        return data


@dataclass
class _Client:
    name: str
    session: str
    interactive: bool
    relay: bool


class _Model:
    """Who is attached where, as the steps leave it, to make only steps that apply."""

    def __init__(self) -> None:
        self.clients: dict[str, _Client] = {}
        self.order: list[str] = []
        self.count = 0

    def on(self, session: str) -> list[_Client]:
        return [self.clients[n] for n in self.order if self.clients[n].session == session]

    def controller(self, session: str) -> _Client | None:
        interactive = [c for c in self.on(session) if c.interactive]
        return interactive[-1] if interactive else None

    def add(self, session: str, interactive: bool, relay: bool) -> _Client:
        self.count += 1
        client = _Client(f"t{self.count}", session, interactive, relay)
        self.clients[client.name] = client
        self.order.append(client.name)
        return client

    def remove(self, name: str) -> None:
        del self.clients[name]
        self.order.remove(name)


def _plan(rng: random.Random, seconds: float, flood_scale: float) -> list[Phase]:
    phases: list[Phase] = []
    paced = 0.0
    budget = seconds * 0.85
    floods = max(1, int(seconds / 8)) + rng.randint(0, 2)
    while paced < budget:
        rate = rng.choice([20, 200, 2000, 8000])
        duration = rng.uniform(0.3, 2.0)
        phases.append(Phase(max(1, int(rate * duration)), rate))
        paced += duration
        if floods and rng.random() < 0.5:
            floods -= 1
            phases.append(Phase(int(rng.choice([3_000, 20_000, 60_000]) * flood_scale), 0))
    for _ in range(floods):
        phases.insert(rng.randrange(len(phases) + 1), Phase(int(20_000 * flood_scale), 0))
    return phases


def make(seed: int, seconds: float, *, upgrades: bool = True) -> Schedule:
    rng = random.Random(seed)
    flood_scale = 1.0 if seconds <= 60 else 3.0
    ring_size = rng.choice([16 * KiB, 64 * KiB, 256 * KiB, 1024 * KiB])
    backlog = rng.choice([64 * KiB, 256 * KiB, 1024 * KiB])
    printers = [
        Printer(f"p{i + 1}", _plan(rng, seconds, flood_scale), *rng.choice(SIZES), 0.3)
        for i in range(2 if seconds < 60 else 3)
    ]
    # One recorder reads 4 KiB every 10 ms (a paste in bursts fills its terminal and drains
    # again, over and over); the other at a pace of the seed's choosing, often slow enough
    # that pasted keys wait in the daemon.
    recorders = [
        Recorder("k1", 0.01, 4096, *rng.choice(SIZES)),
        Recorder(
            "k2",
            rng.choice([0.0, 0.002, 0.05, 0.05]),
            rng.choice([64, 4096, 4096, 65536]),
            *rng.choice(SIZES),
        ),
    ]
    readers: list[Reader] = []
    for p in printers:
        for _ in range(rng.randint(1, 2)):
            readers.append(
                Reader(f"r{len(readers) + 1}", p.name, "cli", rng.choice([0, 0.002, 0.02, 0.05]))
            )
    readers.append(
        Reader(f"r{len(readers) + 1}", rng.choice(printers).name, "client", rng.choice([0, 0.01]))
    )
    steps = _steps(rng, seconds, printers, recorders, readers, upgrades=upgrades)
    return Schedule(seed, seconds, ring_size, backlog, printers, recorders, readers, steps)


def _budget(recorder: Recorder, seconds: float) -> int:
    """How many bytes of keys the recorder can take in the run: a quarter of what it reads."""
    per_read = min(recorder.chunk, 4096)
    rate = per_read / max(recorder.interval, 0.0005)
    return int(min(rate, 4_000_000) * seconds * 0.25)


def _steps(
    rng: random.Random,
    seconds: float,
    printers: list[Printer],
    recorders: list[Recorder],
    readers: list[Reader],
    *,
    upgrades: bool = True,
) -> list[Step]:
    model = _Model()
    count = int(seconds * 1.6)
    times = sorted(rng.uniform(0.05 * seconds, 0.8 * seconds) for _ in range(count))
    count_upgrades = max(1, int(seconds / 20))
    upgrade_at = sorted(rng.uniform(0.25 * seconds, 0.75 * seconds) for _ in range(count_upgrades))
    if not upgrades:
        upgrade_at = []
    budgets = {r.name: _budget(r, seconds) for r in recorders}
    sessions = [p.name for p in printers] + [r.name for r in recorders]
    steps: list[Step] = []
    late = 0

    def add(at: float, action: str, **args: Any) -> None:
        steps.append(Step(len(steps) + 1, at, action, args))

    for r in recorders:  # someone types into every recorder from early on
        client = model.add(r.name, True, rng.random() < 0.4)
        cols, rows = rng.choice(SIZES)
        add(
            0.03 * seconds,
            "attach",
            client=client.name,
            session=r.name,
            read_only=False,
            relay=client.relay,
            cols=cols,
            rows=rows,
        )

    def upgrade(when: float) -> None:
        for r in recorders:  # one interactive client at most, so control is plain after
            interactive = [c for c in model.on(r.name) if c.interactive]
            for extra in interactive[1:]:
                add(when, "detach", client=extra.name)
                model.remove(extra.name)
            controller = model.controller(r.name)
            if controller is not None and rng.random() < 0.7:  # keys in flight meanwhile
                size = rng.choice([20_000, 65_536, 100_000])
                budgets[r.name] -= size
                add(when, "paste_attach", client=controller.name, session=r.name, size=size)
        add(when, "upgrade")

    for at in times:
        while upgrade_at and upgrade_at[0] <= at:
            upgrade(upgrade_at.pop(0))
        roll = rng.random()
        attached = list(model.clients.values())
        if roll < 0.18 or not attached:
            session = rng.choice(sessions)
            recorder = session in budgets
            interactive = rng.random() < 0.5
            if (
                recorder
                and interactive
                and len([c for c in model.on(session) if c.interactive]) >= 2
            ):
                interactive = False
            relay = rng.random() < 0.4
            cols, rows = rng.choice(SIZES)
            client = model.add(session, interactive, relay)
            add(
                at,
                "attach",
                client=client.name,
                session=session,
                read_only=not interactive,
                relay=relay,
                cols=cols,
                rows=rows,
            )
        elif roll < 0.26:
            victim = rng.choice(attached)
            model.remove(victim.name)
            add(at, "detach", client=victim.name)
        elif roll < 0.52 and recorders:
            r = rng.choice(recorders)
            size = rng.choice(PASTE_SIZES)
            if size > budgets[r.name] // 4:
                size = rng.choice(PASTE_SIZES[:6])
            budgets[r.name] -= size
            controller = model.controller(r.name)
            how = rng.random()
            if controller is not None and how < 0.2:
                add(at, "paste_attach", client=controller.name, session=r.name, size=size)
            elif controller is not None and how < 0.35 and budgets[r.name] > 600_000:
                count = rng.randint(3, 8)
                budgets[r.name] -= count * 65536
                add(
                    at,
                    "bursts",
                    client=controller.name,
                    session=r.name,
                    count=count,
                    pause=rng.choice([0.1, 0.3]),
                )
            elif controller is not None and how < 0.5:
                add(at, "type", client=controller.name, session=r.name, size=min(size, 200))
            elif how < 0.8:
                add(at, "paste_write", session=r.name, size=size, lane=rng.randint(1, 2))
            else:
                add(at, "client_write", session=r.name, size=size)
        elif roll < 0.58:
            cols, rows = rng.choice(SIZES)
            add(at, "resize_session", session=rng.choice(sessions), cols=cols, rows=rows)
        elif roll < 0.64 and attached:
            cols, rows = rng.choice(SIZES)
            add(at, "resize_client", client=rng.choice(attached).name, cols=cols, rows=rows)
        elif roll < 0.74:
            reader = rng.choice(readers)
            action = "stop_reader" if rng.random() < 0.5 else "stall_reader"
            add(at, action, reader=reader.name, seconds=round(rng.uniform(0.3, 2.5), 2))
        elif roll < 0.82:
            observers = [
                c
                for c in attached
                if not c.interactive or c.session not in budgets  # never a recorder's typist
            ]
            if observers:
                victim = rng.choice(observers)
                add(at, "stop_client", client=victim.name, seconds=round(rng.uniform(0.5, 3), 2))
        elif roll < 0.88:
            late += 1
            p = rng.choice(printers)
            add(
                at,
                "late_reader",
                reader=f"late{late}",
                session=p.name,
                delay=rng.choice([0, 0.01]),
            )
        else:
            add(at, "ring_check", session=rng.choice(sessions))
    for when in upgrade_at:
        upgrade(when)
    return steps
