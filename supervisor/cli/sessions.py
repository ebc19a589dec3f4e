"""Commands on sessions as a whole: spawn, list, info, rename, kill, resize, rm, prune, wait."""

from __future__ import annotations

import time

from supervisor.cli import render
from supervisor.cli.common import (
    RECONNECT_TIMEOUT,
    Failure,
    client,
    notice,
    reconnect_status,
    spawn_request,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from supervisor.cli.common import ParsedArgs


def cmd_spawn(args: argparse.Namespace) -> int:
    with client(args) as c:
        session = c.call("spawn", **spawn_request(args, args.size))
    if args.json:
        render.print_json(session)
    else:
        print(session["id"])
    return 0


def cmd_list(args: ParsedArgs) -> int:
    with client(args) as c:
        sessions = c.list(dict(getattr(args, "label", None) or []))
    if args.json:
        render.print_json(sessions)
    elif sessions:
        print(render.session_table(sessions))
    return 0


def cmd_info(args: ParsedArgs) -> int:
    with client(args) as c:
        session = c.info(args.session)
    if args.json:
        render.print_json(session)
    else:
        print(render.session_details(session))
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.call("rename", session=args.session, name=args.name)
    return 0


def cmd_resize(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.resize(args.session, args.cols, args.rows)
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.kill(args.session, args.signal)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    """Every session named is looked up first: one unknown name removes none."""
    from supervisor.client.errors import DaemonError

    with client(args) as c:
        ids: list[str] = []
        for ref in args.sessions:
            sid = c.info(ref)["id"]
            if sid not in ids:
                ids.append(sid)
        for sid in ids:
            try:
                c.remove(sid)
            except DaemonError as exc:
                if exc.code != "not_found":  # removed meanwhile by someone else: done
                    raise
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from supervisor.client.errors import DaemonError

    removed = 0
    with client(args) as c:
        for session in c.list():
            if session["state"] != "exited":
                continue
            try:
                c.remove(session["id"])
            except DaemonError as exc:
                if exc.code != "not_found":
                    raise
                continue
            removed += 1
    if not args.quiet:
        print(f"removed {render.count(removed, 'exited session')}")
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    from supervisor.client.errors import ConnectionLost

    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    daemon_pid = None
    while True:
        try:
            with client(args) as c:
                if daemon_pid is not None and c.daemon_pid != daemon_pid:
                    raise Failure(
                        f"the daemon was replaced by a new one; session {args.session} is gone"
                    )
                daemon_pid = c.daemon_pid
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                result = c.wait(args.session, left)
            break
        except ConnectionLost:
            if reconnect_status(args.socket, RECONNECT_TIMEOUT) is None:
                raise
    session = result["session"]
    if args.json:
        render.print_json({"timed_out": result["timed_out"], **session})
    if result["timed_out"]:
        if not args.json:
            notice(f"session {session['id']} still runs")
        return 124
    return render.exit_status(session)
