"""The arguments of every op: strict types, no unknown fields, messages naming the field."""

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.protocol import ProtocolError
from supervisor.protocol.codes import BAD_REQUEST, UNSUPPORTED
from supervisor.protocol.requests import (
    OPS,
    KillArgs,
    SpawnArgs,
    SubscribeArgs,
    WaitArgs,
    WriteArgs,
    parse_args,
)

VALID: dict[str, list[dict[str, Any]]] = {
    "status": [{}],
    "list": [{}, {"labels": {"opencode.session": "ses_1", "k": ""}}],
    "stop": [{}],
    "info": [{"session": "1"}, {"session": "web"}, {"session": "x" * 64}],
    "remove": [{"session": "1"}],
    "context": [{}, {"cwd": "/tmp", "project": "/repo", "caller_directory": "/repo/sub"}],
    "spawn": [
        {"argv": ["sh"]},
        {
            "argv": ["/bin/sh", "-c", "echo hi", ""],
            "cwd": "/tmp",
            "env": {"A": "1", "B": "", "_x.y": "\u00e9"},
            "name": "web",
            "cols": 1,
            "rows": 9999,
            "project": "/srv/p",
            "subscribe": True,
            "input": True,
        },
        {"argv": ["sh"], "cwd": None, "env": None, "name": None, "project": None},
    ],
    "write": [{"session": "1", "data": ""}, {"session": "1", "data_b64": "AAE="}],
    "subscribe": [
        {"session": "1"},
        {"session": "1", "since": 0, "follow": False, "input": True},
        {"session": "1", "since": 2**63 - 1},
        {"session": "1", "since": None},
    ],
    "unsubscribe": [{"sub": 1}, {"sub": 2**32 - 1}],
    "resize": [
        {"session": "1", "cols": 120, "rows": 40},
        {"session": "1", "cols": 120, "rows": 40, "sub": 3},
    ],
    "attach": [
        {"session": "1"},
        {"session": "web", "since": 0, "read_only": True, "cols": 80, "rows": 24},
    ],
    "screen": [{"session": "1"}, {"session": "1", "ansi": True}],
    "events": [{}],
    "upgrade": [{}],
    "rename": [{"session": "1", "name": "web"}, {"session": "web", "name": "_b.2@x:y+z-"}],
    "wait": [{"session": "1"}, {"session": "1", "timeout": 0}, {"session": "1", "timeout": 1.5}],
    "kill": [
        {"session": "1"},
        {"session": "1", "signal": "TERM"},
        {"session": "1", "signal": 9},
        {"session": "1", "signal": None},
    ],
}


@pytest.mark.parametrize("op", ["spawn", "list"])
@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ({"": "v"}, "invalid label name ''"),
        ({".a": "v"}, "invalid label name '.a'"),
        ({"a=b": "v"}, "invalid label name 'a=b'"),
        ({"k" * 65: "v"}, "invalid label name"),
        ({"k": "v" * 1025}, "over 1024 characters"),
        ({"k": "a\0b"}, "NUL"),
        ({f"k{i}": "v" for i in range(33)}, "at most 32 labels"),
        ({"k": 1}, "labels.k"),
        (["k"], "labels"),
    ],
)
def test_bad_labels_are_named(op: str, labels: Any, fragment: str) -> None:
    base = {"argv": ["sh"]} if op == "spawn" else {}
    refused(op, {**base, "labels": labels}, "labels", fragment)


def refused(op: str, args: dict[str, Any], *fragments: str) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_args(op, args)
    assert info.value.code == BAD_REQUEST
    assert not info.value.fatal
    assert info.value.message.startswith(f"{op}: ")
    for fragment in fragments:
        assert fragment in info.value.message
    return info.value.message


def test_every_op_is_covered():
    assert set(VALID) == set(OPS)


@pytest.mark.parametrize(("op", "args"), [(op, a) for op, cases in VALID.items() for a in cases])
def test_valid_args(op, args):
    parsed = parse_args(op, args)
    assert isinstance(parsed, OPS[op])
    for key, value in args.items():
        assert getattr(parsed, key) == value


def test_defaults():
    spawn = parse_args("spawn", {"argv": ["sh"]})
    assert isinstance(spawn, SpawnArgs)
    assert (spawn.cwd, spawn.env, spawn.name, spawn.project) == (None, None, None, None)
    assert (spawn.cols, spawn.rows, spawn.subscribe, spawn.input) == (80, 24, False, False)
    sub = parse_args("subscribe", {"session": "1"})
    assert isinstance(sub, SubscribeArgs)
    assert (sub.since, sub.follow, sub.input) == (None, True, False)
    wait = parse_args("wait", {"session": "1"})
    assert isinstance(wait, WaitArgs)
    assert wait.timeout is None
    kill = parse_args("kill", {"session": "1"})
    assert isinstance(kill, KillArgs)
    assert kill.signal is None


