"""`ptysup`: parse, make one client call (or a stream of them), render. No logic of its own."""

from __future__ import annotations

import sys

from supervisor.cli import quick

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from types import SimpleNamespace

MODULES = {
    "status": "daemonctl",
    "stop": "daemonctl",
    "upgrade": "daemonctl",
    "spawn": "sessions",
    "list": "sessions",
    "info": "sessions",
    "rename": "sessions",
    "resize": "sessions",
    "kill": "sessions",
    "rm": "sessions",
    "prune": "sessions",
    "wait": "sessions",
    "write": "output",
    "read": "output",
    "screen": "output",
    "events": "output",
    "expect": "expecting",
    "run": "run",
    "new": "interactive",
    "attach": "interactive",
    "context": "opencode",
    "opencode": "opencode",
    "completion": "completion",
}
"""Which module of supervisor.cli holds `cmd_<command>`: only that one is imported."""
ALIASES = {"ls": "list"}
OP_PREFIX = (
    "subscribe: ",
    "attach: ",
    "spawn: ",
    "write: ",
    "kill: ",
    "resize: ",
    "rename: ",
    "wait: ",
    "screen: ",
    "context: ",
    "remove: ",
    "info: ",
)
"""The daemon names the op an error came from; the CLI's user never typed it."""


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    args: argparse.Namespace | SimpleNamespace | None = quick.parse(given)
    if args is None:
        parsed = _parse(given)
        if isinstance(parsed, int):
            return parsed
        args = parsed
    args.cmd = ALIASES.get(args.cmd, args.cmd)
    if args.cmd == "daemon":
        from supervisor.daemon.lifecycle.main import run
        from supervisor.paths import resolve_socket

        if args.check_state:
            from supervisor.daemon.lifecycle.main import check_state

            return check_state(args.check_state)
        return run(
            resolve_socket(args.socket),
            args.ready_fd,
            resume=args.resume,
            notify=not args.no_notify,
        )

    if args.cmd == "opencode" and args.oc_cmd == "plugin":
        from supervisor.cli import plugin

        return plugin.run(args)

    if args.cmd == "service":
        from supervisor.cli import service

        return service.run(args)

    from supervisor.cli.common import Failure, failure_status
    from supervisor.client.errors import ClientError, DaemonError

    module = __import__("supervisor.cli." + MODULES[args.cmd], fromlist=["cmd_" + args.cmd])
    handler: Callable[..., int] = getattr(module, "cmd_" + args.cmd)
    try:
        return handler(args)
    except DaemonError as exc:
        print(f"ptysup: {_plain(exc.message)}", file=sys.stderr)
    except (ClientError, Failure) as exc:
        print(f"ptysup: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141
    return failure_status(args.cmd)


def _parse(given: list[str]) -> argparse.Namespace | int:
    """The full parser's reading of the command line, or the status to exit with."""
    from supervisor.cli.parser import build_parser, command_of

    command = command_of(given)
    known = command in MODULES or command in ALIASES or command in ("daemon", "service")
    parser = build_parser(command if known else None)
    args = parser.parse_args(given)
    if args.version:
        from supervisor import __version__

        print(f"ptysup {__version__}")
        return 0
    if args.cmd is None:
        parser.print_help(sys.stderr)
        return 2
    if args.cmd in ("spawn", "new", "run"):
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error(f"{args.cmd}: give the command to run after --")
        args.command = command
    if args.cmd == "new" and args.attach_existing and not args.name:
        parser.error("new -A: give the session's name with --name")
    if args.cmd == "write" and args.text == ["-"]:
        args.text = None
    return args


def _plain(message: str) -> str:
    for prefix in OP_PREFIX:
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
