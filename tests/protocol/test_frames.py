"""Framing: length prefix, payload kinds, limits, and the JSON rules of control payloads."""

import itertools
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.protocol import LIMIT, ProtocolError
from supervisor.protocol.codes import BAD_REQUEST
from supervisor.protocol.frames import (
    DEFAULT_MAX_FRAME,
    MAX_JSON_DEPTH,
    MAX_OFFSET,
    MAX_SUB,
    FrameDecoder,
    decode_json,
    encode_control,
    encode_input,
    encode_output,
    output_header,
    split_input,
    split_output,
)

subs = st.integers(0, MAX_SUB)
offsets = st.integers(0, MAX_OFFSET)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)

frames = st.one_of(
    json_objects.map(encode_control),
    st.builds(encode_output, subs, offsets, st.binary(max_size=300)),
    st.builds(encode_input, subs, st.binary(max_size=300)),
    st.binary(max_size=300).map(lambda p: struct.pack(">I", len(p)) + p),
)


def payloads_of(frame_list: list[bytes]) -> list[bytes]:
    return [frame[4:] for frame in frame_list]


def decode_all(decoder: FrameDecoder, pieces: list[bytes]) -> list[bytes]:
    out = []
    for piece in pieces:
        decoder.feed(piece)
        while (payload := decoder.next_payload()) is not None:
            out.append(payload)
    return out


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted(p % (len(data) + 1) for p in points), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def nested(levels: int, leaf: str = "1") -> bytes:
    return ('{"a":' * levels + leaf + "}" * levels).encode()


# -- framing round trips -------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(frames, max_size=12), st.lists(st.integers(0, 10**6), max_size=20))
def test_frames_survive_any_split(frame_list, points):
    stream = b"".join(frame_list)
    decoder = FrameDecoder()
    assert decode_all(decoder, cut(stream, points)) == payloads_of(frame_list)
    assert decoder.buffered == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(frames, max_size=6))
def test_frames_survive_one_byte_feeds(frame_list):
    stream = b"".join(frame_list)
    decoder = FrameDecoder()
    pieces = [stream[i : i + 1] for i in range(len(stream))]
    assert decode_all(decoder, pieces) == payloads_of(frame_list)


@settings(max_examples=60, deadline=None)
@given(st.lists(frames, min_size=1, max_size=8), st.lists(st.integers(0, 10**6), max_size=10))
def test_buffered_counts_bytes_not_yet_returned(frame_list, points):
    stream = b"".join(frame_list)
    decoder = FrameDecoder()
    fed = returned = 0
    for piece in cut(stream, points):
        decoder.feed(piece)
        fed += len(piece)
        assert decoder.buffered == fed - returned
        while (payload := decoder.next_payload()) is not None:
            returned += 4 + len(payload)
            assert decoder.buffered == fed - returned
    assert returned == fed == len(stream)


def test_partial_frames_wait_for_more():
    decoder = FrameDecoder()
    frame = encode_control({"x": 1})
    for i in range(len(frame)):
        decoder.feed(frame[i : i + 1])
        if i < len(frame) - 1:
            assert decoder.next_payload() is None
    assert decoder.next_payload() == frame[4:]
    assert decoder.next_payload() is None


def test_empty_payload_is_a_frame():
    decoder = FrameDecoder()
    decoder.feed(b"\0\0\0\0" * 3)
    assert [decoder.next_payload() for _ in range(4)] == [b"", b"", b"", None]


# -- limits ---------------------------------------------------------------------------


def test_length_at_the_limit_is_accepted():
    decoder = FrameDecoder(max_frame=10)
    decoder.feed(struct.pack(">I", 10) + b"x" * 10)
    assert decoder.next_payload() == b"x" * 10


@pytest.mark.parametrize("length", [11, 2**20, 2**32 - 1])
def test_length_over_the_limit_is_fatal_before_the_payload_arrives(length):
    decoder = FrameDecoder(max_frame=10)
    decoder.feed(struct.pack(">I", length))
    with pytest.raises(ProtocolError) as info:
        decoder.next_payload()
    assert info.value.code == LIMIT
    assert info.value.fatal
    assert str(length) in info.value.message
    with pytest.raises(ProtocolError):
        decoder.next_payload()


def test_default_limit_is_8_mib():
    assert DEFAULT_MAX_FRAME == 8 * 1024 * 1024
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">I", DEFAULT_MAX_FRAME))
    assert decoder.next_payload() is None
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">I", DEFAULT_MAX_FRAME + 1))
    with pytest.raises(ProtocolError, match="over the limit"):
        decoder.next_payload()


