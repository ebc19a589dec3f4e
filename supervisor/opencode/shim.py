"""The `opencode` on every supervised child's PATH.

When the current directory resolves to another project than the one the terminal was
opened for (OPENCODE_DIRECTORY), it runs the real `opencode` anchored in that project:
the TUI gets it as its positional project, `run` and `attach` get `--dir`, every other
subcommand runs with it as the working directory. Explicit user choices win, and inside
the same project nothing changes. The real binary replaces this process (exec), so
stdin, stdout, the terminal and the exit status are the real one's.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SHIM_NAME = "opencode"
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


def _has_option(argv: Sequence[str], names: Sequence[str]) -> bool:
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
    if _has_option(args, sorted(PASS_THROUGH_FLAGS)):
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
        if _has_option(args, ["--dir"]):
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
    if not server_url or _has_option(args, sorted(PASS_THROUGH_FLAGS)):
        return args
    first, after_dashes = _split(args, VALUE_OPTIONS)
    if first is None or after_dashes or args[first] != "attach":
        return args
    url, _ = _split(args[first + 1 :], ATTACH_VALUE_OPTIONS)
    if url is not None:
        return args
    return [*args[: first + 1], server_url, *args[first + 1 :]]


def released_marker(socket_dir: str, session: str) -> str:
    """Present while `ptysup context release` has let session `session`'s shim follow `cd`."""
    return os.path.join(socket_dir, "released", session)


def _pinning(env: Mapping[str, str], socket_dir: str, cwd_project: str) -> str | None:
    """Why the shim leaves the project alone here (None: it pins)."""
    session = env.get("PTYSUP_SESSION")
    if session and os.path.exists(released_marker(socket_dir, session)):
        return "`ptysup context release` let this terminal follow `cd`"
    if env.get("PTYSUP_SHIM_PIN") == "outside-projects" and cwd_project != "global":
        return "PTYSUP_SHIM_PIN=outside-projects, and this directory is a project of its own"
    return None


def shim_dir_of(script: str) -> str:
    return os.path.dirname(os.path.realpath(script))


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    from supervisor.opencode.probe import OpenCodeNotFound, ProbeFailed, find_opencode, probe
    from supervisor.opencode.project import project_for, resolve_directory

    env = os.environ if env is None else env
    args = list(sys.argv[1:] if argv is None else argv)
    here_dir = shim_dir_of(sys.argv[0])
    try:
        real = find_opencode(
            path=env.get("PATH", os.defpath),
            skip=[here_dir],
            binary=env.get("PTYSUP_OPENCODE_BIN") or None,
        )
    except OpenCodeNotFound as exc:
        print(
            f"opencode (ptysup shim): no real opencode to run: {exc}. This `opencode` is "
            "the ptysup shim; install OpenCode, or name it with PTYSUP_OPENCODE_BIN "
            "(the daemon's opencode_bin setting)",
            file=sys.stderr,
        )
        return 127
    if os.path.realpath(real) == os.path.realpath(sys.argv[0]):
        print(f"opencode (ptysup shim): {real} is this shim, not OpenCode", file=sys.stderr)
        return 127
    args = with_server_url(args, env.get("OPENCODE_SERVER_URL"))
    anchor = env.get("OPENCODE_DIRECTORY")
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    if not anchor or not os.path.isdir(anchor) or cwd is None:
        return _exec(real, args, None)
    anchor = resolve_directory(anchor)
    anchored = env.get("OPENCODE_PROJECT_ID") or project_for(anchor).id
    here_project = project_for(cwd).id
    debug = bool(env.get("PTYSUP_SHIM_DEBUG"))
    if here_project == anchored:
        if debug:
            _say(f"{cwd} is in the terminal's project ({anchored}); nothing changed")
        return _exec(real, args, None)
    free = _pinning(env, os.path.dirname(here_dir), here_project)
    if free is not None:
        if debug:
            _say(f"not pinned: {free}; ran as typed in {cwd} ({here_project})")
        return _exec(real, args, None)
    cache = env.get("PTYSUP_SHIM_CACHE") or os.path.join(os.path.dirname(here_dir), "cache")
    try:
        caps = probe(real, cache)
    except (ProbeFailed, OSError) as exc:
        print(f"opencode (ptysup shim): cannot tell what {real} supports: {exc}", file=sys.stderr)
        return _exec(real, args, anchor)
    decided = plan(
        args,
        cwd=cwd,
        anchor=anchor,
        commands=caps.commands,
        tui_project=caps.tui_project,
        run_dir=caps.run_dir,
        attach_dir=caps.attach_dir,
    )
    if debug:
        _say(
            f"pinned to the terminal's project {anchor} ({anchored}), not {cwd} "
            f"({here_project}): {decided.why}: {decided.argv} in {decided.cwd or cwd}. "
            "`ptysup context release` lets this terminal follow `cd`; "
            "PTYSUP_SHIM_PIN=outside-projects pins only outside any project"
        )
    return _exec(real, decided.argv, decided.cwd)


def _say(text: str) -> None:
    print(f"opencode (ptysup shim): {text}", file=sys.stderr)


def _exec(real: str, args: list[str], cwd: str | None) -> int:
    if cwd is not None:
        os.chdir(cwd)
        os.environ["PWD"] = cwd
    try:
        os.execv(real, ["opencode", *args])
    except OSError as exc:
        print(f"opencode (ptysup shim): cannot run {real}: {exc.strerror}", file=sys.stderr)
        return 126
    return 0  # pragma: no cover - execv does not return


def install(directory: str, python: str = sys.executable) -> str:
    """Write the shim as `directory/opencode` (atomically) and return the directory."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    script = (
        f"#!{python}\nimport sys\nfrom supervisor.opencode.shim import main\nsys.exit(main())\n"
    )
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".opencode-")
    try:
        os.write(fd, script.encode())
        os.fchmod(fd, stat.S_IRWXU)
    finally:
        os.close(fd)
    os.replace(tmp, os.path.join(directory, SHIM_NAME))
    return directory
