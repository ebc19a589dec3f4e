"""`ptysup opencode plugin install|uninstall|status`: parse → call → render."""

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from supervisor.cli import render

if TYPE_CHECKING:
    from supervisor.opencode import plugin_install as pi


def add_parser(
    oc: "argparse._SubParsersAction[argparse.ArgumentParser]",
    globals_: Callable[..., None],
) -> None:
    p = oc.add_parser("plugin", help="the OpenCode plugin: the agent's terminals in the daemon")
    actions = p.add_subparsers(dest="plugin_cmd", metavar="ACTION", required=True)
    for name, text in (
        ("install", "install it (global OpenCode config, or --project DIR); again: updates it"),
        ("uninstall", "remove it"),
        ("status", "is it installed and up to date, and which OpenCode is there"),
    ):
        q = actions.add_parser(name, help=text, description=text)
        globals_(q, top=False)
        q.add_argument(
            "--project", metavar="DIR", help="a project's .opencode/ instead of the global config"
        )
        q.add_argument("--json", action="store_true")
        if name != "uninstall":
            q.add_argument("--opencode", metavar="BIN", help="the opencode to check")
        if name == "install":
            q.add_argument(
                "--force", action="store_true", help="install even for a too old OpenCode"
            )


def run(args: argparse.Namespace) -> int:
    from supervisor.opencode import plugin_install as pi

    try:
        target = pi.target_dir(args.project)
        project = args.project is not None
        if args.plugin_cmd == "install":
            report = pi.install(target, opencode=args.opencode, force=args.force, project=project)
        elif args.plugin_cmd == "uninstall":
            report = pi.uninstall(target, project=project)
        else:
            report = pi.status(target, opencode=args.opencode, project=project)
    except (pi.PluginInstallError, OSError) as exc:
        print(f"ptysup opencode plugin {args.plugin_cmd}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        render.print_json(report.as_dict())
    else:
        print(_text(args.plugin_cmd, report))
    if args.plugin_cmd == "status" and not (report.installed and report.up_to_date):
        return 1
    return 0


def _text(action: str, report: "pi.Report") -> str:
    plugins = report.target / "plugins"
    if action == "install":
        head = (
            f"installed in {plugins}"
            if report.changed
            else f"already installed in {plugins}; nothing changed"
        )
        lines = [head, *(f"  {c}" for c in report.changed)]
        if report.opencode:
            lines.append(f"for {report.opencode} ({report.opencode_version or 'version unknown'})")
        lines.append(
            "OpenCode loads it at its next start: the agent's pty_* tools and bash commands "
            "now run with this project's context; watch a terminal with `ptysup attach ID`"
        )
    elif action == "uninstall":
        lines = [*report.changed] or [f"not installed in {plugins}; nothing to remove"]
    else:
        state = "not installed"
        if report.installed:
            state = (
                "installed, up to date"
                if report.up_to_date
                else "installed, out of date: run `ptysup opencode plugin install` again"
            )
        lines = [f"plugin:   {state} ({plugins})"]
        version = report.opencode_version or "version unknown"
        lines.append(
            f"opencode: {report.opencode} ({version})" if report.opencode else "opencode: not found"
        )
    lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines)
