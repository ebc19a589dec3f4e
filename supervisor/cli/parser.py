"""The command line: every command, flag and help text. A public contract: keep it stable."""

import argparse
import os

from supervisor.cli.argtypes import (
    detach_key_arg,
    dimension_arg,
    env_arg,
    lines_arg,
    offset_arg,
    seconds_arg,
    since_arg,
    size_arg,
)

DEFAULT_DETACH_KEY = "ctrl-\\"
SHELLS = ("bash", "zsh", "fish")


def _globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--socket",
        metavar="PATH",
        default=default,
        help="the daemon's socket (default: $PTYSUP_SOCKET, else a private per-user path)",
    )
    parser.add_argument(
        "--no-start",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="do not start a daemon when none is running",
    )


def _attach_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--detach-key",
        type=detach_key_arg,
        default=DEFAULT_DETACH_KEY,
        metavar="KEY",
        help="the key that detaches: ctrl-X, ^X, one character, or none (default: ctrl-\\)",
    )
    p.add_argument(
        "--relay",
        action="store_true",
        help="carry the terminal's bytes over the control socket instead of handing the "
        "terminal itself to the daemon",
    )


def _spawn_options(parser: argparse.ArgumentParser, *, name: bool = True) -> None:
    if name:
        parser.add_argument("--name", help="a unique name for the session")
    parser.add_argument("--cwd", metavar="DIR", help="working directory (default: the current)")
    parser.add_argument(
        "--env",
        metavar="K=V",
        action="append",
        type=env_arg,
        default=[],
        help="add or override a variable of the child's environment (repeatable)",
    )
    parser.add_argument(
        "--clean-env",
        action="store_true",
        help="start from a minimal environment instead of this one",
    )
    parser.add_argument(
        "--project",
        metavar="DIR",
        help="the OpenCode project directory the child works for",
    )
    parser.add_argument(
        "--label",
        metavar="K=V",
        action="append",
        type=env_arg,
        default=[],
        help="tag the session (repeatable); `list --label` selects by it",
    )