def test_an_int_timeout_is_a_float():
    wait = parse_args("wait", {"session": "1", "timeout": 3})
    assert isinstance(wait, WaitArgs)
    assert wait.timeout == 3.0
    assert isinstance(wait.timeout, float)


@pytest.mark.parametrize("op", ["frobnicate", "", "Status", "spawn "])
def test_unknown_ops(op):
    with pytest.raises(ProtocolError) as info:
        parse_args(op, {})
    assert info.value.code == UNSUPPORTED
    assert repr(op) in info.value.message


# -- strict types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "args", "field"),
    [
        ("spawn", {"argv": "sh"}, "argv"),
        ("spawn", {"argv": [1]}, "argv.0"),
        ("spawn", {"argv": ["sh"], "cols": "80"}, "cols"),
        ("spawn", {"argv": ["sh"], "cols": True}, "cols"),
        ("spawn", {"argv": ["sh"], "rows": 24.0}, "rows"),
        ("spawn", {"argv": ["sh"], "env": {"A": 1}}, "env.A"),
        ("spawn", {"argv": ["sh"], "env": [["A", "1"]]}, "env"),
        ("spawn", {"argv": ["sh"], "subscribe": 1}, "subscribe"),
        ("spawn", {"argv": ["sh"], "input": "true"}, "input"),
        ("spawn", {"argv": ["sh"], "name": 5}, "name"),
        ("info", {"session": 1}, "session"),
        ("write", {"session": "1", "data": 1}, "data"),
        ("subscribe", {"session": "1", "since": "3"}, "since"),
        ("subscribe", {"session": "1", "since": True}, "since"),
        ("subscribe", {"session": "1", "since": 3.0}, "since"),
        ("subscribe", {"session": "1", "follow": 0}, "follow"),
        ("unsubscribe", {"sub": "1"}, "sub"),
        ("unsubscribe", {"sub": True}, "sub"),
        ("resize", {"session": "1", "cols": "80", "rows": 24}, "cols"),
        ("wait", {"session": "1", "timeout": "1"}, "timeout"),
        ("wait", {"session": "1", "timeout": True}, "timeout"),
        ("kill", {"session": "1", "signal": True}, "signal"),
        ("kill", {"session": "1", "signal": 9.0}, "signal"),
        ("kill", {"session": "1", "signal": ["TERM"]}, "signal"),
    ],
)
def test_wrong_types(op, args, field):
    refused(op, args, f"{field}")


NULLABLE = {
    "spawn": ["cwd", "env", "name", "project", "caller_directory", "detach_key", "labels"],
    "list": ["labels"],
    "context": ["cwd", "project", "caller_directory"],
    "subscribe": ["since"],
    "wait": ["timeout"],
    "kill": ["signal"],
    "attach": ["since", "cols", "rows", "detach_key", "history"],
    "screen": ["history"],
    "resize": ["sub"],
}


@pytest.mark.parametrize(
    ("op", "field"), [(op, field) for op, fields in NULLABLE.items() for field in fields]
)
def test_null_means_left_out(op, field):
    base = VALID[op][0]
    assert parse_args(op, {**base, field: None}) == parse_args(op, base)


@pytest.mark.parametrize(
    ("op", "field"),
    [
        (op, field)
        for op, model in OPS.items()
        for field in model.fields
        if field not in NULLABLE.get(op, []) and field not in ("data", "data_b64")
    ],
)
def test_null_is_refused_elsewhere(op, field):
    refused(op, {**VALID[op][0], field: None}, field)


@pytest.mark.parametrize(
    ("op", "args", "field"),
    [
        ("spawn", {}, "argv: Field required"),
        ("spawn", {"argv": None}, "argv"),
        ("info", {}, "session: Field required"),
        ("resize", {"session": "1", "cols": 80}, "rows: Field required"),
        ("unsubscribe", {}, "sub: Field required"),
    ],
)
def test_missing_fields(op, args, field):
    refused(op, args, field)


@pytest.mark.parametrize(
    ("op", "args", "field"),
    [
        ("spawn", {"argv": []}, "argv"),
        ("spawn", {"argv": ["sh"] * 4097}, "argv"),
        ("spawn", {"argv": ["sh"], "env": {f"V{i}": "" for i in range(4097)}}, "env"),
        ("spawn", {"argv": ["sh"], "cols": 0}, "cols"),
        ("spawn", {"argv": ["sh"], "rows": 10_000}, "rows"),
        ("resize", {"session": "1", "cols": 80, "rows": 0}, "rows"),
        ("info", {"session": ""}, "session"),
        ("info", {"session": "x" * 65}, "session"),
        ("subscribe", {"session": "1", "since": -1}, "since"),
        ("subscribe", {"session": "1", "since": 2**63}, "since"),
        ("unsubscribe", {"sub": 0}, "sub"),
        ("unsubscribe", {"sub": 2**32}, "sub"),
        ("wait", {"session": "1", "timeout": -0.5}, "timeout"),
        ("wait", {"session": "1", "timeout": 366 * 86400 + 1}, "timeout"),
        ("wait", {"session": "1", "timeout": float("inf")}, "timeout"),
    ],
)
def test_out_of_range(op, args, field):
    refused(op, args, field)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted(VALID)),
    st.text(min_size=1, max_size=12),
    st.none() | st.integers() | st.text(max_size=5),
)
def test_unknown_fields_are_refused_by_name(op, name, value):
    args = dict(VALID[op][0])
    if name in OPS[op].fields:
        return
    args[name] = value
    refused(op, args, f"{name}: unknown field")


