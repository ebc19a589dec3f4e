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
    redraw: str | None = None
    since = args.since
    if since is None:
        session.fresh()
        await session.view.caught_up()
        # From here on nothing awaits: the redraw is the screen at exactly `since`.
        with session.view.holding() as (since, engine):
            size = (args.cols, args.rows)
            if args.read_only and args.cols and args.rows and size != engine.size:
                from supervisor.screen.fit import fitted

                redraw = fitted(engine, args.cols, args.rows)  # an observer of another size
            else:
                redraw = engine.ansi()
            if args.history:
                redraw = history_text(engine.history(args.history), engine.size[1]) + redraw
    terminal = call.terminal() if args.terminal else None
    if terminal is not None and (shown := _shown_in(hub, terminal.fd, session)) is not None:
        terminal.close()
        raise ProtocolError(
            CONFLICT,
            f"cannot attach session {session.id} here: this terminal is session "
            f"{shown.id}'s, which would then show itself",
        )
    client = call.client
    sub = client.new_subscription(
        session.id,
        follow=True,
        input=not args.read_only,
        lossless=not args.read_only,
        patient=not args.read_only,
    )
    sub.cols, sub.rows = args.cols, args.rows
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
    else:
        client.fit_relayed(sub, session)
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


def history_text(lines: list[str], rows: int) -> str:
    """Scrollback shown before a redraw: the lines, then enough new lines to push them off
    the screen into the terminal's own scrollback, where the redraw does not erase them."""
    if not lines:
        return ""
    return "\x1b[0m" + "\r\n".join(lines) + "\r\n" * rows


@op("screen")
async def screen(hub: Hub, call: Call, args: ScreenArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    view = session.view
    session.fresh()
    await view.caught_up()
    with view.holding() as (offset, engine):
        snap = engine.snapshot()
        history = engine.history(args.history) if args.history else None
        ansi = engine.ansi() if args.ansi else None
    modes = snap.to_dict()["modes"]
    result: dict[str, Any] = {
        "lines": snap.lines,
        "cursor": {
            "x": snap.cursor.x,
            "y": snap.cursor.y,
            "hidden": not snap.cursor.visible,
        },
        "cursor_shape": snap.cursor.shape,
        "cols": snap.cols,
        "rows": snap.rows,
        "alternate": snap.modes.alternate_screen,
        "modes": modes,
        "exact": view.exact,
        "engine": view.describe(),
        "title": session.title,
        "offset": offset,
        "session": session.id,
    }
    if history is not None:
        result["history"] = history
    if ansi is not None:
        result["ansi"] = ansi
    return result


@op("events")
async def events(hub: Hub, call: Call, args: NoArgs) -> dict[str, Any]:
    sub = call.client.new_subscription("", follow=True, input=False)
    hub.registry.event_subs[sub.key] = sub
    return {"sub": sub.id}
