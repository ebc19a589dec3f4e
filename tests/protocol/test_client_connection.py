"""A client's end, sans-io: what it sends and how it reads the daemon's frames."""

import itertools
import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.protocol import ProtocolError
from supervisor.protocol.client import ClientConnection
from supervisor.protocol.codes import BAD_REQUEST
from supervisor.protocol.frames import FrameDecoder, encode_control, encode_input, encode_output
from supervisor.protocol.messages import (
    Error,
    Event,
    Hello,
    Output,
    Result,
    error_message,
    event_message,
    hello_message,
    result_message,
)


def sent(frame: bytes) -> dict[str, Any]:
    decoder = FrameDecoder()
    decoder.feed(frame)
    payload = decoder.next_payload()
    assert payload is not None
    assert decoder.buffered == 0
    return json.loads(payload)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted(p % (len(data) + 1) for p in points), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- what a client sends ------------------------------------------------------------------


def test_hello():
    frame = ClientConnection().hello(1, ["x"], client="test/1")
    assert sent(frame) == {
        "type": "hello",
        "protocol": 1,
        "capabilities": ["x"],
        "client": "test/1",
    }


def test_request_ids_increase_from_one():
    conn = ClientConnection()
    ids = [conn.request("status")[0] for _ in range(5)]
    assert ids == [1, 2, 3, 4, 5]


def test_request_args_sit_at_the_top_level_and_none_is_dropped():
    request_id, frame = ClientConnection().request(
        "subscribe", {"session": "a", "since": None, "follow": False, "input": None}
    )
    assert sent(frame) == {"id": request_id, "op": "subscribe", "session": "a", "follow": False}


def test_request_without_args():
    request_id, frame = ClientConnection().request("list", {})
    assert sent(frame) == {"id": request_id, "op": "list"}


def test_input():
    assert ClientConnection().input(3, b"\x03") == encode_input(3, b"\x03")


# -- what a client reads ------------------------------------------------------------------


def test_server_hello_is_remembered():
    conn = ClientConnection()
    frame = encode_control(hello_message(1, ["sessions"], server="pty-supervisor", pid=42))
    [hello] = conn.receive_data(frame)
    assert hello == Hello(1, ("sessions",), {"server": "pty-supervisor", "pid": 42})
    assert conn.server_hello == hello


def test_results_errors_events():
    stream = b"".join(
        [
            encode_control(result_message(1, {"written": 3})),
            encode_control(result_message("s", {})),
            encode_control(error_message(2, "not_found", "no session 'x'")),
            encode_control(error_message(None, "not_found", "no subscription 9", sub=9)),
            encode_control(event_message("end", 4, reason="exited", offset=10, exit_code=0)),
            encode_control(event_message("skipped", 4, **{"from": 0, "to": 7})),
        ]
    )
    assert ClientConnection().receive_data(stream) == [
        Result(1, {"written": 3}),
        Result("s", {}),
        Error(2, "not_found", "no session 'x'"),
        Error(None, "not_found", "no subscription 9", 9),
        Event("end", 4, {"reason": "exited", "offset": 10, "exit_code": 0}),
        Event("skipped", 4, {"from": 0, "to": 7}),
    ]


def test_a_result_that_is_not_an_object_reads_as_empty():
    frame = encode_control({"type": "result", "id": 1, "result": [1]})
    assert ClientConnection().receive_data(frame) == [Result(1, {})]


outputs = st.builds(
    Output, st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.binary(max_size=500)
)
controls = st.one_of(
    st.builds(
        Result, st.integers(0, 2**53 - 1) | st.text(min_size=1, max_size=64), st.just({"a": 1})
    ),
    st.builds(Error, st.none() | st.integers(0, 9), st.just(BAD_REQUEST), st.text(max_size=20)),
    st.builds(
        Event,
        st.sampled_from(["end", "skipped"]),
        st.integers(1, 9),
        st.just({"offset": 1}),
    ),
)


def encode(event: Any) -> bytes:
    if isinstance(event, Output):
        return encode_output(event.sub, event.offset, event.data)
    if isinstance(event, Result):
        return encode_control(result_message(event.id, event.result))
    if isinstance(event, Error):
        return encode_control(error_message(event.id, event.code, event.message, sub=event.sub))
    return encode_control(event_message(event.event, event.sub, **event.fields))


@settings(max_examples=100, deadline=None)
@given(st.lists(outputs | controls, max_size=10), st.lists(st.integers(0, 10**6), max_size=10))
def test_any_mix_decodes_in_order_across_any_split(events, points):
    conn = ClientConnection()
    got = []
    for piece in cut(b"".join(encode(e) for e in events), points):
        got += conn.receive_data(piece)
    assert got == events


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty frame"),
        (b"\x01\0\0\0\x01x", "unknown frame kind 0x01"),
        (b"\x7f", "unknown frame kind 0x7f"),
        (b'{"type":"surprise"}', "unknown message type 'surprise'"),
        (b'{"id":1}', "unknown message type None"),
    ],
)
def test_what_a_daemon_never_sends_is_fatal(payload, message):
    with pytest.raises(ProtocolError, match=message) as info:
        ClientConnection().receive_data(struct.pack(">I", len(payload)) + payload)
    assert info.value.fatal


@pytest.mark.parametrize(
    "payload", [b"\0" * 12, b"{bad", b'{"type":"hello","protocol":"1"}', b'{"x":NaN}']
)
def test_malformed_frames_raise(payload):
    with pytest.raises(ProtocolError) as info:
        ClientConnection().receive_data(struct.pack(">I", len(payload)) + payload)
    assert info.value.code == BAD_REQUEST


def test_max_frame_applies_to_the_daemon_too():
    conn = ClientConnection(max_frame=16)
    with pytest.raises(ProtocolError) as info:
        conn.receive_data(encode_output(1, 0, b"x" * 4))
    assert info.value.code == "limit"
