"""`new`, `attach` and `opencode open`: this terminal joined to a session's."""

import argparse
from typing import TYPE_CHECKING, Any

from supervisor.cli.common import Failure, client, notice, spawn_request, terminal_size

if TYPE_CHECKING:
    from supervisor.client.blocking import Client


def spawned(session: dict[str, Any]) -> dict[str, Any]:
    """A spawn's reply in the form of an attach's."""
    return {
        "session": session,
        "sub": session["sub"],
        "start": 0,
        "redraw": None,
        "terminal": session.get("terminal"),
    }


def attach_to(c: "Client", args: argparse.Namespace, session: str, key: int | None) -> int:
    from supervisor.cli.attach import attach_loop

    size = terminal_size()
    read_only = getattr(args, "read_only", False)
    history = getattr(args, "history", None)
    first = {"history": history} if history else {}
    return attach_loop(
        c,
        lambda extra: c.call(
            "attach",
            session=session,
            read_only=read_only,
            cols=size[0] if size else None,
            rows=size[1] if size else None,
            **first,
            **extra,
        ),
        key,
        read_only=read_only,
        relay=args.relay,
    )


def spawn_attached(c: "Client", request: dict[str, Any], key: int | None, relay: bool) -> int:
    from supervisor.cli.attach import attach_loop

    return attach_loop(
        c,
        lambda extra: spawned(c.call("spawn", input=True, **request, **extra)),
        key,
        relay=relay,
    )


def cmd_new(args: argparse.Namespace) -> int:
    from supervisor.client.errors import DaemonError

    size = args.size or terminal_size()
    with client(args) as c:
        if args.attach_existing:
            try:
                existing = c.info(args.name)
            except DaemonError as exc:
                if exc.code != "not_found":
                    raise
                existing = None
            if existing is not None and existing["state"] == "running":
                return attach_to(c, args, existing["id"], args.detach_key)
            if existing is not None:
                notice(f"session {args.name} had exited; starting it again")
                c.remove(existing["id"])
        return spawn_attached(c, spawn_request(args, size), args.detach_key, args.relay)


def most_recent(sessions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The running session a client attached to last, else the newest running one."""
    running = [s for s in sessions if s["state"] == "running"]
    if not running:
        return None
    return max(running, key=lambda s: (s.get("used_at") or s["created_at"], int(s["id"])))


def cmd_attach(args: argparse.Namespace) -> int:
    with client(args) as c:
        session = args.session
        if session is None:
            found = most_recent(c.list())
            if found is None:
                raise Failure("no running session to attach to")
            session = found["id"]
        return attach_to(c, args, session, args.detach_key)