def test_several_problems_are_all_named():
    message = refused("spawn", {"argv": [], "cols": "x", "extra": 1})
    assert message.count(";") == 2


# -- spawn's own rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"argv": [""]}, "argv: the program (argv[0]) must not be empty"),
        ({"argv": ["sh\0"]}, "argv: arguments must not contain NUL"),
        ({"argv": ["sh", "a\0b"]}, "argv: arguments must not contain NUL"),
        ({"argv": ["sh"], "cwd": "tmp"}, "cwd: must be an absolute path"),
        ({"argv": ["sh"], "cwd": ""}, "cwd: must be an absolute path"),
        ({"argv": ["sh"], "cwd": "~/x"}, "cwd: must be an absolute path"),
        ({"argv": ["sh"], "cwd": "/tmp\0x"}, "cwd: a path must not contain NUL"),
        ({"argv": ["sh"], "project": "p"}, "project: must be an absolute path"),
        ({"argv": ["sh"], "project": "/p\0"}, "project: a path must not contain NUL"),
        ({"argv": ["sh"], "env": {"": "x"}}, "env: invalid variable name ''"),
        ({"argv": ["sh"], "env": {"A=B": "x"}}, "env: invalid variable name 'A=B'"),
        ({"argv": ["sh"], "env": {"A\0": "x"}}, "env: invalid variable name"),
        ({"argv": ["sh"], "env": {"A": "x\0"}}, "env: the value of A must not contain NUL"),
    ],
)
def test_spawn_rules(args, fragment):
    refused("spawn", args, fragment)


@pytest.mark.parametrize("name", ["a", "_", "web", "A.b@c:d+e-f_9", "x" * 64, "_123"])
def test_good_names(name):
    parsed = parse_args("spawn", {"argv": ["sh"], "name": name})
    assert isinstance(parsed, SpawnArgs)
    assert parsed.name == name


@pytest.mark.parametrize(
    "name", ["", "1", "123", "9lives", "-x", ".x", "a b", "a/b", "é", "x" * 65, "a\0", "\nabc"]
)
def test_bad_names(name):
    refused("spawn", {"argv": ["sh"], "name": name}, "name: a name starts with a letter or _")


@pytest.mark.parametrize("name", ["web\n", "x" * 64 + "\n"])
def test_a_trailing_newline_is_not_part_of_a_name(name):
    refused("spawn", {"argv": ["sh"], "name": name}, "name")


# -- write ------------------------------------------------------------------------------------


def payload_of(args: dict[str, Any]) -> bytes:
    parsed = parse_args("write", {"session": "1", **args})
    assert isinstance(parsed, WriteArgs)
    return parsed.payload()


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"data": None, "data_b64": None},
        {"data": "x", "data_b64": "eA=="},
        {"data": "", "data_b64": ""},
    ],
)
def test_write_needs_exactly_one_payload(args):
    refused("write", {"session": "1", **args}, "give exactly one of 'data' and 'data_b64'")


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_write_b64_is_byte_exact(data):
    assert payload_of({"data_b64": base64.b64encode(data).decode()}) == data


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=100))
def test_write_data_is_utf8(text):
    assert payload_of({"data": text}) == text.encode("utf-8")


def test_write_data_carries_raw_bytes_as_surrogate_escapes():
    assert payload_of({"data": "a\udcff\udc80"}) == b"a\xff\x80"


@pytest.mark.parametrize("b64", ["!!", "eA", "eA=", "e A==", "eA==\n", "eA==eA=="])
def test_write_bad_base64_is_refused_when_decoded(b64):
    with pytest.raises(ProtocolError) as info:
        payload_of({"data_b64": b64})
    assert info.value.code == BAD_REQUEST
    assert info.value.message.startswith("write: data_b64 is not base64")


def test_write_data_that_cannot_be_encoded_is_a_bad_request():
    with pytest.raises(ProtocolError) as info:
        payload_of({"data": "\ud800"})
    assert info.value.code == BAD_REQUEST


def test_parsed_args_are_frozen():
    parsed = parse_args("resize", {"session": "1", "cols": 1, "rows": 1})
    with pytest.raises(ValueError):
        parsed.cols = 2  # type: ignore[misc]
