"""The arguments of each request op, validated strictly (the daemon's side)."""

import base64
import binascii
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
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
MAX_ARGS = 4096
MAX_ENV = 4096


def _no_nul(value: str, what: str) -> str:
    if "\0" in value:
        raise ValueError(f"{what} must not contain NUL")
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: holds a lone surrogate, which is not text") from None
    return value


def _absolute(value: str | None) -> str | None:
    if value is not None:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path")
        _no_nul(value, "a path")
    return value


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


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

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None and (not NAME_RE.fullmatch(name) or name.isdigit()):
            raise ValueError(
                "a name starts with a letter or _, has at most 64 of A-Z a-z 0-9 _ . @ : + -"
            )
        return name


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

    @model_validator(mode="after")
    def _one_payload(self) -> "WriteArgs":
        if (self.data is None) == (self.data_b64 is None):
            raise ValueError("give exactly one of 'data' and 'data_b64'")
        return self

    def payload(self) -> bytes:
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


class ScreenArgs(SessionArgs):
    ansi: bool = False


class UnsubscribeArgs(Args):
    sub: SubId


class ResizeArgs(SessionArgs):
    cols: Dimension
    rows: Dimension
    sub: SubId | None = None
    """An attached client's window size: applied only while that client is the controller."""


class WaitArgs(SessionArgs):
    timeout: Seconds | None = None


class KillArgs(SessionArgs):
    signal: str | int | None = None


OPS: dict[str, type[Args]] = {
    "status": NoArgs,
    "list": NoArgs,
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
