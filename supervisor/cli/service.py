"""`ptysup service`: render, install, uninstall and show the systemd or launchd service."""

import argparse
import os
import sys
from collections.abc import Callable

AddParser = Callable[[str, str], argparse.ArgumentParser]


def _manager_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--systemd",
        dest="manager",
        action="store_const",
        const="systemd",
        help="a systemd user service (the default on Linux)",
    )
    group.add_argument(
        "--launchd",
        dest="manager",
        action="store_const",
        const="launchd",
        help="a launchd agent (the default on macOS)",
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the daemon's socket (default: $PTYSUP_SOCKET, else a private per-user path)",
    )


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", add: AddParser) -> None:
    p = add("service", "run the daemon as a systemd user service or a launchd agent")
    actions = p.add_subparsers(dest="service_cmd", metavar="ACTION", required=True)

    q = actions.add_parser("render", help="write the unit files for this installation to DIR")
    _manager_flags(q)
    q.add_argument("--output", "-o", metavar="DIR", required=True, help="where to write them")

    q = actions.add_parser("install", help="install the units in the usual place and start them")
    _manager_flags(q)
    q.add_argument(
        "--socket-activation",
        action="store_true",
        help="let the service manager own the socket and start the daemon on the first client",
    )
    q.add_argument("--dry-run", "-n", action="store_true", help="print what would be done")

    q = actions.add_parser("uninstall", help="stop the service and remove its units")
    _manager_flags(q)
    q.add_argument("--dry-run", "-n", action="store_true", help="print what would be done")

    q = actions.add_parser("status", help="whether the service is installed, and its state")
    _manager_flags(q)


def run(args: argparse.Namespace) -> int:
    from supervisor.paths import resolve_socket
    from supervisor.service import install
    from supervisor.service.units import ServiceError

    manager = args.manager or install.default_manager()
    socket_path = resolve_socket(getattr(args, "socket", None))
    env = dict(os.environ)
    try:
        if args.service_cmd == "render":
            return _render(args.output, manager, socket_path, env)
        if args.service_cmd == "status":
            installed, lines = install.status_lines(manager, env)
            print("\n".join(lines))
            return 0 if installed else 1
        if args.service_cmd == "install":
            plan = install.install_plan(
                manager, socket_path, socket_activation=args.socket_activation, env=env
            )
            conflict = install.install_conflict(
                manager, socket_path, socket_activation=args.socket_activation, env=env
            )
            if conflict and not args.dry_run:
                raise ServiceError(conflict)
            if conflict:
                print(f"ptysup: warning: installing now would fail: {conflict}", file=sys.stderr)
        else:
            plan = install.uninstall_plan(manager, env)
        if args.dry_run:
            if not plan.steps:
                print(plan.done)
                return 0
            for line in install.describe(plan):
                print(line)
            if plan.steps and install.find_tool(plan, env) is None:
                print(f"ptysup: {install.missing_tool_message(plan)}", file=sys.stderr)
                return 1
            return 0
        install.execute(plan, env)
        print(plan.done)
        return 0
    except (ServiceError, OSError) as exc:
        print(f"ptysup: service {args.service_cmd}: {exc}", file=sys.stderr)
        return 1


def _render(output: str, manager: str, socket_path: str, env: dict[str, str]) -> int:
    from supervisor.service import units

    directory = os.path.abspath(output)
    os.makedirs(directory, exist_ok=True)
    command = units.daemon_command()
    files: dict[str, bytes]
    if manager == "systemd":
        rendered = units.render_systemd(command, socket_path, env.get("XDG_RUNTIME_DIR"))
        files = {name: text.encode() for name, text in rendered.items()}
    else:
        log = str(units.launchd_log(env))
        files = {units.PLIST_NAME: units.render_launchd(command, socket_path, log)}
    from supervisor.safedir import SafeDir, SafeDirError

    try:
        with SafeDir.open(directory, follow=True, owner="the rendered unit's") as target:
            for name, content in files.items():
                target.write(name, content)
                print(os.path.join(directory, name))
    except SafeDirError as exc:
        print(f"ptysup: service render: {exc}", file=sys.stderr)
        return 1
    return 0
