"""The control messages' JSON, through json's C parts: the same text, values and errors as
json itself gives, whatever the input."""

import json
import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from supervisor.protocol import wirejson

ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(exclude_categories=()), max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=()), max_size=6), inner, max_size=4
        )
    ),
    max_leaves=12,
)


def outcome(function: Any, argument: Any) -> tuple[str, Any]:
    try:
        result = function(argument)
    except Exception as exc:
        return ("error", (type(exc), str(exc)))
    return ("value", repr(result))


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=6), values, max_size=5))
def test_the_same_text_as_json(message: dict[str, Any]) -> None:
    assert outcome(wirejson.dumps, message) == outcome(ENCODER.encode, message)


def test_what_json_cannot_encode_is_refused_as_json_refuses_it() -> None:
    for message in ({"x": math.nan}, {"x": {1, 2}}, {"x": b"bytes"}, {1.5: 1}):
        assert outcome(wirejson.dumps, message) == outcome(ENCODER.encode, message)
    loop: dict[str, Any] = {}
    loop["self"] = loop
    assert outcome(wirejson.dumps, loop) == outcome(ENCODER.encode, loop)
    assert wirejson.dumps({"a": [1]}) == '{"a":[1]}'


def loads_as_json(text: str) -> Any:
    return json.loads(
        text, parse_constant=wirejson.reject_constant, parse_float=wirejson.finite_float
    )


@settings(max_examples=1000, deadline=None)
@given(st.one_of(values.map(lambda v: json.dumps(v, allow_nan=True)), st.text(max_size=30)))
@example(' {"a": 1} ')
@example('{"a": 1}x')
@example("\ufeff{}")
@example('{"a": NaN}')
@example('{"a": 1e999}')
@example('{"a": -Infinity}')
@example("")
@example("[" * 5000 + "]" * 5000)
@example('{"a": "\\ud800"}')
@example('{"a": 1, "a": 2}')
def test_the_same_values_and_errors_as_json(text: str) -> None:
    assert outcome(wirejson.loads, text) == outcome(loads_as_json, text)


@pytest.mark.parametrize("text", ['{"x":12345678901234567890123}', '{"x":1.5e300}', '{"x":-0.0}'])
def test_numbers(text: str) -> None:
    assert repr(wirejson.loads(text)) == repr(json.loads(text))