def _command(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")


class _Formatter(argparse.HelpFormatter):
    """argparse's, without importing shutil (for the terminal's width) on every call."""

    def __init__(self, prog: str) -> None:
        try:
            width = os.get_terminal_size(2).columns
        except OSError:
            width = 80
        super().__init__(prog, width=max(width, 40) - 2)


class _Unbuilt:
    """The parser of a command other than the one being run: building all ~30 costs each
    call tens of milliseconds (argparse looks up translations on every help text)."""

    def __getattr__(self, name: str) -> "_Unbuilt":
        return self

    def __call__(self, *args: object, **kwargs: object) -> "_Unbuilt":
        return self


def command_of(argv: list[str]) -> str | None:
    """The command `argv` runs, when it is plain to see before parsing; else None."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--socket":
            i += 2
            continue
        if arg in ("-h", "--help", "--"):
            return None
        if not arg.startswith("-"):
            return arg
        i += 1
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, the parser of that command alone is built."""
    parser = argparse.ArgumentParser(
        prog="ptysup",
        formatter_class=_Formatter,
        description="Pseudo-terminals that outlive the program that opened them.",
    )
    _globals(parser, top=True)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")

    def add(name: str, help_text: str, *aliases: str) -> argparse.ArgumentParser:
        if only is not None and only != name and only not in aliases:
            return _Unbuilt()  # type: ignore[return-value]
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            aliases=list(aliases),
            formatter_class=_Formatter,
        )
        _globals(p, top=False)
        return p

    p = add("daemon", "run the daemon in the foreground")
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("--resume", metavar="STATE", help=argparse.SUPPRESS)
    p.add_argument("--check-state", metavar="STATE", help=argparse.SUPPRESS)
    p.add_argument("--no-notify", action="store_true", help=argparse.SUPPRESS)

    add("upgrade", "re-execute the daemon in place with the installed code; sessions live on")

    p = add("status", "show the daemon's state")
    p.add_argument("--json", action="store_true")

    add("stop", "stop the daemon, ending every session")

    for name, text in (
        ("spawn", "start a command in a new terminal; print its id"),
        ("new", "start a command in a new terminal and attach to it"),
    ):
        p = add(name, text)
        _spawn_options(p)
        p.add_argument("--size", metavar="COLSxROWS", type=size_arg)
        if name == "spawn":
            p.add_argument("--json", action="store_true", help="print the session object")
        else:
            _attach_options(p)
            p.add_argument(
                "-A",
                "--attach",
                dest="attach_existing",
                action="store_true",
                help="attach to the session named by --name if it runs, else create it",
            )
        _command(p)

    p = add("list", "list sessions (ATT: clients attached)", "ls")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--label",
        metavar="K=V",
        action="append",
        type=env_arg,
        default=[],
        help="only the sessions with this label (repeatable: all must match)",
    )

    p = add("info", "show one session")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--json", action="store_true")

    p = add("write", "type TEXT into a session (`-` copies stdin byte-exact)")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("text", nargs="+", metavar="TEXT")
    p.add_argument("--enter", action="store_true", help="press Enter after the text")
    p.add_argument(
        "--json",
        action="store_true",
        help="print {written, offset}: the output offset the text was typed at, for "
        "`expect --since`; with --expect, print the match as `expect --json` does",
    )
    p.add_argument(
        "--expect",
        metavar="REGEX",
        help="then wait for REGEX in the output that follows the text, its echo skipped "
        "(exit 0 on a match, 1 on none)",
    )
    p.add_argument(
        "--timeout",
        type=seconds_arg,
        default=None,
        metavar="SEC",
        help="with --expect: give up after SEC seconds (default: wait for ever)",
    )

    p = add("read", "print a session's output")
    p.add_argument("session", metavar="SESSION")
    p.add_argument(
        "--since",
        type=offset_arg,
        default=0,
        metavar="OFFSET",
        help="the absolute byte offset to start at (default: 0, the oldest byte kept)",
    )
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing until the session ends (across `ptysup upgrade`)",
    )
    p.add_argument("--json", action="store_true")

    p = add("expect", "wait until a session's output matches REGEX (exit 0; 1 on timeout)")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("regex", metavar="REGEX")
    p.add_argument(
        "--since",
        type=since_arg,
        default=0,
        metavar="OFFSET|now",
        help="search the output from this offset: 0, the default, searches all the output "
        "kept; `now` only what comes next; `write --json` gives the offset a text was typed at",
    )
    p.add_argument(
        "--timeout",
        type=seconds_arg,
        default=None,
        metavar="SEC",
        help="give up after SEC seconds (default: wait for ever)",
    )
    p.add_argument("--json", action="store_true")

    p = add("wait", "wait for a session to end; exit with its status (124 on timeout)")
    p.add_argument("session", metavar="SESSION")
    p.add_argument(
        "--timeout",
        type=seconds_arg,
        default=None,
        metavar="SEC",
        help="give up after SEC seconds (default: wait for ever)",
    )
    p.add_argument("--json", action="store_true")

    p = add("kill", "end every process of a session's terminal, or send one signal")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--signal", "-s", metavar="SIG", help="send only SIG to the child's group")

    p = add("resize", "set a session's terminal size")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("cols", type=dimension_arg, metavar="COLS")
    p.add_argument("rows", type=dimension_arg, metavar="ROWS")

    p = add("rm", "end sessions that run, and forget them")
    p.add_argument("sessions", nargs="+", metavar="SESSION")

    p = add("prune", "forget every session that has exited")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing")

    p = add("rename", "give a session a new name")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("name", metavar="NAME")

    p = add("run", "run a command in a new terminal, stream its output, exit with its status")
    _spawn_options(p)
    p.add_argument(
        "--timeout",
        type=seconds_arg,
        default=None,
        metavar="SEC",
        help="kill the command after SEC seconds and exit 124 (default: no limit)",
    )
    p.add_argument("--keep", action="store_true", help="keep the session after it ends")
    p.add_argument(
        "--no-stdin",
        action="store_true",
        help="give the command none of this stdin (by default a pipe or file is copied, then "
        "an end-of-file; a terminal's keys are passed on as typed)",
    )
    p.add_argument(
        "--terminal-bytes",
        action="store_true",
        help="the terminal's bytes exactly, also into a pipe or file: CR LF line ends, and "
        "piped input echoed (by default neither, unless the output is a terminal)",
    )
    p.add_argument(
        "--relay",
        action="store_true",
        help="receive the output over the control socket even when it goes to a terminal",
    )
    _command(p)

    p = add("context", "show the OpenCode context a spawn from here would get, and why")
    p.add_argument(
        "action",
        nargs="?",
        choices=("show", "release", "pin"),
        default="show",
        help="release: let the `opencode` shim of this terminal follow `cd` from now on; "
        "pin: keep it in the terminal's project again (the default)",
    )
    p.add_argument("--cwd", metavar="DIR", help="the working directory to ask about")
    p.add_argument("--project", metavar="DIR", help="an explicit project directory")
    p.add_argument("--json", action="store_true")

    p = add("completion", "print a shell completion script: bash, zsh or fish")
    p.add_argument("shell", choices=SHELLS, metavar="SHELL")
    p.add_argument("--sessions", action="store_true", help=argparse.SUPPRESS)

    p = add("opencode", "OpenCode sessions: find their project, reopen them in it")
    oc = p.add_subparsers(dest="oc_cmd", metavar="ACTION", required=True)
    q = oc.add_parser("which", help="the project, directory and title of an OpenCode session")
    _globals(q, top=False)
    q.add_argument("session_id", metavar="SESSION_ID")
    q.add_argument("--json", action="store_true")
    q = oc.add_parser(
        "open", help="open an OpenCode session in a supervised terminal of its own project"
    )
    _globals(q, top=False)
    q.add_argument("session_id", metavar="SESSION_ID")
    q.add_argument("--name", help="a unique name for the terminal")
    q.add_argument("--detach", action="store_true", help="start it without attaching")
    _attach_options(q)
    if only in (None, "opencode"):
        from supervisor.cli import plugin

        plugin.add_parser(oc, _globals)

    p = add("attach", "attach this terminal to a session")
    p.add_argument(
        "session",
        metavar="SESSION",
        nargs="?",
        help="default: the running session attached to last, else the newest running one",
    )
    _attach_options(p)
    p.add_argument(
        "--read-only", action="store_true", help="observe: never take control, type nothing"
    )
    p.add_argument(
        "--history",
        type=lines_arg,
        metavar="N",
        help="show the last N lines of scrollback before the screen (default: none)",
    )

    p = add("screen", "show what a session's terminal displays now")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--json", action="store_true")
    p.add_argument("--ansi", action="store_true", help="print it with colours, to redraw it")
    p.add_argument(
        "--history",
        type=lines_arg,
        metavar="N",
        help="also the last N lines of scrollback, before the screen (as tmux's capture-pane "
        "-S -N)",
    )

    p = add("events", "stream what happens to sessions, one line per event")
    p.add_argument("--json", action="store_true")

    if only in (None, "service"):
        from supervisor.cli import service

        service.add_parser(sub, add)
    return parser
