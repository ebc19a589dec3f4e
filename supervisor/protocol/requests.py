"""The arguments of each request op, validated strictly (the daemon's side).

Each op's arguments are a class whose fields are declared with `field(check, ...)`: the
type a handler sees, the check of the JSON value (supervisor.protocol.fields), the default
and a rule of the field's own. Every field is checked and every problem named; an unknown
field is one; rules across fields (`check_all`) come after.
"""

import base64
import binascii
import re
import signal
from collections.abc import Callable
from typing import Any, ClassVar, Self

from supervisor.protocol.codes import BAD_REQUEST, UNSUPPORTED, ProtocolError
from supervisor.protocol.fields import (
    INVALID,
    TEXT,
    Check,
    Problems,
    boolean,
    integer,
    nullable,
    number,
    string,
    text_map,
    text_or_integer,
    texts,
)

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.@:+-]{0,63}"
NAME_RE = re.compile(NAME_PATTERN)
MAX_ARGS = 4096
MAX_ENV = 4096
MAX_LABELS = 32
MAX_LABEL_VALUE = 1024
LABEL_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,63}")

SESSION_REF = string(min_length=1, max_length=64)
DIMENSION = integer(ge=1, le=9999)
OFFSET = integer(ge=0, le=2**63 - 1)
SECONDS = number(ge=0, le=366 * 86400)
SUB_ID = integer(ge=1, le=2**32 - 1)
BYTE = integer(ge=0, le=255)
HISTORY_LINES = integer(ge=0, le=100_000)
REQUIRED: Any = object()


class Field:
    __slots__ = ("check", "default", "rule")

    def __init__(self, check: Check, default: Any, rule: Callable[[Any], Any] | None) -> None:
        self.check = check
        self.default = default
        self.rule = rule

    def validate(self, value: Any, where: str, problems: Problems) -> Any:
        value = self.check(value, where, problems)
        if self.rule is not None and value is not INVALID and value is not None:
            try:
                value = self.rule(value)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                return INVALID
        return value


def field(check: Check, default: Any = REQUIRED, rule: Callable[[Any], Any] | None = None) -> Any:
    """A field of an op's arguments; `rule` runs on a value that passed `check`, and names
    a problem by raising ValueError."""
    return Field(check, default, rule)


def optional(check: Check, rule: Callable[[Any], Any] | None = None) -> Any:
    """A field that may be left out or null: None then."""
    return Field(nullable(check), None, rule)


class Args:
    """Frozen once validated; two are equal when their fields are."""

    fields: ClassVar[dict[str, Field]] = {}

    def __init_subclass__(cls) -> None:
        own = {name: spec for name, spec in vars(cls).items() if isinstance(spec, Field)}
        for name in own:
            delattr(cls, name)
        cls.fields = {**cls.fields, **own}

    @classmethod
    def validate(cls, values: dict[str, Any], problems: Problems) -> Self | None:
        """The arguments, or None with `problems` named (ProtocolError for some rules)."""
        if not isinstance(values, dict):
            problems.append(
                f"arguments: Input should be a valid dictionary or instance of {cls.__name__}"
            )
            return None
        checked: dict[str, Any] = {}
        for name, spec in cls.fields.items():
            if name in values:
                checked[name] = spec.validate(values[name], name, problems)
            elif spec.default is REQUIRED:
                problems.append(f"{name}: Field required")
            else:
                checked[name] = spec.default
        problems.extend(f"{name}: unknown field" for name in values if name not in cls.fields)
        if problems:
            return None
        args = cls.__new__(cls)
        vars(args).update(checked)
        try:
            args.check_all()
        except ValueError as exc:
            problems.append(f"arguments: {exc}")
            return None
        return args

    def check_all(self) -> None:
        """Rules across fields, once each field is valid: raise ValueError to refuse."""

    def __setattr__(self, name: str, value: Any) -> None:
        raise ValueError(f"{type(self).__name__} is frozen: {name} cannot be set")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), *(getattr(self, name) for name in self.fields)))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.fields)
        return f"{type(self).__name__}({shown})"


