"""The invariants a run is held to (DESIGN.md, "Integrity and security"), and the record of
how each fared: pass or fail, what was seen, and the step that failed it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

LOSSLESS = "every byte reaches every lossless reader once, in order, or a notice says where"
HELD = "a lossless reader is never skipped (its bytes stay in the ring, the child is held)"
KEYS = "every key reaches the child once, in the order typed (per writer)"
WHOLE = "a write request reaches the child whole (nothing typed in its middle)"
RING = "the ring keeps min(end, capacity), and exactly the bytes printed"
MEMORY = "the daemon's RSS stays within its bound"
BEHAVES = "commands, clients and sessions end as documented (daemon keeps its pid)"
LEFT = "nothing left behind (no process of the run survives it)"

ORDER = [LOSSLESS, HELD, KEYS, WHOLE, RING, MEMORY, BEHAVES, LEFT]
SHORT = {
    LOSSLESS: "lossless readers",
    HELD: "readers held, not skipped",
    KEYS: "keys once, in order",
    WHOLE: "write requests whole",
    RING: "ring keeps min(end, cap)",
    MEMORY: "daemon RSS bounded",
    BEHAVES: "commands behave",
    LEFT: "nothing left behind",
}


@dataclass
class Finding:
    detail: str
    step: str | None = None


@dataclass
class Check:
    name: str
    checked: int = 0
    failures: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, detail: str, step: str | None = None) -> None:
        self.failures.append(Finding(detail, step))

    def summary(self) -> str:
        if self.failures:
            first = self.failures[0]
            more = f" (+{len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
            where = f" [at {first.step}]" if first.step else ""
            return f"{first.detail}{where}{more}"
        if not self.checked:
            return "not exercised"
        return "; ".join([f"{self.checked} checked", *self.notes[:3]])

    def as_json(self) -> dict[str, Any]:
        return {
            "invariant": self.name,
            "ok": self.ok,
            "checked": self.checked,
            "detail": self.summary(),
            "failures": [asdict(f) for f in self.failures],
            "notes": self.notes,
        }


class Checks:
    def __init__(self, names: list[str] | None = None) -> None:
        self.by_name = {name: Check(name) for name in (names or ORDER)}

    def __getitem__(self, name: str) -> Check:
        if name not in self.by_name:
            self.by_name[name] = Check(name)
        return self.by_name[name]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.by_name.values())

    def first_failure(self) -> tuple[Check, Finding] | None:
        for check in self.by_name.values():
            if check.failures:
                return check, check.failures[0]
        return None

    def as_json(self) -> dict[str, Any]:
        return {SHORT.get(name, name): check.as_json() for name, check in self.by_name.items()}
