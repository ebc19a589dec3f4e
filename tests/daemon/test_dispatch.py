"""The one op table and the one place that turns failures into the protocol's errors."""

from supervisor.daemon.clients.dispatch import Dispatcher, as_protocol_error
from supervisor.daemon.clients.optable import table
from supervisor.daemon.session.session import OffsetError
from supervisor.daemon.session.writer import SessionClosed
from supervisor.daemon.system.tty import TerminalError
from supervisor.protocol import ProtocolError
from supervisor.protocol.requests import OPS


def test_every_op_of_the_protocol_has_one_handler_and_its_own_argument_model():
    assert Dispatcher.__init__  # the dispatcher builds its table from the same call
    ops = table()
    assert set(ops) == set(OPS)
    for name, op in ops.items():
        assert op.name == name and op.args is OPS[name]


def test_failures_become_the_protocols_errors_in_one_place():
    cases = [
        (ProtocolError("not_found", "no session 'x'"), "not_found", "no session 'x'"),
        (SessionClosed("session 1 has exited"), "conflict", "session 1 has exited"),
        (
            OffsetError("offset 9 is past the end"),
            "bad_request",
            "attach: offset 9 is past the end",
        ),
        (TerminalError("terminal: not one"), "bad_request", "terminal: not one"),
        (KeyError("k"), "internal", "attach: KeyError: 'k'"),
    ]
    for exc, code, message in cases:
        error = as_protocol_error("attach", exc)
        assert (error.code, error.message) == (code, message)
