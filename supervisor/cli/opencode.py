"""`context` and `opencode which|open`: the OpenCode project of a spawn, and of a session."""

import argparse
import contextlib
import os
import shutil
from collections.abc import Mapping

from supervisor import workdir
from supervisor.cli import render
from supervisor.cli.common import Failure, caller_directory, client, terminal_size


def cmd_context(args: argparse.Namespace) -> int:
    if args.action != "show":
        return _pin(args)
    with client(args) as c:
        context = c.call(
            "context",
            cwd=workdir.absolute(args.cwd) if args.cwd else workdir.current(),
            project=workdir.absolute(args.project) if args.project else None,
            caller_directory=caller_directory(),
        )
    context["warnings"] = context_warnings(context.get("shim_dir"))
    if args.json:
        render.print_json(context)
    else:
        print(render.context_text(context))
    return 0


def context_warnings(shim_dir: str | None, env: Mapping[str, str] | None = None) -> list[str]:
    """What in this caller's environment would take a nested OpenCode elsewhere."""
    source = os.environ if env is None else env
    warnings = []
    here = os.getcwd()
    pwd = source.get("PWD")
    if pwd is not None and not workdir.names_directory(pwd, here):
        warnings.append(
            f"PWD says {pwd}, but this process runs in {here}: OpenCode's `run` takes its "
            "directory from PWD, so a real `opencode` started from here without the shim would "
            "work in the wrong directory (the shim corrects PWD)"
        )
    path = source.get("PATH", os.defpath)
    inside = bool(source.get("PTYSUP_SESSION")) or (
        shim_dir is not None and shim_dir in path.split(os.pathsep)
    )
    if shim_dir is not None and inside:
        found = shutil.which("opencode", path=path)
        if found is None or os.path.dirname(os.path.realpath(found)) != os.path.realpath(shim_dir):
            what = found or "no `opencode` at all"
            warnings.append(
                f"the `opencode` found first on PATH is {what}, not the shim in {shim_dir}: "
                "it will not keep to this terminal's project. Something put it ahead of the "
                "shim after the terminal started (a shell start-up file, or PATH set by hand)"
            )
    return warnings


def cmd_opencode(args: argparse.Namespace) -> int:
    from supervisor.opencode.sessions import InvalidSessionId, SessionNotFound, find_session

    try:
        record = find_session(args.session_id)
    except (SessionNotFound, InvalidSessionId) as exc:
        raise Failure(str(exc)) from None
    if args.oc_cmd == "which":
        found = {
            "session_id": record.session_id,
            "project_id": record.project_id,
            "directory": record.directory,
            "title": record.title,
            "store": record.store,
        }
        if args.json:
            render.print_json(found)
        else:
            print("\n".join(f"{k + ':':11} {v}" for k, v in found.items()))
        return 0
    return _open(args, record.session_id, record.directory)


def _open(args: argparse.Namespace, session_id: str, directory: str) -> int:
    from supervisor.cli.interactive import spawn_attached
    from supervisor.opencode.probe import OpenCodeNotFound, ProbeFailed, find_opencode, probe
    from supervisor.paths import resolve_socket

    if not os.path.isdir(directory):
        raise Failure(f"the session's directory is gone: {directory}")
    socket_dir = os.path.dirname(resolve_socket(args.socket))
    try:
        binary = find_opencode(
            path=os.environ.get("PATH", os.defpath),
            skip=[os.path.join(socket_dir, "shim")],
            binary=os.environ.get("PTYSUP_OPENCODE_BIN") or None,
        )
        caps = probe(binary, os.path.join(socket_dir, "cache"))
    except (OpenCodeNotFound, ProbeFailed, OSError) as exc:
        raise Failure(str(exc)) from None
    if not (caps.tui_project and caps.tui_session):
        raise Failure(
            f"{binary} ({caps.version}) cannot open a session by id "
            "(its TUI lacks a project argument or --session)"
        )
    request = {
        "argv": [binary, directory, "--session", session_id],
        "cwd": directory,
        "env": dict(os.environ),
        "name": args.name,
        "project": directory,
    }
    size = terminal_size()
    if size is not None:
        request["cols"], request["rows"] = size
    with client(args) as c:
        if args.detach:
            print(c.call("spawn", **request)["id"])
            return 0
        return spawn_attached(c, request, args.detach_key, args.relay)


def _pin(args: argparse.Namespace) -> int:
    """`context release|pin`: what the `opencode` shim of this terminal does after a `cd`."""
    from supervisor.opencode.shim import released_marker
    from supervisor.paths import resolve_socket

    session = os.environ.get("PTYSUP_SESSION")
    if not session:
        raise Failure(f"context {args.action}: this shell runs in no supervised terminal")
    marker = released_marker(os.path.dirname(resolve_socket(args.socket)), session)
    if args.action == "release":
        os.makedirs(os.path.dirname(marker), mode=0o700, exist_ok=True)
        with open(marker, "w"):
            pass
        print(f"session {session}: `opencode` now works in the project of the directory it runs in")
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)
        print(f"session {session}: `opencode` keeps to the terminal's project again")
    return 0
