"""The ops that follow a session's output: subscribe, attach, screen, events."""

import contextlib
import os
from typing import Any

from supervisor.daemon.clients.call import Call
from supervisor.daemon.clients.hub import Hub
from supervisor.daemon.clients.optable import op
from supervisor.daemon.clients.route import Route
from supervisor.daemon.session.session import Session
from supervisor.protocol import CONFLICT, ProtocolError
from supervisor.protocol.requests import (
    AttachArgs,
    NoArgs,
    ScreenArgs,
    SubscribeArgs,
    UnsubscribeArgs,
)


@op("subscribe")
async def subscribe(hub: Hub, call: Call, args: SubscribeArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    sub = call.client.new_subscription(
        session.id, follow=args.follow, input=args.input, lossless=args.lossless
    )
    try:
        return session.subscribe(sub, args.since)
    except BaseException:
        call.client.drop_subscription(sub.id)
        raise


@op("unsubscribe")
async def unsubscribe(hub: Hub, call: Call, args: UnsubscribeArgs) -> dict[str, Any]:
    call.client.drop_subscription(args.sub)
    return {"sub": args.sub}


@op("attach")
async def attach(hub: Hub, call: Call, args: AttachArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    if session.state != "running":
        raise ProtocolError(CONFLICT, f"session {session.id} has exited; nothing to attach to")
    model = await session.screen() if args.since is None else None
    # From here on nothing awaits: the redraw is the screen at exactly `since`.
    terminal = call.terminal() if args.terminal else None
    if terminal is not None and (shown := _shown_in(hub, terminal.fd, session)) is not None:
        terminal.close()
        raise ProtocolError(
            CONFLICT,
            f"cannot attach session {session.id} here: this terminal is session "
            f"{shown.id}'s, which would then show itself",
        )
    since = session.ring.end if args.since is None else args.since
    client = call.client
    sub = client.new_subscription(
        session.id,
        follow=True,
        input=not args.read_only,
        lossless=not args.read_only,
        patient=not args.read_only,
    )
    sub.cols, sub.rows = args.cols, args.rows
    redraw = model.ansi() if model is not None else None
    if terminal is not None:
        client.link_terminal(
            terminal,
            sub,
            session,
            detach_key=args.detach_key,
            read_only=args.read_only,
            first=redraw.encode("utf-8", "replace") if redraw else None,
            start=since,
            keys=True,
        )
        redraw = None
    try:
        result = session.subscribe(sub, since)
    except BaseException:
        client.drop_subscription(sub.id)
        raise
    session.attach(sub, read_only=args.read_only)
    return {
        **result,
        "role": "controller" if session.controller is sub else "observer",
        "redraw": redraw,
        "terminal": terminal is not None,
        "session": session.describe(),
    }


def _shown_in(hub: Hub, fd: int, target: Session) -> Session | None:
    """The session whose terminal `fd` is, if showing `target` there would make a session
    show its own output: the terminal is `target`'s, or that of a session shown (through
    held terminals) in `target`'s."""
    terminals: dict[int, Session] = {}
    for session in hub.registry.sessions.values():
        with contextlib.suppress(OSError):
            terminals[os.stat(session.tty).st_rdev] = session
    first = terminals.get(os.fstat(fd).st_rdev)
    waiting = [first] if first is not None else []
    seen: set[str] = set()
    while waiting:
        current = waiting.pop()
        if current is target:
            return first
        if current.id in seen:
            continue
        seen.add(current.id)
        for sub in current.subscribers.values():
            route = sub.destination
            rdev = route.rdev if isinstance(route, Route) else None
            if rdev is not None and (shown := terminals.get(rdev)):
                waiting.append(shown)
    return None


@op("screen")
async def screen(hub: Hub, call: Call, args: ScreenArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    model = await session.screen()
    snapshot = {
        **model.snapshot(),
        "title": session.title,
        "offset": model.offset,
        "session": session.id,
    }
    if args.ansi:
        snapshot["ansi"] = model.ansi()
    return snapshot


@op("events")
async def events(hub: Hub, call: Call, args: NoArgs) -> dict[str, Any]:
    sub = call.client.new_subscription("", follow=True, input=False)
    hub.registry.event_subs[sub.key] = sub
    return {"sub": sub.id}
