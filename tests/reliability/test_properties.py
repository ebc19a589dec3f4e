"""The sans-io side of hostile input: any JSON arguments to any op are either accepted or
refused with `bad_request`, never an exception the daemon would report as `internal`.
(Frames and messages have their property tests in tests/protocol.)"""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from supervisor.protocol.codes import ProtocolError
from supervisor.protocol.requests import OPS, WriteArgs, parse_args

pytestmark = pytest.mark.slow

FIELDS = sorted({name for model in OPS.values() for name in model.fields} | {"zz"})
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
    | st.sampled_from(["/", "/tmp", "TERM", "9", "eA==", "\udc80", "\ud800", "a\x00b"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
arguments = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(sorted(OPS)), arguments)
def test_any_arguments_are_accepted_or_refused_as_a_bad_request(op: str, args: dict) -> None:
    try:
        parse_args(op, args)
    except ProtocolError as exc:
        assert exc.code == "bad_request", exc


@settings(max_examples=500, deadline=None)
@example(data=None, data_b64="\u00e9")
@given(st.none() | st.text(max_size=40), st.none() | st.text(max_size=40))
def test_a_write_payload_is_bytes_or_a_bad_request(data: str | None, data_b64: str | None) -> None:
    try:
        args = parse_args("write", {"session": "1", "data": data, "data_b64": data_b64})
    except ProtocolError:
        return
    assert isinstance(args, WriteArgs)
    try:
        assert isinstance(args.payload(), bytes)
    except ProtocolError as exc:
        assert exc.code == "bad_request"
