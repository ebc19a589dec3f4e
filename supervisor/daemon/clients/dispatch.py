"""Runs one request: validate its arguments (all of it happens in the argument models),
call its handler, and turn what went wrong into the protocol's errors — here and only
here."""

from supervisor import logs
from supervisor.daemon.clients import ops_sessions, ops_streams
from supervisor.daemon.clients.call import Call
from supervisor.daemon.clients.client import Client
from supervisor.daemon.clients.hub import Hub
from supervisor.daemon.clients.optable import table
from supervisor.daemon.session.session import OffsetError
from supervisor.daemon.session.writer import SessionClosed
from supervisor.daemon.system.tty import TerminalError
from supervisor.protocol import BAD_REQUEST, CONFLICT, INTERNAL, ProtocolError
from supervisor.protocol.messages import Request, error_message, result_message
from supervisor.protocol.requests import parse_args

log = logs.get_logger("supervisor.dispatch")

HANDLER_MODULES = (ops_sessions, ops_streams)
"""Imported for their `@op` registrations."""


def as_protocol_error(op: str, exc: Exception) -> ProtocolError:
    if isinstance(exc, ProtocolError):
        return exc
    if isinstance(exc, SessionClosed):
        return ProtocolError(CONFLICT, str(exc))
    if isinstance(exc, OffsetError):
        return ProtocolError(BAD_REQUEST, f"{op}: {exc}")
    if isinstance(exc, TerminalError):
        return ProtocolError(BAD_REQUEST, str(exc))
    return ProtocolError(INTERNAL, f"{op}: {type(exc).__name__}: {exc}")


class Dispatcher:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.ops = table()

    async def __call__(self, request: Request, client: Client, passed: list[int]) -> None:
        try:
            args = parse_args(request.op, request.args)
            call = Call(request.id, request.op, args, client, passed)
            result = await self.ops[request.op].handler(self.hub, call, args)
        except Exception as exc:
            error = as_protocol_error(request.op, exc)
            if error is not exc and error.code == INTERNAL:
                client.log.exception("request failed", op=request.op)
            client.send(error_message(request.id, error.code, error.message))
        else:
            client.send(result_message(request.id, result))
