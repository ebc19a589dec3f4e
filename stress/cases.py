"""What the fuzzer sends, and what must come back for each case.

A *frame case* is one hostile frame on a greeted connection whose framing stays intact: it
must be answered by exactly one error frame with a known code (and the request's id, or
`null`), and the connection goes on. Frame cases travel in batches, one connection each,
sometimes mixed with valid requests that must still get their results.

A *stream case* owns its connection: random bytes, truncated or oversized frames, a bad
protocol version, half-open and abandoned connections, slow drips, stalled readers, floods.
It must end in an error frame or a close, within a deadline.

Nothing generated here can be a valid `stop`, `upgrade`, `spawn`, `kill`, `remove` or
`write`: requests aimed at live sessions are invalid by construction, and every other one
names a session that does not exist.
"""

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from stress.wire import HELLO, control, encode, frame, input_frame

BAD_REQUEST = frozenset({"bad_request"})
NOT_FOUND = frozenset({"not_found"})
UNSUPPORTED = frozenset({"unsupported"})
LIMIT = frozenset({"limit"})
ANY_ERROR = frozenset({"bad_request", "not_found", "conflict", "limit", "unsupported"})
"""Every code but `internal` (a bug by definition) and `forbidden` (same user here)."""

OPS = (
    "status",
    "list",
    "stop",
    "spawn",
    "info",
    "write",
    "subscribe",
    "unsubscribe",
    "resize",
    "wait",
    "kill",
    "remove",
    "context",
    "attach",
    "screen",
    "events",
    "upgrade",
)
NO_ARGS = ("status", "list", "stop", "events", "upgrade")
FIELDS: dict[str, tuple[str, ...]] = {
    "spawn": (
        "argv",
        "cwd",
        "env",
        "name",
        "cols",
        "rows",
        "project",
        "caller_directory",
        "subscribe",
        "input",
    ),
    "context": ("cwd", "project", "caller_directory"),
    "info": ("session",),
    "screen": ("session", "ansi"),
    "remove": ("session",),
    "write": ("session", "data", "data_b64"),
    "subscribe": ("session", "since", "follow", "input"),
    "attach": ("session", "since", "read_only", "cols", "rows"),
    "unsubscribe": ("sub",),
    "resize": ("session", "cols", "rows", "sub"),
    "wait": ("session", "timeout"),
    "kill": ("session", "signal"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "spawn": ("argv",),
    "info": ("session",),
    "screen": ("session",),
    "remove": ("session",),
    "write": ("session",),
    "subscribe": ("session",),
    "attach": ("session",),
    "unsubscribe": ("sub",),
    "resize": ("session", "cols", "rows"),
    "wait": ("session",),
    "kill": ("session",),
}
_DIMENSION = [0, 10000, -1, "80", 80.5, True, 2**63, [80], {"n": 80}]
_FLAG = [1, 0, "true", None, [], 1.0, {}]
INVALID: dict[str, list[Any]] = {
    "session": [1, 1.5, True, None, [], {}, "", "x" * 65],
    "argv": [[], "sh", [1], [""], ["a\x00b"], None, [None], {"0": "sh"}, [["sh"]]],
    "cwd": ["relative", 1, ["/"], "/a\x00b", True, "/\ud800", ""],
    "env": [[], "x", {"A": 1}, {"": "x"}, {"A=B": "x"}, {"A": "a\x00"}, {"A\x00": "x"}, 5],
    "name": ["1234", "-x", "a b", 5, "x" * 65, "", "\u00e9t\u00e9", "a/b"],
    "cols": [*_DIMENSION, None],
    "rows": [*_DIMENSION, None],
    "project": ["rel", 1, "/a\x00", []],
    "caller_directory": ["rel", 1, ["/"], "/\x00"],
    "subscribe": _FLAG,
    "input": _FLAG,
    "follow": _FLAG,
    "read_only": _FLAG,
    "ansi": _FLAG,
    "since": [-1, 2**63, "0", 1.5, True, [0], 2**64 + 1],
    "data": [1, [], {}, True, 1.5],
    "data_b64": [1, [], True, {}],
    "sub": [0, 2**32, -1, "1", True, 1.5, [1], None],
    "timeout": [-1, 366 * 86400 + 1, "1", True, [], 1e308, -0.001],
    "signal": [[], {}, 1.5, True, [9]],
}
NULL_ALLOWED = {("attach", "cols"), ("attach", "rows"), ("resize", "sub")}
BAD_SIGNALS: list[Any] = ["NOPE", "SIGNOPE", 0, 99999, -1, "", "9x", 2**40, "-9", "SIG", " 9"]
BAD_UTF8 = [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf5\x80\x80\x80", b"\xe2\x82", b"\x80"]
NOT_JSON = [
    b"{",
    b"{}x",
    b"{}{}",
    b"{'id':1}",
    b'{"id":1,}',
    b'{"id":NaN}',
    b'{"id":Infinity}',
    b'{"id":-Infinity}',
    b'{"a":1e400}',
    b'{"a":-1e400}',
    b'{"a":"\x01"}',
    b'{"a":01}',
    b'{"a":tru}',
    b'{"a" 1}',
    b'{"a":1 /* c */}',
    b'{"a":"\\x41"}',
    b'{"a":"\\u12"}',
    b'{"a":[1,2}',
    b'{"a":1}]',
    b"{\x00}",
    b'{"a":' + b"9" * 5000 + b"}",
]
BAD_IDS: list[Any] = [-1, 2**53, 2**64, 1.5, 1.0, True, False, "", "x" * 65, [], {}, [1], -(2**63)]


@dataclass(frozen=True, slots=True)
class FrameCase:
    kind: str
    data: bytes
    request_id: int | str | None
    """The id its error must carry: None for an error with `"id": null`."""
    codes: frozenset[str]
    sub: int | None = None
    """For an input frame: the `sub` its error must name."""


@dataclass(frozen=True, slots=True)
class Valid:
    """A well-formed, harmless request among the garbage: it must get its result."""

    data: bytes
    request_id: int | str
    op: str


@dataclass(slots=True)
class Batch:
    items: list[FrameCase | Valid]
    ending: Literal["eof", "drop"]
    """Shut down our side and read to the daemon's close, or close once answered."""

    @property
    def count(self) -> int:
        return sum(isinstance(i, FrameCase) for i in self.items)


How = Literal["eof", "daemon_closes", "abandon", "drip", "stall", "half_open", "flood"]


@dataclass(slots=True)
class StreamCase:
    kind: str
    chunks: list[bytes]
    greet: bool
    how: How
    expect: Literal["error", "close", "any"]
    codes: frozenset[str] = ANY_ERROR
    hold: float = 0.0
    results_allowed: bool = False
    count: int = 1


@dataclass(slots=True)
class Burst:
    """Many connections at once, each with one frame case."""

    cases: list[FrameCase]

    @property
    def count(self) -> int:
        return len(self.cases)


Group = Batch | StreamCase | Burst


@dataclass
class Target:
    """What the generator may aim at: live canary sessions and the daemon's frame limit."""

    canaries: list[str]
    max_frame: int


@dataclass
class Generator:
    rng: random.Random
    target: Target
    _next_id: int = 0
    frame_kinds: list[tuple[str, Callable[[], FrameCase], float]] = field(default_factory=list)
    stream_kinds: list[tuple[str, Callable[[], StreamCase], float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.frame_kinds = [
            ("bad_json", self.bad_json, 1.0),
            ("not_utf8", self.not_utf8, 0.6),
            ("deep_json", self.deep_json, 0.6),
            ("frame_kind", self.frame_kind, 0.6),
            ("empty_frame", self.empty_frame, 0.3),
            ("output_frame", self.output_frame, 0.4),
            ("short_input", self.short_input, 0.4),
            ("input_no_sub", self.input_no_sub, 0.8),
            ("bad_id", self.bad_id, 0.8),
            ("no_id", self.no_id, 0.5),
            ("bad_op", self.bad_op, 0.5),
            ("unknown_op", self.unknown_op, 0.8),
            ("wrong_type", self.wrong_type, 2.0),
            ("unknown_field", self.unknown_field, 0.8),
            ("missing_field", self.missing_field, 0.5),
            ("out_of_range", self.out_of_range, 0.8),
            ("no_session", self.no_session, 1.2),
            ("live_session", self.live_session, 1.0),
            ("bad_hello", self.bad_hello, 0.4),
        ]
        self.stream_kinds = [
            ("random_bytes", self.random_bytes, 5.0),
            ("truncated", self.truncated, 3.0),
            ("oversized", self.oversized, 2.5),
            ("bad_version", self.bad_version, 1.0),
            ("no_hello", self.no_hello, 1.5),
            ("half_open", self.half_open, 1.5),
            ("abandoned", self.abandoned, 3.0),
            ("slow_drip", self.slow_drip, 0.2),
            ("stalled_reader", self.stalled_reader, 0.2),
            ("big_frame", self.big_frame, 0.15),
            ("flood", self.flood, 0.2),
        ]

    # -- groups ---------------------------------------------------------------

    def group(self, remaining: int) -> Group:
        """The next group of cases, at most `remaining` of them."""
        roll = self.rng.random()
        if roll < 0.005 and remaining >= 20:
            return Burst(
                [self.frame_case() for _ in range(min(remaining, self.rng.randint(50, 200)))]
            )
        if roll < 0.16:
            return self.batch(min(remaining, self.rng.randint(1, 40)))
        return self._pick(self.stream_kinds)()

    def batch(self, size: int) -> Batch:
        items: list[FrameCase | Valid] = []
        mixed = self.rng.random() < 0.4
        while len([i for i in items if isinstance(i, FrameCase)]) < size:
            if mixed and self.rng.random() < 0.3:
                items.append(self.valid())
            else:
                items.append(self.frame_case())
        return Batch(items, "eof" if self.rng.random() < 0.7 else "drop")

    def frame_case(self) -> FrameCase:
        return self._pick(self.frame_kinds)()

    def _pick(self, table: list[tuple[str, Callable[[], Any], float]]) -> Any:
        total = sum(weight for _, _, weight in table)
        roll = self.rng.random() * total
        for _, make, weight in table:
            roll -= weight
            if roll < 0:
                return make
        return table[-1][1]

    # -- small pieces ---------------------------------------------------------

    def new_id(self) -> int | str:
        self._next_id += 1
        n = self._next_id
        form = self.rng.random()
        if form < 0.6:
            return n
        if form < 0.8:
            return f"s{n}"
        if form < 0.9:
            return f"{n}-" + "\u00e9\u4e2d\U0001f600"[self.rng.randrange(3)] * self.rng.randint(
                1, 40
            )
        return f"{n}:" + self.text(self.rng.randint(1, 60 - len(str(n))))

    def text(self, size: int) -> str:
        return "".join(self.rng.choice(string.printable) for _ in range(size))

    def junk(self, size: int) -> bytes:
        return self.rng.randbytes(size)

    def nowhere(self) -> str:
        """A session reference no session has."""
        if self.rng.random() < 0.5:
            return str(self.rng.randint(10**12, 10**18))
        return "nx-" + "".join(self.rng.choice(string.ascii_letters) for _ in range(12))

    def canary(self) -> str:
        return self.rng.choice(self.target.canaries)

    def base(self, op: str) -> dict[str, Any]:
        """Arguments that pass validation and then harm nothing."""
        rng = self.rng
        if op == "spawn":
            return {"argv": ["/nonexistent/stress-never-runs"], "cwd": "/"}
        if op == "context":
            return {"cwd": "/"}
        if op == "unsubscribe":
            return {"sub": rng.randint(10**6, 2**32 - 1)}
        args: dict[str, Any] = {"session": self.nowhere()}
        if op == "write":
            args["data"] = "x"
        elif op == "subscribe":
            args["since"] = 0
        elif op == "attach":
            args["read_only"] = True
        elif op == "resize":
            args.update(cols=80, rows=24)
        elif op == "wait":
            args["timeout"] = 0
        elif op == "kill":
            args["signal"] = "TERM"
        return args

    def request(self, op: str, args: dict[str, Any]) -> tuple[bytes, int | str]:
        request_id = self.new_id()
        return encode({"id": request_id, "op": op, **args}), request_id

    # -- frame cases ----------------------------------------------------------

    def bad_json(self) -> FrameCase:
        rng = self.rng
        roll = rng.random()
        if roll < 0.4:
            payload = rng.choice(NOT_JSON)
        elif roll < 0.7:
            whole = encode({"id": rng.randint(0, 99), "op": "status"})
            payload = whole[: rng.randint(1, len(whole) - 1)]
        else:
            payload = b"{" + self.text(rng.randint(0, 200)).encode() + b'"'
        return FrameCase("bad_json", frame(payload), None, BAD_REQUEST)

    def not_utf8(self) -> FrameCase:
        bad = self.rng.choice(BAD_UTF8)
        payload = b'{"id":1,"op":"status","x":"' + bad + b'"}'
        return FrameCase("not_utf8", frame(payload), None, BAD_REQUEST)

    def deep_json(self) -> FrameCase:
        rng = self.rng
        depth = rng.choice([33, 34, 100, 999, 1000, 1001, 5000, rng.randint(33, 20000)])
        if rng.random() < 0.5:
            payload = b'{"a":' * depth + b"1" + b"}" * depth
        else:
            payload = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
        if rng.random() < 0.3:
            payload = payload[: rng.randint(1, len(payload))]
        return FrameCase("deep_json", frame(payload), None, BAD_REQUEST)

    def frame_kind(self) -> FrameCase:
        first = self.rng.choice([k for k in range(2, 256) if k != 0x7B])
        payload = bytes([first]) + self.junk(self.rng.randint(0, 64))
        return FrameCase("frame_kind", frame(payload), None, BAD_REQUEST)

    def empty_frame(self) -> FrameCase:
        return FrameCase("empty_frame", frame(b""), None, BAD_REQUEST)

    def output_frame(self) -> FrameCase:
        payload = b"\x00" + self.junk(self.rng.randint(0, 64))
        return FrameCase("output_frame", frame(payload), None, BAD_REQUEST)

    def short_input(self) -> FrameCase:
        payload = b"\x01" + self.junk(self.rng.randint(0, 3))
        return FrameCase("short_input", frame(payload), None, BAD_REQUEST)

    def input_no_sub(self) -> FrameCase:
        sub = self.rng.choice([0, 2**32 - 1, 2**31, self.rng.randint(10**6, 2**32 - 1)])
        data = self.junk(self.rng.randint(0, 256))
        return FrameCase("input_no_sub", input_frame(sub, data), None, NOT_FOUND, sub=sub)

    def bad_id(self) -> FrameCase:
        op = self.rng.choice(OPS)
        message = {"id": self.rng.choice(BAD_IDS), "op": op}
        return FrameCase("bad_id", frame(encode(message)), None, BAD_REQUEST)

    def no_id(self) -> FrameCase:
        op = self.rng.choice(OPS)
        message: dict[str, Any] = {"op": op}
        if self.rng.random() < 0.5:
            message["id"] = None
        return FrameCase("no_id", frame(encode(message)), None, BAD_REQUEST)

    def bad_op(self) -> FrameCase:
        request_id = self.new_id()
        message: dict[str, Any] = {"id": request_id}
        if self.rng.random() < 0.8:
            message["op"] = self.rng.choice([None, "", 1, [], {}, True, ["status"]])
        return FrameCase("bad_op", frame(encode(message)), request_id, BAD_REQUEST)

    def unknown_op(self) -> FrameCase:
        rng = self.rng
        op = rng.choice(
            [
                "frobnicate",
                "STATUS",
                "status ",
                "stop\x00",
                "__class__",
                "eval",
                "exec",
                "system",
                "../status",
                "x" * rng.randint(65, 5000),
                self.text(rng.randint(1, 30)),
                "\u00e9\u4e2d",
            ]
        )
        if op in OPS:
            op += "!"
        data, request_id = self.request(op, self.base("info") if rng.random() < 0.5 else {})
        return FrameCase("unknown_op", frame(data), request_id, UNSUPPORTED)

    def wrong_type(self) -> FrameCase:
        op = self.rng.choice([o for o in OPS if o not in NO_ARGS])
        key = self.rng.choice(FIELDS[op])
        args = self.base(op)
        choices = [v for v in INVALID[key] if v is not None or (op, key) not in NULL_ALLOWED]
        args[key] = self.rng.choice(choices)
        data, request_id = self.request(op, args)
        return FrameCase("wrong_type", frame(data), request_id, BAD_REQUEST)

    def unknown_field(self) -> FrameCase:
        op = self.rng.choice(OPS)
        args = self.base(op)
        name = self.rng.choice(["args", "force", "shell", "uid", "zz", "__proto__", "Session"])
        args[name] = self.rng.choice([1, "x", None, [], {"a": 1}])
        data, request_id = self.request(op, args)
        return FrameCase("unknown_field", frame(data), request_id, BAD_REQUEST)

    def missing_field(self) -> FrameCase:
        op = self.rng.choice(list(REQUIRED))
        args = self.base(op)
        args.pop(self.rng.choice(REQUIRED[op]), None)
        data, request_id = self.request(op, args)
        return FrameCase("missing_field", frame(data), request_id, BAD_REQUEST)

    def out_of_range(self) -> FrameCase:
        rng = self.rng
        request_id = self.new_id()
        head = encode({"id": request_id})[:-1]
        roll = rng.random()
        if roll < 0.25:
            number = b"1" + b"0" * rng.randint(5, 4000)
            body = b',"op":"resize","session":"nx","cols":' + number + b',"rows":24}'
            return FrameCase("out_of_range", frame(head + body), request_id, BAD_REQUEST)
        if roll < 0.4:
            body = b',"op":"resize","session":"nx","cols":1e400,"rows":24}'
            return FrameCase("out_of_range", frame(head + body), None, BAD_REQUEST)
        if roll < 0.5:
            number = b"9" * rng.randint(4301, 6000)
            body = b',"op":"wait","session":"nx","timeout":' + number + b"}"
            return FrameCase("out_of_range", frame(head + body), None, BAD_REQUEST)
        op, args = rng.choice(
            [
                ("subscribe", {"since": 2**63}),
                ("subscribe", {"since": -(2**63)}),
                ("unsubscribe", {"sub": 2**32}),
                ("unsubscribe", {"sub": 0}),
                ("resize", {"cols": 10**6, "rows": 24}),
                ("resize", {"cols": 80, "rows": -(2**31)}),
                ("wait", {"timeout": 10**12}),
                ("spawn", {"cols": 2**31}),
                ("spawn", {"argv": ["x"] * 4097}),
                ("attach", {"since": 2**64}),
            ]
        )
        full = {**self.base(op), **args}
        data = encode({"id": request_id, "op": op, **full})
        return FrameCase("out_of_range", frame(data), request_id, BAD_REQUEST)

    def no_session(self) -> FrameCase:
        op = self.rng.choice(
            [
                "info",
                "screen",
                "remove",
                "write",
                "subscribe",
                "attach",
                "resize",
                "wait",
                "kill",
                "unsubscribe",
            ]
        )
        data, request_id = self.request(op, self.base(op))
        return FrameCase("no_session", frame(data), request_id, NOT_FOUND)

    def live_session(self) -> FrameCase:
        """Invalid requests aimed at a live canary: none may touch it."""
        rng = self.rng
        session = self.canary()
        choices: list[tuple[str, dict[str, Any]]] = [
            ("kill", {"signal": rng.choice(BAD_SIGNALS)}),
            ("kill", {"signal": rng.choice(INVALID["signal"])}),
            ("resize", {"cols": rng.choice(_DIMENSION), "rows": 24}),
            ("resize", {"cols": 80, "rows": 0}),
            ("write", {"data": "x", "data_b64": "eA=="}),
            ("write", {}),
            ("write", {"data_b64": rng.choice(["!!!", "abc", "ab=c", "eA", "e A==", "\u00e9"])}),
            ("write", {"data": "\ud800" + "x" * rng.randint(0, 8)}),
            ("write", {"data": rng.choice(INVALID["data"])}),
            ("subscribe", {"since": 2**63 - 1}),
            ("subscribe", {"since": rng.choice(INVALID["since"])}),
            ("attach", {"since": 2**63 - 1}),
            ("attach", {"cols": 0}),
            ("screen", {"ansi": rng.choice(_FLAG)}),
            ("wait", {"timeout": rng.choice(INVALID["timeout"])}),
            ("remove", {"force": True}),
            ("info", {"session": session, "extra": 1}),
        ]
        op, args = rng.choice(choices)
        data, request_id = self.request(op, {"session": session, **args})
        return FrameCase("live_session", frame(data), request_id, BAD_REQUEST)

    def bad_hello(self) -> FrameCase:
        rng = self.rng
        message: dict[str, Any] = {"type": "hello"}
        if rng.random() < 0.5:
            message["protocol"] = rng.choice(["1", None, True, 1.0, [1], {}])
        else:
            message.update(protocol=1, capabilities=rng.choice(["x", [1], {}, [None], 5]))
        request_id: int | str | None = None
        if rng.random() < 0.5:
            request_id = self.new_id()
            message["id"] = request_id
        return FrameCase("bad_hello", frame(encode(message)), request_id, BAD_REQUEST)

    def valid(self) -> Valid:
        rng = self.rng
        op, args = rng.choice(
            [
                ("status", {}),
                ("list", {}),
                ("info", {"session": self.canary()}),
                ("wait", {"session": self.canary(), "timeout": 0}),
                ("subscribe", {"session": self.canary(), "follow": False}),
                ("screen", {"session": self.canary()}),
            ]
        )
        data, request_id = self.request(op, args)
        return Valid(frame(data), request_id, op)

    # -- stream cases ---------------------------------------------------------

    def random_bytes(self) -> StreamCase:
        rng = self.rng
        size = rng.choice([1, 2, 3, 4, 5, rng.randint(1, 512), rng.randint(1, 8192)])
        chunks = [self.junk(size)]
        if rng.random() < 0.3:
            chunks.insert(0, frame(b"{" + self.junk(rng.randint(0, 32))))
        return StreamCase("random_bytes", chunks, rng.random() < 0.5, "eof", "any")

    def truncated(self) -> StreamCase:
        rng = self.rng
        if rng.random() < 0.3:
            chunks = [self.junk(rng.randint(1, 3))]
        else:
            whole = rng.choice(
                [
                    control({"id": 1, "op": "status"}),
                    control({"id": 2, "op": "info", "session": self.canary()}),
                    input_frame(1, b"ls\r"),
                    frame(b"{" + b" " * rng.randint(10, 5000) + b"}"),
                ]
            )
            chunks = [whole[: rng.randint(1, len(whole) - 1)]]
            if rng.random() < 0.2:
                length = rng.randint(1024, self.target.max_frame)
                chunks = [length.to_bytes(4, "big") + self.junk(rng.randint(0, 256))]
        return StreamCase("truncated", chunks, rng.random() < 0.8, "eof", "close")

    def oversized(self) -> StreamCase:
        rng = self.rng
        limit = self.target.max_frame
        length = rng.choice([limit + 1, 2**32 - 1, 2**31, rng.randint(limit + 1, 2**32 - 1)])
        chunks = [length.to_bytes(4, "big") + self.junk(rng.randint(0, 1024))]
        if rng.random() < 0.3:
            chunks.insert(0, frame(b""))
        return StreamCase("oversized", chunks, rng.random() < 0.7, "daemon_closes", "error", LIMIT)

    def bad_version(self) -> StreamCase:
        protocol = self.rng.choice([0, 2, -1, 99, 2**70, 10**300])
        hello = control({"type": "hello", "protocol": protocol, "capabilities": []})
        return StreamCase(
            "bad_version", [hello], False, "daemon_closes", "error", UNSUPPORTED | BAD_REQUEST
        )

    def no_hello(self) -> StreamCase:
        rng = self.rng
        first = rng.choice(
            [
                control({"id": 1, "op": "status"}),
                control({"id": 1, "op": "stop"}),
                control({"id": 1, "op": "spawn", "argv": ["/bin/true"]}),
                input_frame(1, b"x"),
            ]
        )
        return StreamCase("no_hello", [first], False, "eof", "error", BAD_REQUEST)

    def half_open(self) -> StreamCase:
        """Requests in flight, then our side shut: the daemon must close, not wait."""
        rng = self.rng
        chunks = [
            control({"id": 1, "op": "wait", "session": self.canary(), "timeout": 3600}),
            control({"id": 2, "op": "subscribe", "session": self.canary(), "since": 0}),
        ]
        if rng.random() < 0.5:
            chunks.append(control({"id": 3, "op": "status"})[: rng.randint(1, 10)])
        return StreamCase("half_open", chunks, True, "half_open", "close", results_allowed=True)

    def abandoned(self) -> StreamCase:
        rng = self.rng
        chunks = [
            rng.choice(
                [
                    control({"id": 1, "op": "wait", "session": self.canary()}),
                    control({"id": 1, "op": "subscribe", "session": self.canary(), "since": 0}),
                    control({"id": 1, "op": "attach", "session": self.canary(), "read_only": True}),
                    control({"id": 1, "op": "events"}),
                    control({"id": 1, "op": "status"})[:7],
                    self.junk(rng.randint(1, 64)),
                ]
            )
            for _ in range(rng.randint(1, 4))
        ]
        return StreamCase("abandoned", chunks, rng.random() < 0.8, "abandon", "close")

    def slow_drip(self) -> StreamCase:
        cases: list[FrameCase] = []
        while len(cases) < self.rng.randint(1, 3):
            case = self.frame_case()
            if len(case.data) <= 600:
                cases.append(case)
        chunks = [c.data for c in cases]
        return StreamCase("slow_drip", chunks, True, "drip", "error")

    def stalled_reader(self) -> StreamCase:
        request = control({"id": 1, "op": "subscribe", "session": self.canary(), "since": 0})
        hold = self.rng.uniform(0.5, 2.0)
        return StreamCase("stalled_reader", [request], True, "stall", "close", hold=hold)

    def big_frame(self) -> StreamCase:
        size = self.rng.randint(1 << 20, self.target.max_frame)
        payload = b"{" + b"x" * (size - 1)
        return StreamCase("big_frame", [frame(payload)], True, "eof", "error", BAD_REQUEST)

    def flood(self) -> StreamCase:
        """Thousands of tiny bad frames in one write; the daemon answers every one."""
        count = self.rng.randint(1000, 30000)
        unit = self.rng.choice([frame(b""), frame(b"\x02"), frame(b"{")])
        return StreamCase("flood", [unit * count], True, "flood", "error", BAD_REQUEST)


def greeting(case: StreamCase) -> bytes:
    return HELLO if case.greet else b""
