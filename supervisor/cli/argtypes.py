"""The types of the command line's values: each parses one and says what was wrong."""

import argparse
import re


def size_arg(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,4})x(\d{1,4})", value)
    if not match or not all(int(g) > 0 for g in match.groups()):
        raise argparse.ArgumentTypeError(f"expected COLSxROWS such as 120x40, got {value!r}")
    return int(match[1]), int(match[2])


def env_arg(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected K=V, got {value!r}")
    return key, val


def offset_arg(value: str) -> int:
    try:
        offset = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a byte offset, got {value!r}") from None
    if offset < 0:
        raise argparse.ArgumentTypeError(f"an offset cannot be negative: {value}")
    return offset


def seconds_arg(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not 0 <= seconds <= 366 * 86400:
        raise argparse.ArgumentTypeError(f"seconds out of range: {value}")
    return seconds


def since_arg(value: str) -> int | str:
    return "now" if value == "now" else offset_arg(value)


def detach_key_arg(value: str) -> int | None:
    from supervisor.cli.attach import parse_detach_key

    try:
        return parse_detach_key(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def dimension_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not 1 <= n <= 9999:
        raise argparse.ArgumentTypeError(f"must be from 1 to 9999: {value}")
    return n


def lines_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of lines, got {value!r}") from None
    if not 0 <= n <= 100_000:
        raise argparse.ArgumentTypeError(f"must be from 0 to 100000: {value}")
    return n
