"""`ptysup`: parse, make one client call (or a stream of them), render. No logic of its own."""

import sys
from collections.abc import Callable

from supervisor.cli.parser import build_parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    if args.cmd == "write" and args.text == ["-"]:
        args.text = None
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

    from supervisor.cli import commands
    from supervisor.client.errors import ClientError, DaemonError

    handler: Callable[..., int] = getattr(commands, "cmd_" + args.cmd)
    try:
        return handler(args)
    except DaemonError as exc:
        print(f"ptysup: {exc.message}", file=sys.stderr)
        return commands.failure_status(args.cmd)
    except ClientError as exc:
        print(f"ptysup {args.cmd}: {exc}", file=sys.stderr)
        return commands.failure_status(args.cmd)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141