def test_the_largest_length_is_2_to_the_32_minus_1():
    decoder = FrameDecoder(max_frame=2**32 - 1)
    decoder.feed(b"\xff\xff\xff\xff" + b"x" * 100)
    assert decoder.next_payload() is None
    assert decoder.buffered == 104


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_limit_is_exactly_max_frame(length, max_frame):
    decoder = FrameDecoder(max_frame=max_frame)
    decoder.feed(struct.pack(">I", length))
    if length > max_frame:
        with pytest.raises(ProtocolError):
            decoder.next_payload()
    else:
        assert decoder.next_payload() == (b"" if length == 0 else None)


# -- output and input frames ----------------------------------------------------------


def test_output_frame_layout():
    frame = encode_output(1, 0, b"hi\r\n")
    assert frame.hex() == "00000011" + "00" + "00000001" + "0000000000000000" + "6869" + "0d0a"
    assert output_header(1, 0, 4) == frame[:-4]


def test_input_frame_layout():
    assert encode_input(7, b"ls\r").hex() == "00000008" + "01" + "00000007" + "6c730d"


@settings(max_examples=100, deadline=None)
@given(subs, offsets, st.binary(max_size=2000))
def test_output_frames_round_trip(sub, offset, data):
    frame = encode_output(sub, offset, data)
    assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4 == 13 + len(data)
    assert split_output(frame[4:]) == (sub, offset, data)


@settings(max_examples=100, deadline=None)
@given(subs, st.binary(max_size=2000))
def test_input_frames_round_trip(sub, data):
    frame = encode_input(sub, data)
    assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4 == 5 + len(data)
    assert split_input(frame[4:]) == (sub, data)


def test_every_byte_value_survives():
    data = bytes(range(256)) * 3
    decoder = FrameDecoder()
    decoder.feed(encode_output(MAX_SUB, MAX_OFFSET, data) + encode_input(MAX_SUB, data))
    assert split_output(decoder.next_payload() or b"") == (MAX_SUB, MAX_OFFSET, data)
    assert split_input(decoder.next_payload() or b"") == (MAX_SUB, data)


@pytest.mark.parametrize("n", range(13))
def test_short_output_frame(n):
    with pytest.raises(ProtocolError) as info:
        split_output(b"\0" * n)
    assert info.value.code == BAD_REQUEST
    assert not info.value.fatal


@pytest.mark.parametrize("n", range(5))
def test_short_input_frame(n):
    with pytest.raises(ProtocolError) as info:
        split_input((b"\x01" + b"\0" * 4)[:n])
    assert info.value.code == BAD_REQUEST


# -- control payloads -----------------------------------------------------------------


def test_control_frames_are_compact_ascii():
    frame = encode_control({"a": "é", "b": [1, 2]})
    assert frame[4:] == b'{"a":"\\u00e9","b":[1,2]}'
    assert decode_json(frame[4:]) == {"a": "é", "b": [1, 2]}


def test_encode_control_refuses_nan():
    with pytest.raises(ValueError):
        encode_control({"x": float("nan")})


@settings(max_examples=60, deadline=None)
@given(json_objects)
def test_control_round_trip(message):
    assert decode_json(encode_control(message)[4:]) == message


def test_nesting_limit():
    assert MAX_JSON_DEPTH == 32
    assert decode_json(nested(32))
    assert decode_json(nested(32, "{}"))
    for payload in (nested(33), nested(33, "{}"), b'{"a":' + b"[" * 40 + b"]" * 40 + b"}"):
        with pytest.raises(ProtocolError, match="nested deeper than 32") as info:
            decode_json(payload)
        assert info.value.code == BAD_REQUEST
        assert not info.value.fatal


@pytest.mark.parametrize("levels", [1000, 10_000])
def test_very_deep_json_is_refused_without_recursion_error(levels):
    with pytest.raises(ProtocolError) as info:
        decode_json(nested(levels))
    assert info.value.code == BAD_REQUEST


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"x":NaN}', "NaN is not valid JSON"),
        (b'{"x":Infinity}', "Infinity is not valid JSON"),
        (b'{"x":-Infinity}', "-Infinity is not valid JSON"),
        (b'{"x":"\xff"}', "not UTF-8"),
        (b'{"x":"\xed\xa0\x80"}', "not UTF-8"),
        (b"{nope", "not valid JSON"),
        (b'{"x":1} {}', "not valid JSON"),
        (b'{"x":' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b'"x"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
)
def test_bad_control_payloads(payload, message):
    with pytest.raises(ProtocolError, match=message) as info:
        decode_json(payload)
    assert info.value.code == BAD_REQUEST
    assert not info.value.fatal


def test_duplicate_keys_keep_the_last():
    assert decode_json(b'{"id":1,"id":2}') == {"id": 2}


def test_big_floats_are_refused():
    with pytest.raises(ProtocolError) as info:
        decode_json(b'{"x":1e400}')
    assert "out of range" in info.value.message


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1))
def test_whatever_decodes_can_be_echoed(text):
    payload = json.dumps({"id": text}).encode()
    try:
        message = decode_json(payload)
    except ProtocolError:
        return
    encode_control(message)
