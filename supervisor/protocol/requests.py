"""The arguments of each request op, validated strictly (the daemon's side)."""

import base64
import binascii
import re
import signal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from supervisor.protocol.codes import BAD_REQUEST, UNSUPPORTED, ProtocolError

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.@:+-]{0,63}"
NAME_RE = re.compile(NAME_PATTERN)
SessionRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Dimension = Annotated[int, Field(ge=1, le=9999)]
Offset = Annotated[int, Field(ge=0, le=2**63 - 1)]
Seconds = Annotated[float, Field(ge=0, le=366 * 86400)]
SubId = Annotated[int, Field(ge=1, le=2**32 - 1)]
Byte = Annotated[int, Field(ge=0, le=255)]
HistoryLines = Annotated[int, Field(ge=0, le=100_000)]
MAX_ARGS = 4096
MAX_ENV = 4096
MAX_LABELS = 32
MAX_LABEL_VALUE = 1024
LABEL_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,63}")


def _no_nul(value: str, what: str) -> str:
    if "\0" in value:
        raise ValueError(f"{what} must not contain NUL")
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: holds a lone surrogate, which is not text") from None
    return value


def _labels(labels: dict[str, str] | None) -> dict[str, str] | None:
    if labels is None:
        return None
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


def _absolute(value: str | None) -> str | None:
    if value is not None:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path")
        _no_nul(value, "a path")
    return value


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class NoArgs(Args):
    pass


class SessionArgs(Args):
    session: SessionRef


class SpawnArgs(Args):
    argv: list[str] = Field(min_length=1, max_length=MAX_ARGS)
    cwd: str | None = None
    env: dict[str, str] | None = Field(default=None, max_length=MAX_ENV)
    name: str | None = None
    cols: Dimension = 80
    rows: Dimension = 24
    project: str | None = None
    caller_directory: str | None = None
    """The caller's own OPENCODE_DIRECTORY, if it has one."""
    subscribe: bool = False
    """Subscribe this connection to the output from offset 0, before the child runs."""
    input: bool = False
    lossless: bool = False
    """With `subscribe`: never skip that subscription (the child waits while it lags)."""
    terminal: bool = False
    """With `input`: the client's terminal came with the request (SCM_RIGHTS); the daemon
    writes the output to it and reads the keys from it itself."""
    detach_key: Byte | None = None
    """With `terminal`: the key that ends the attachment."""
    echo: bool = True
    """False: the new terminal does not echo input (for input from a pipe or file)."""
    output_processing: bool = True
    """False: the new terminal's output is not processed (OPOST off: lines end in \n)."""
    labels: dict[str, str] | None = None
    """Free-form tags kept with the session and shown by `list` and `info`."""

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str] | None) -> dict[str, str] | None:
        return _labels(labels)

    @field_validator("argv")
    @classmethod
    def _argv(cls, argv: list[str]) -> list[str]:
        if not argv[0]:
            raise ValueError("the program (argv[0]) must not be empty")
        for arg in argv:
            _no_nul(arg, "arguments")
        return argv

    @field_validator("cwd", "project", "caller_directory")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return _absolute(value)

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str] | None) -> dict[str, str] | None:
        if env is not None:
            for key, value in env.items():
                if not key or "=" in key or "\0" in key:
                    raise ValueError(f"invalid variable name {key!r}")
                _no_nul(key, "a variable name")
                _no_nul(value, f"the value of {key}")
        return env

    @model_validator(mode="after")
    def _terminal_needs_a_stream(self) -> "SpawnArgs":
        if self.terminal and not (self.input or self.subscribe):
            raise ProtocolError(BAD_REQUEST, "spawn: terminal needs subscribe or input")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None and (not NAME_RE.fullmatch(name) or name.isdigit()):
            raise ValueError(
                "a name starts with a letter or _, has at most 64 of A-Z a-z 0-9 _ . @ : + -"
            )
        return name


class ListArgs(Args):
    labels: dict[str, str] | None = None
    """Only the sessions that carry every one of these labels with these values."""

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str] | None) -> dict[str, str] | None:
        return _labels(labels)


class RenameArgs(SessionArgs):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return SpawnArgs._name(name) or name


class ContextArgs(Args):
    cwd: str | None = None
    project: str | None = None
    caller_directory: str | None = None

    @field_validator("cwd", "project", "caller_directory")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return _absolute(value)


class WriteArgs(SessionArgs):
    data: str | None = None
    data_b64: str | None = None

    _payload: bytes = PrivateAttr(b"")

    @model_validator(mode="after")
    def _one_payload(self) -> "WriteArgs":
        if (self.data is None) == (self.data_b64 is None):
            raise ValueError("give exactly one of 'data' and 'data_b64'")
        self._payload = self._decode()
        return self

    def payload(self) -> bytes:
        """The bytes to write, decoded when the request was validated."""
        return self._payload

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
    since: Offset | None = None
    follow: bool = True
    input: bool = False
    lossless: bool = False
    """Never skip this subscriber: the child waits while it lags (as a pipe would)."""


class AttachArgs(SessionArgs):
    since: Offset | None = None
    """Replay from this offset; left out: start at the end, after a redraw of the screen."""
    read_only: bool = False
    cols: Dimension | None = None
    rows: Dimension | None = None
    terminal: bool = False
    """The client's terminal came with the request (SCM_RIGHTS): see SpawnArgs.terminal."""
    detach_key: Byte | None = None
    history: HistoryLines | None = None
    """Show this many lines of scrollback before the screen (only without `since`)."""


class ScreenArgs(SessionArgs):
    ansi: bool = False
    history: HistoryLines | None = None
    """Also the last this many lines of scrollback, as plain text."""


class UnsubscribeArgs(Args):
    sub: SubId


class ResizeArgs(SessionArgs):
    cols: Dimension
    rows: Dimension
    sub: SubId | None = None
    """An attached client's window size: applied only while that client is the controller."""


class WaitArgs(SessionArgs):
    timeout: Seconds | None = None


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


class KillArgs(SessionArgs):
    signal: str | int | None = None
    """A name (TERM, SIGTERM, term) or a number; checked here, so that handlers get a
    signal that exists."""

    @field_validator("signal")
    @classmethod
    def _signal(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_signal(value)
        return value

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


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def parse_args(op: str, args: dict[str, Any], ops: dict[str, type[Args]] = OPS) -> Args:
    model = ops.get(op)
    if model is None:
        raise ProtocolError(UNSUPPORTED, f"unknown op {op!r}")
    try:
        return model.model_validate(args)
    except ValidationError as exc:
        raise ProtocolError(BAD_REQUEST, f"{op}: {_describe(exc)}") from None
