"""The daemon's end, sans-io: whatever a client sends becomes an event or a Violation."""

import itertools
import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.protocol import LIMIT, ProtocolError
from supervisor.protocol.codes import BAD_REQUEST
from supervisor.protocol.frames import encode_control, encode_input, encode_output
from supervisor.protocol.messages import (
    Hello,
    Input,
    Request,
    Violation,
    error_message,
    result_message,
)
from supervisor.protocol.server import ServerConnection

EVENT_TYPES = (Hello, Request, Input, Violation)
HELLO = encode_control({"type": "hello", "protocol": 1, "capabilities": []})


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def control(message: dict[str, Any]) -> bytes:
    return frame(json.dumps(message).encode())


def greeted() -> ServerConnection:
    conn = ServerConnection()
    [hello] = conn.receive_data(HELLO)
    assert isinstance(hello, Hello)
    return conn


def one(conn: ServerConnection, data: bytes) -> Any:
    [event] = conn.receive_data(data)
    return event


def violation(conn: ServerConnection, data: bytes) -> Violation:
    event = one(conn, data)
    assert isinstance(event, Violation), event
    assert event.code == BAD_REQUEST
    return event


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted(p % (len(data) + 1) for p in points), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- nothing but a limit error escapes ----------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=400),
    st.lists(st.integers(0, 10**6), max_size=8),
    st.sampled_from([16, 64, 1 << 23]),
    st.booleans(),
)
def test_arbitrary_bytes_never_raise_except_limit(data, points, max_frame, hello_first):
    conn = ServerConnection(max_frame=max_frame)
    try:
        if hello_first:
            conn.receive_data(HELLO)
        for piece in cut(data, points):
            events = conn.receive_data(piece)
            assert all(isinstance(e, EVENT_TYPES) for e in events)
    except ProtocolError as exc:
        assert exc.code == LIMIT
        assert exc.fatal


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=70),
)
json_any = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
request_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["hello", "request", "result"]) | json_any,
        "id": json_any,
        "op": st.sampled_from(["status", "spawn", ""]) | json_any,
        "protocol": json_any,
        "capabilities": json_any,
        "argv": json_any,
    },
)
payloads = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200).map(lambda b: b"{" + b),
    st.binary(max_size=200).map(lambda b: b"\x00" + b),
    st.binary(max_size=200).map(lambda b: b"\x01" + b),
    request_like.map(lambda m: json.dumps(m).encode()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(payloads, max_size=10), st.booleans())
def test_every_framed_payload_becomes_exactly_one_event(payload_list, hello_first):
    conn = ServerConnection()
    if hello_first:
        conn.receive_data(HELLO)
    events = conn.receive_data(b"".join(frame(p) for p in payload_list))
    assert len(events) == len(payload_list)
    for payload, event in zip(payload_list, events, strict=True):
        assert isinstance(event, EVENT_TYPES)
        if isinstance(event, Violation):
            assert event.code == BAD_REQUEST
        if isinstance(event, Request):
            assert payload.startswith(b"{")
            assert set(event.args).isdisjoint({"id", "op", "type"})


@settings(max_examples=100, deadline=None)
@given(st.lists(payloads, max_size=8), st.integers(1, 2**53 - 1), st.lists(st.integers(0, 10**6)))
def test_garbage_does_not_desync_later_frames(garbage, request_id, points):
    conn = greeted()
    stream = b"".join(frame(p) for p in garbage) + control({"id": request_id, "op": "status"})
    events = []
    for piece in cut(stream, points):
        events += conn.receive_data(piece)
    assert len(events) == len(garbage) + 1
    assert events[-1] == Request(request_id, "status", {})


def test_interleaved_garbage_and_requests():
    conn = greeted()
    stream = b"".join(
        [
            frame(b""),
            control({"id": 1, "op": "list"}),
            frame(b"\x05junk"),
            frame(b"{not json"),
            control({"id": 2, "op": "info", "session": "x"}),
            frame(b"\x00" * 20),
            frame(b'{"id":' + b"[" * 10_000 + b"]" * 10_000 + b"}"),
            encode_input(3, b"\xff\x00"),
            control({"id": "three", "op": "status"}),
        ]
    )
    events = conn.receive_data(stream)
    assert [type(e).__name__ for e in events] == [
        "Violation",
        "Request",
        "Violation",
        "Violation",
        "Request",
        "Violation",
        "Violation",
        "Input",
        "Request",
    ]
    assert events[1] == Request(1, "list", {})
    assert events[4] == Request(2, "info", {"session": "x"})
    assert events[7] == Input(3, b"\xff\x00")
    assert events[8] == Request("three", "status", {})


# -- framing-level violations -------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty frame"),
        (b"\x05abc", "unknown frame kind 0x05"),
        (b"[1,2]", "unknown frame kind 0x5b"),
        (b' {"id":1,"op":"status"}', "unknown frame kind 0x20"),
        (encode_output(1, 0, b"x")[4:], "output frames go from the daemon to clients"),
        (b"\x01\x00\x00", "input frame shorter than its header"),
        (b'{"id":1,"op":"\xff"}', "not UTF-8"),
        (b'{"id":1,"op":"status","x":NaN}', "NaN is not valid JSON"),
        (b'{"id":1,"op":"status","x":Infinity}', "Infinity is not valid JSON"),
        (b'{"id":1,"op":"status","x":-Infinity}', "Infinity is not valid JSON"),
        (b'{"id":1,"op":"status"', "not valid JSON"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "JSON"),
        (b'{"a":' * 33 + b"1" + b"}" * 33, "nested deeper than 32"),
    ],
)
def test_bad_payloads(payload, message):
    event = violation(greeted(), frame(payload))
    assert event.id is None
    assert message in event.message


