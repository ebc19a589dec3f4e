"""Strict checks of the JSON values in a request's arguments, one per kind of field.

A check takes a value and where it sits (`argv.0`, `env.PATH`) and returns the value, or
adds `where: what is wrong` to a list of problems and returns INVALID. No coercion: a
string is never a number, a number never a string, a bool neither; an int is taken for a
float. The wording of the problems is part of the protocol's error messages.
"""

from collections.abc import Callable
from typing import Any

Problems = list[str]
Check = Callable[[Any, str, Problems], Any]


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


def fail(problems: Problems, where: str, message: str) -> Any:
    problems.append(f"{where}: {message}")
    return INVALID


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _in_range(value: float, ge: float, le: float, where: str, problems: Problems) -> Any:
    if not value <= le:
        return fail(problems, where, f"Input should be less than or equal to {le}")
    if not value >= ge:
        return fail(problems, where, f"Input should be greater than or equal to {ge}")
    return value


def _text(value: Any, where: str, problems: Problems) -> Any:
    if not isinstance(value, str):
        return fail(problems, where, "Input should be a valid string")
    return value


def string(min_length: int = 0, max_length: int | None = None) -> Check:
    """A string; with a length to check, one holding a lone surrogate is refused too."""
    if min_length == 0 and max_length is None:
        return _text

    def check(value: Any, where: str, problems: Problems) -> Any:
        if not isinstance(value, str):
            return fail(problems, where, "Input should be a valid string")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return fail(
                    problems,
                    where,
                    "Input should be a valid string, unable to parse raw data as a unicode string",
                )
        if len(value) < min_length:
            return fail(
                problems,
                where,
                f"String should have at least {_plural(min_length, 'character')}",
            )
        if max_length is not None and len(value) > max_length:
            return fail(
                problems, where, f"String should have at most {_plural(max_length, 'character')}"
            )
        return value

    return check


TEXT = string()


def integer(ge: int, le: int) -> Check:
    def check(value: Any, where: str, problems: Problems) -> Any:
        if not _is_int(value):
            return fail(problems, where, "Input should be a valid integer")
        return _in_range(value, ge, le, where, problems)

    return check


def number(ge: int, le: int) -> Check:
    """A float; an int is taken and made one."""

    def check(value: Any, where: str, problems: Problems) -> Any:
        if _is_int(value):
            try:
                value = float(value)
            except OverflowError:
                return fail(problems, where, "Input should be a valid number")
        elif not isinstance(value, float):
            return fail(problems, where, "Input should be a valid number")
        return _in_range(value, ge, le, where, problems)

    return check


def boolean(value: Any, where: str, problems: Problems) -> Any:
    if value is True or value is False:
        return value
    return fail(problems, where, "Input should be a valid boolean")


def text_or_integer(value: Any, where: str, problems: Problems) -> Any:
    if isinstance(value, str) or _is_int(value):
        return value
    fail(problems, f"{where}.str", "Input should be a valid string")
    return fail(problems, f"{where}.int", "Input should be a valid integer")


def texts(min_items: int, max_items: int) -> Check:
    """A list of strings, its length checked before its items."""

    def check(value: Any, where: str, problems: Problems) -> Any:
        if not isinstance(value, list):
            return fail(problems, where, "Input should be a valid list")
        if len(value) > max_items:
            return fail(
                problems,
                where,
                f"List should have at most {_plural(max_items, 'item')} after validation, "
                f"not {len(value)}",
            )
        before = len(problems)
        for i, item in enumerate(value):
            TEXT(item, f"{where}.{i}", problems)
        if len(problems) > before:
            return INVALID
        if len(value) < min_items:
            return fail(
                problems,
                where,
                f"List should have at least {_plural(min_items, 'item')} after validation, "
                f"not {len(value)}",
            )
        return value

    return check


def text_map(max_items: int | None = None) -> Check:
    """A dict of strings to strings. Too many good entries is the only problem named, even
    after bad ones; bad entries alone are each named, however many."""

    def check(value: Any, where: str, problems: Problems) -> Any:
        if not isinstance(value, dict):
            return fail(problems, where, "Input should be a valid dictionary")
        found: Problems = []
        good = 0
        for key, item in value.items():
            key_ok = TEXT(key, f"{where}.{key}.[key]", found) is not INVALID
            if TEXT(item, f"{where}.{key}", found) is not INVALID and key_ok:
                good += 1
                if max_items is not None and good > max_items:
                    return fail(
                        problems,
                        where,
                        f"Dictionary should have at most {_plural(max_items, 'item')} after "
                        "validation, not more",
                    )
        if found:
            problems.extend(found)
            return INVALID
        return value

    return check


def nullable(check: Check) -> Check:
    def nullable_check(value: Any, where: str, problems: Problems) -> Any:
        return None if value is None else check(value, where, problems)

    return nullable_check
