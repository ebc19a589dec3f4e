"""How the `opencode` shim reads and rewrites an `opencode` command line: which subcommand
it runs, which options it was given, and the same command anchored in another directory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

# Options of the top-level command that take a value (the rest are flags).
VALUE_OPTIONS = frozenset(
    {
        "--log-level",
        "--port",
        "--hostname",
        "--mdns-domain",
        "--cors",
        "-m",
        "--model",
        "-s",
        "--session",
        "--prompt",
        "--agent",
        "--replay-limit",
        "--variant",
    }
)
RUN_FILE_OPTIONS = frozenset({"-f", "--file"})
ATTACH_VALUE_OPTIONS = frozenset(
    {"--dir", "-s", "--session", "-p", "--password", "-u", "--username", "--log-level"}
)
PASS_THROUGH_FLAGS = frozenset({"-h", "--help", "-v", "--version"})
SESSION_OPTIONS = ("-s", "--session")
CONTINUE_OPTIONS = ("-c", "--continue")
SESSION_COMMANDS = frozenset({"", "run"})
"""Where `--session` opens a session of this machine's store: the TUI and `run` (whose event
stream, scoped to its own directory, never sees another directory's session finish)."""
CONTINUE_COMMANDS = frozenset({"run"})
"""Where `--continue` looks in the one directory alone (the TUI looks below it too)."""


@dataclass(frozen=True)
class Plan:
    argv: list[str]
    cwd: str | None
    why: str


def _split(argv: Sequence[str], value_options: frozenset[str]) -> tuple[int | None, bool]:
    """Index of the first positional argument, and whether `--` ends the options first."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return (i + 1 if i + 1 < len(argv) else None), True
        if arg.startswith("-") and arg != "-":
            if "=" not in arg and arg in value_options:
                i += 1
            i += 1
            continue
        return i, False
    return None, False


def has_option(argv: Sequence[str], names: Sequence[str]) -> bool:
    return any(a in names or any(a.startswith(n + "=") for n in names) for a in argv)


def _absolute_files(argv: list[str], cwd: str, options: frozenset[str]) -> list[str]:
    """Make the values of `options` (e.g. `run -f x`) absolute, relative to `cwd`."""
    out: list[str] = []
    taking = False
    for arg in argv:
        if taking and not arg.startswith("-"):
            out.append(arg if os.path.isabs(arg) else os.path.join(cwd, arg))
            continue
        taking = False
        name, eq, value = arg.partition("=")
        if name in options and eq and not os.path.isabs(value):
            out.append(f"{name}={os.path.join(cwd, value)}")
            continue
        if arg in options:
            taking = True
        out.append(arg)
    return out


def _absolute_paths(argv: list[str], cwd: str) -> list[str]:
    """Arguments naming an existing path relative to `cwd`, made absolute, so that they
    mean the same once the working directory changes."""
    out = []
    for arg in argv:
        if arg and not arg.startswith("-") and not os.path.isabs(arg) and "://" not in arg:
            candidate = os.path.join(cwd, arg)
            if os.path.exists(candidate):
                out.append(candidate)
                continue
        out.append(arg)
    return out


def plan(
    argv: Sequence[str],
    *,
    cwd: str,
    anchor: str,
    commands: frozenset[str],
    tui_project: bool,
    run_dir: bool,
    attach_dir: bool,
) -> Plan:
    """How to run `opencode argv` from `cwd` so that it works in the project at `anchor`.

    The caller has already established that `cwd` is in another project than `anchor`.
    """
    args = list(argv)
    if has_option(args, sorted(PASS_THROUGH_FLAGS)):
        return Plan(args, None, "help or version")
    first, after_dashes = _split(args, VALUE_OPTIONS)
    command = args[first] if first is not None and not after_dashes else None
    if command is None or command not in commands:
        if first is not None:
            return Plan(args, None, "the project was given explicitly")
        if not tui_project:
            return Plan(args, anchor, "this opencode takes no project argument; ran in it")
        return Plan([anchor, *args], None, "the TUI opens the terminal's project")
    if command in ("run", "attach"):
        if has_option(args, ["--dir"]):
            return Plan(args, None, "--dir was given explicitly")
        supported = run_dir if command == "run" else attach_dir
        if command == "run":
            args = _absolute_files(args, cwd, RUN_FILE_OPTIONS)
        if not supported:
            return Plan(args, anchor, f"this opencode has no `{command} --dir`; ran in it")
        return Plan([*args, "--dir", anchor], None, f"`{command}` gets --dir")
    head, tail = args[: first + 1], args[first + 1 :]
    return Plan([*head, *_absolute_paths(tail, cwd)], anchor, "ran in the terminal's project")


def with_server_url(argv: Sequence[str], server_url: str | None) -> list[str]:
    """`opencode attach` with no URL attaches to this terminal's server (the gateway's
    OPENCODE_SERVER_URL, which carries the project); anything else is left as it is."""
    args = list(argv)
    if not server_url or has_option(args, sorted(PASS_THROUGH_FLAGS)):
        return args
    first, after_dashes = _split(args, VALUE_OPTIONS)
    if first is None or after_dashes or args[first] != "attach":
        return args
    url, _ = _split(args[first + 1 :], ATTACH_VALUE_OPTIONS)
    if url is not None:
        return args
    return [*args[: first + 1], server_url, *args[first + 1 :]]


def option_value(argv: Sequence[str], names: Sequence[str]) -> str | None:
    """The value of the last of the options `names` before `--`, if given."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        if name in names:
            if eq:
                found = value
            elif i + 1 < len(argv):
                found = argv[i + 1]
    return found


def command_of(argv: Sequence[str], commands: frozenset[str]) -> str:
    """The subcommand `argv` runs; "" for the TUI (no subcommand, or a project path)."""
    first, after_dashes = _split(argv, VALUE_OPTIONS)
    if first is None or after_dashes or argv[first] not in commands:
        return ""
    return argv[first]


def asks_for_session(args: Sequence[str]) -> bool:
    return has_option(args, [*SESSION_OPTIONS, *CONTINUE_OPTIONS])
