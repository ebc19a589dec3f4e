"""The command lines read without argparse: whatever supervisor.cli.quick takes, it reads as
the full parser does; the plain shapes of status, list and info are among what it takes."""

import argparse
import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cli import quick
from supervisor.cli.parser import build_parser, command_of

WORDS = [
    "status",
    "list",
    "ls",
    "info",
    "rm",
    "3",
    "web",
    "",
    "-1",
    "--json",
    "--js",
    "--no-start",
    "--no",
    "--socket",
    "--socket=/t",
    "/s",
    "--label",
    "k=v",
    "--version",
    "--help",
    "-h",
    "--",
]


def full(argv: list[str], only: str | None) -> argparse.Namespace | None:
    """What the full parser reads, built whole or for one command; None on a usage error."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return build_parser(only).parse_args(argv)
        except SystemExit:
            return None


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["status", "--json"],
        ["--no-start", "status"],
        ["list"],
        ["ls", "--json"],
        ["--socket", "/tmp/s", "list", "--no-start"],
        ["list", "--socket", "/a", "--socket", "/b"],
        ["info", "1"],
        ["info", "--json", "web", "--no-start"],
    ],
)
def test_the_plain_shapes_are_read_as_the_full_parser_reads_them(argv: list[str]) -> None:
    args = quick.parse(argv)
    assert args is not None
    assert vars(args) == vars(full(argv, None))


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["list", "-h"],
        ["--version"],
        ["list", "--js"],
        ["--json", "list"],
        ["list", "--label", "k=v"],
        ["list", "extra"],
        ["info"],
        ["info", "-1"],
        ["status", "--socket"],
        ["--socket=/t", "status"],
        ["rm", "1"],
    ],
)
def test_anything_else_is_left_to_the_full_parser(argv: list[str]) -> None:
    assert quick.parse(argv) is None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=6))
def test_what_it_takes_it_reads_as_the_full_parser(argv: list[str]) -> None:
    args = quick.parse(argv)
    if args is None:
        return
    whole = full(argv, None)
    assert whole is not None
    assert vars(args) == vars(whole)
    one = full(argv, command_of(argv))
    assert one is not None
    assert vars(args) == vars(one)
