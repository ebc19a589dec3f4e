"""The JSON text of control messages, through the C parts of the json module directly.

Importing json imports re and enum with it: most of what a short `ptysup` call would
spend before it does anything. The C encoder and scanner are what json.dumps and
json.loads use themselves; any text the scanner does not take whole, from the first
character to the last, goes to json.loads, so every value and every error is json's.
"""

from __future__ import annotations

from _json import encode_basestring_ascii, make_encoder, make_scanner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def dumps(message: dict[str, Any]) -> str:
    """As json.dumps(message, separators=(",", ":"), allow_nan=False), in ASCII: a lone
    surrogate a client sent in a string can always be echoed back."""
    encode = make_encoder(
        {}, _not_serializable, encode_basestring_ascii, None, ":", ",", False, False, False
    )
    return "".join(encode(message, 0))


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text} is out of range")
    return value


class _Options:
    """What json.loads(text, parse_constant=reject_constant, parse_float=finite_float)
    gives its scanner."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = staticmethod(finite_float)
    parse_int = int
    parse_constant = staticmethod(reject_constant)


_scan = make_scanner(_Options())


def loads(text: str) -> Any:
    """As json.loads(text, parse_constant=reject_constant, parse_float=finite_float): NaN
    and Infinity are refused, and so is a number too large for a float."""
    try:
        value, end = _scan(text, 0)
    except Exception:  # json.loads below raises it again, as json words it
        end = -1
    if end == len(text):
        return value
    import json

    return json.loads(text, parse_constant=reject_constant, parse_float=finite_float)