def test_over_limit_length_is_fatal():
    conn = ServerConnection(max_frame=100)
    assert len(conn.receive_data(HELLO)) == 1
    (event,) = conn.receive_data(struct.pack(">I", 101))
    assert isinstance(event, Violation)
    assert event.code == LIMIT
    assert event.fatal
    assert conn.receive_data(HELLO) == []  # nothing after lost framing is read


def test_buffered_reports_an_incomplete_frame():
    conn = greeted()
    data = control({"id": 1, "op": "status"})
    assert conn.receive_data(data[:-1]) == []
    assert conn.buffered == len(data) - 1
    assert len(conn.receive_data(data[-1:])) == 1
    assert conn.buffered == 0


def test_events_before_an_over_limit_frame_do_not_depend_on_the_split():
    stream = HELLO + control({"id": 1, "op": "status"}) + struct.pack(">I", 2**31)
    split = ServerConnection()
    seen = split.receive_data(stream[:-4]) + split.receive_data(stream[-4:])
    assert len(seen) == 3
    assert isinstance(seen[-1], Violation) and seen[-1].fatal
    assert ServerConnection().receive_data(stream) == seen


# -- the hello ----------------------------------------------------------------------------


def test_hello_is_parsed_and_remembered():
    conn = ServerConnection()
    assert conn.peer_hello is None
    hello = one(
        conn,
        control({"type": "hello", "protocol": 1, "capabilities": ["a"], "client": "x/1"}),
    )
    assert hello == Hello(1, ("a",), {"client": "x/1"})
    assert conn.peer_hello == hello


def test_capabilities_default_to_empty():
    assert one(ServerConnection(), control({"type": "hello", "protocol": 1})) == Hello(1, (), {})


def test_the_protocol_number_is_not_checked_here():
    assert one(ServerConnection(), control({"type": "hello", "protocol": 99})).protocol == 99


@pytest.mark.parametrize(
    ("hello", "message"),
    [
        ({"type": "hello"}, "'protocol' must be an integer"),
        ({"type": "hello", "protocol": "1"}, "'protocol' must be an integer"),
        ({"type": "hello", "protocol": True}, "'protocol' must be an integer"),
        ({"type": "hello", "protocol": 1.0}, "'protocol' must be an integer"),
        ({"type": "hello", "protocol": 1, "capabilities": "x"}, "list of strings"),
        ({"type": "hello", "protocol": 1, "capabilities": [1]}, "list of strings"),
    ],
)
def test_bad_hello(hello, message):
    conn = ServerConnection()
    event = violation(conn, control({**hello, "id": 5}))
    assert event.id == 5
    assert message in event.message
    assert conn.peer_hello is None


@pytest.mark.parametrize("request_id", [1, "a", 0])
def test_requests_before_hello(request_id):
    event = violation(ServerConnection(), control({"id": request_id, "op": "status"}))
    assert event.id == request_id
    assert event.message == "send hello before anything else"


def test_input_before_hello():
    event = violation(ServerConnection(), encode_input(1, b"x"))
    assert event.id is None
    assert event.message == "send hello before anything else"


def test_hello_and_request_in_one_chunk():
    events = ServerConnection().receive_data(HELLO + control({"id": 1, "op": "status"}))
    assert [type(e) for e in events] == [Hello, Request]


# -- requests -------------------------------------------------------------------------------


def test_request_args_are_the_other_top_level_fields():
    event = one(
        greeted(), control({"type": "ignored", "id": 9, "op": "spawn", "argv": ["sh"], "x": None})
    )
    assert event == Request(9, "spawn", {"argv": ["sh"], "x": None})


@pytest.mark.parametrize("request_id", [0, 1, 2**53 - 1, "x", "x" * 64, "é" * 64, "\0"])
def test_valid_ids(request_id):
    assert one(greeted(), control({"id": request_id, "op": "status"})).id == request_id


@pytest.mark.parametrize(
    "request_id", [True, False, -1, 2**53, 2**53 + 1, 10**30, 1.0, 1.5, "", "x" * 65, [1], {"a": 1}]
)
def test_invalid_ids(request_id):
    event = violation(greeted(), control({"id": request_id, "op": "status"}))
    assert event.id is None
    assert "'id' must be" in event.message


def test_an_id_too_long_for_python_int_parsing():
    event = violation(greeted(), frame(b'{"id":' + b"1" * 5000 + b',"op":"status"}'))
    assert event.id is None


def test_a_null_id_counts_as_missing():
    event = violation(greeted(), control({"id": None, "op": "status"}))
    assert event == Violation(None, BAD_REQUEST, "request 'status' has no 'id'")


@pytest.mark.parametrize("op", [None, "", 1, ["status"], {"op": "status"}])
def test_requests_need_a_string_op(op):
    message = {"id": 4} if op is None else {"id": 4, "op": op}
    event = violation(greeted(), control(message))
    assert event == Violation(4, BAD_REQUEST, "a request needs a string 'op'")


def test_unknown_ops_are_requests_here():
    assert one(greeted(), control({"id": 1, "op": "frobnicate"})) == Request(1, "frobnicate", {})


def test_a_second_hello_replaces_the_first():
    conn = greeted()
    one(conn, control({"type": "hello", "protocol": 2}))
    assert conn.peer_hello == Hello(2, (), {})


def test_every_request_id_can_be_echoed():
    event = one(greeted(), frame(b'{"id":"\\ud800","op":"status"}'))
    if isinstance(event, Request):
        encode_control(result_message(event.id, {}))
        encode_control(error_message(event.id, BAD_REQUEST, "x"))


# -- input frames ------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.binary(max_size=1000))
def test_input_frames(sub, data):
    assert one(greeted(), encode_input(sub, data)) == Input(sub, data)