def _no_nul(value: str, what: str) -> str:
    if "\0" in value:
        raise ValueError(f"{what} must not contain NUL")
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: holds a lone surrogate, which is not text") from None
    return value


def _labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not LABEL_KEY_RE.fullmatch(key):
            raise ValueError(
                f"invalid label name {key!r}: 1 to 64 of A-Z a-z 0-9 _ . : / -, "
                "not starting with . : / or -"
            )
        if len(value) > MAX_LABEL_VALUE:
            raise ValueError(f"the value of label {key!r} is over {MAX_LABEL_VALUE} characters")
        _no_nul(value, f"the value of label {key!r}")
    return labels


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    return _no_nul(value, "a path")


def _argv(argv: list[str]) -> list[str]:
    if not argv[0]:
        raise ValueError("the program (argv[0]) must not be empty")
    for arg in argv:
        _no_nul(arg, "arguments")
    return argv


def _env(env: dict[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not key or "=" in key or "\0" in key:
            raise ValueError(f"invalid variable name {key!r}")
        _no_nul(key, "a variable name")
        _no_nul(value, f"the value of {key}")
    return env


def _name(name: str) -> str:
    if not NAME_RE.fullmatch(name) or name.isdigit():
        raise ValueError(
            "a name starts with a letter or _, has at most 64 of A-Z a-z 0-9 _ . @ : + -"
        )
    return name


def parse_signal(value: str | int) -> int:
    if isinstance(value, int):
        if value in signal.valid_signals():
            return value
        raise ProtocolError(BAD_REQUEST, f"kill: no signal number {value}")
    name = value.upper()
    if name.isdigit():
        return parse_signal(int(name))
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ProtocolError(BAD_REQUEST, f"kill: unknown signal {value!r}") from None


def _signal(value: str | int) -> str | int:
    parse_signal(value)
    return value


class NoArgs(Args):
    pass


class SessionArgs(Args):
    session: str = field(SESSION_REF)


class SpawnArgs(Args):
    argv: list[str] = field(texts(min_items=1, max_items=MAX_ARGS), rule=_argv)
    cwd: str | None = optional(TEXT, _absolute)
    env: dict[str, str] | None = optional(text_map(max_items=MAX_ENV), _env)
    name: str | None = optional(TEXT, _name)
    cols: int = field(DIMENSION, 80)
    rows: int = field(DIMENSION, 24)
    project: str | None = optional(TEXT, _absolute)
    caller_directory: str | None = optional(TEXT, _absolute)
    """The caller's own OPENCODE_DIRECTORY, if it has one."""
    subscribe: bool = field(boolean, False)
    """Subscribe this connection to the output from offset 0, before the child runs."""
    input: bool = field(boolean, False)
    lossless: bool = field(boolean, False)
    """With `subscribe`: never skip that subscription (the child waits while it lags)."""
    terminal: bool = field(boolean, False)
    """With `input`: the client's terminal came with the request (SCM_RIGHTS); the daemon
    writes the output to it and reads the keys from it itself."""
    detach_key: int | None = optional(BYTE)
    """With `terminal`: the key that ends the attachment."""
    echo: bool = field(boolean, True)
    """False: the new terminal does not echo input (for input from a pipe or file)."""
    output_processing: bool = field(boolean, True)
    """False: the new terminal's output is not processed (OPOST off: lines end in \n)."""
    labels: dict[str, str] | None = optional(text_map(), _labels)
    """Free-form tags kept with the session and shown by `list` and `info`."""

    def check_all(self) -> None:
        if self.terminal and not (self.input or self.subscribe):
            raise ProtocolError(BAD_REQUEST, "spawn: terminal needs subscribe or input")


class ListArgs(Args):
    labels: dict[str, str] | None = optional(text_map(), _labels)
    """Only the sessions that carry every one of these labels with these values."""


class RenameArgs(SessionArgs):
    name: str = field(TEXT, rule=_name)


class ContextArgs(Args):
    cwd: str | None = optional(TEXT, _absolute)
    project: str | None = optional(TEXT, _absolute)
    caller_directory: str | None = optional(TEXT, _absolute)


class WriteArgs(SessionArgs):
    data: str | None = optional(TEXT)
    data_b64: str | None = optional(TEXT)

    def check_all(self) -> None:
        if (self.data is None) == (self.data_b64 is None):
            raise ValueError("give exactly one of 'data' and 'data_b64'")
        object.__setattr__(self, "_payload", self._decode())

    def payload(self) -> bytes:
        """The bytes to write, decoded when the request was validated."""
        payload: bytes = vars(self)["_payload"]
        return payload

    def _decode(self) -> bytes:
        if self.data is not None:
            try:
                return self.data.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError as exc:
                raise ProtocolError(
                    BAD_REQUEST, f"write: data holds a character that is not text: {exc.reason}"
                ) from None
        try:
            return base64.b64decode(self.data_b64 or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError(BAD_REQUEST, f"write: data_b64 is not base64: {exc}") from None


class SubscribeArgs(SessionArgs):
    since: int | None = optional(OFFSET)
    follow: bool = field(boolean, True)
    input: bool = field(boolean, False)
    lossless: bool = field(boolean, False)
    """Never skip this subscriber: the child waits while it lags (as a pipe would)."""


class AttachArgs(SessionArgs):
    since: int | None = optional(OFFSET)
    """Replay from this offset; left out: start at the end, after a redraw of the screen."""
    read_only: bool = field(boolean, False)
    cols: int | None = optional(DIMENSION)
    rows: int | None = optional(DIMENSION)
    terminal: bool = field(boolean, False)
    """The client's terminal came with the request (SCM_RIGHTS): see SpawnArgs.terminal."""
    detach_key: int | None = optional(BYTE)
    history: int | None = optional(HISTORY_LINES)
    """Show this many lines of scrollback before the screen (only without `since`)."""


class ScreenArgs(SessionArgs):
    ansi: bool = field(boolean, False)
    history: int | None = optional(HISTORY_LINES)
    """Also the last this many lines of scrollback, as plain text."""


class UnsubscribeArgs(Args):
    sub: int = field(SUB_ID)


class ResizeArgs(SessionArgs):
    cols: int = field(DIMENSION)
    rows: int = field(DIMENSION)
    sub: int | None = optional(SUB_ID)
    """An attached client's window size: applied only while that client is the controller."""


class WaitArgs(SessionArgs):
    timeout: float | None = optional(SECONDS)


class KillArgs(SessionArgs):
    signal: str | int | None = optional(text_or_integer, _signal)
    """A name (TERM, SIGTERM, term) or a number; checked here, so that handlers get a
    signal that exists."""

    def signal_number(self) -> int:
        assert self.signal is not None
        return parse_signal(self.signal)


OPS: dict[str, type[Args]] = {
    "status": NoArgs,
    "list": ListArgs,
    "stop": NoArgs,
    "spawn": SpawnArgs,
    "info": SessionArgs,
    "write": WriteArgs,
    "subscribe": SubscribeArgs,
    "unsubscribe": UnsubscribeArgs,
    "resize": ResizeArgs,
    "wait": WaitArgs,
    "kill": KillArgs,
    "remove": SessionArgs,
    "context": ContextArgs,
    "attach": AttachArgs,
    "screen": ScreenArgs,
    "events": NoArgs,
    "upgrade": NoArgs,
    "rename": RenameArgs,
}


def parse_args(op: str, args: dict[str, Any], ops: dict[str, type[Args]] = OPS) -> Args:
    model = ops.get(op)
    if model is None:
        raise ProtocolError(UNSUPPORTED, f"unknown op {op!r}")
    problems: Problems = []
    parsed = model.validate(args, problems)
    if parsed is None:
        raise ProtocolError(BAD_REQUEST, f"{op}: {'; '.join(problems)}")
    return parsed
