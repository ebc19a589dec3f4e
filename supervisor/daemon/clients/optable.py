"""The one table of ops: each op's name (from the protocol's argument models) and its
handler. Handlers register here with `@op(name)`; `table()` checks that every op the
protocol names has exactly one."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from supervisor.daemon.clients.call import Call
from supervisor.daemon.clients.hub import Hub
from supervisor.protocol.requests import OPS as ARGS
from supervisor.protocol.requests import Args

Handler = Callable[[Hub, Call, Any], Awaitable[dict[str, Any]]]
"""Takes the op's validated arguments, of the op's own model."""


@dataclass(frozen=True, slots=True)
class Op:
    name: str
    args: type[Args]
    handler: Handler


_handlers: dict[str, Handler] = {}


def op(name: str) -> Callable[[Handler], Handler]:
    if name not in ARGS:
        raise KeyError(f"op {name!r} has no argument model in supervisor.protocol.requests")

    def register(handler: Handler) -> Handler:
        if name in _handlers:
            raise KeyError(f"op {name!r} has two handlers")
        _handlers[name] = handler
        return handler

    return register


def table() -> dict[str, Op]:
    missing = set(ARGS) - set(_handlers)
    if missing:
        raise KeyError(f"ops without a handler: {sorted(missing)}")
    return {name: Op(name, ARGS[name], _handlers[name]) for name in ARGS}
