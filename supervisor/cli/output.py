"""A session's bytes: `write` into it, `read` and `screen` out of it, `events` about all."""

import argparse
import base64
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from supervisor.cli import render
from supervisor.cli.common import client, follow_again, next_for, notice, write_out

if TYPE_CHECKING:
    from supervisor.client.blocking import Client


def _write(c: "Client", session: str, data: bytes) -> dict[str, Any]:
    return c.call("write", session=session, data_b64=base64.b64encode(data).decode("ascii"))


def cmd_write(args: argparse.Namespace) -> int:
    from supervisor.cli import expecting

    pattern = expecting.compile_pattern(args.expect) if args.expect is not None else None
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    with client(args) as c:
        if args.text is None:
            first: dict[str, Any] | None = None
            written = 0
            stdin = sys.stdin.buffer
            typed = b""
            while chunk := stdin.read1(256 * 1024):
                result = _write(c, args.session, chunk)
                first = first or result
                written += result["written"]
                typed = (typed + chunk)[-4096:]
            if args.enter:
                result = _write(c, args.session, b"\r")
                first = first or result
                written += result["written"]
                typed += b"\r"
        else:
            typed = (" ".join(args.text) + ("\r" if args.enter else "")).encode(
                "utf-8", "surrogateescape"
            )
            first = _write(c, args.session, typed)
            written = first["written"]
        offset = first.get("offset") if first else None
        if offset is None and first is None:
            offset = c.info(args.session)["end"]
        if pattern is None:
            if args.json:
                render.print_json({"written": written, "offset": offset})
            return 0
        match, base, reason = expecting.wait_for_match(
            c, args.session, pattern, offset, deadline, typed=typed
        )
    return expecting.report(args, match, base, reason)


def cmd_read(args: argparse.Namespace) -> int:
    from supervisor.client.errors import ConnectionLost
    from supervisor.protocol.messages import Event, Output

    c = client(args)
    try:
        result = c.call(
            "subscribe", session=args.session, since=args.since, follow=args.follow, lossless=True
        )
        sub = result["sub"]
        if args.json and not args.follow:
            data = b"".join(e.data for e in c.stream(sub) if isinstance(e, Output))
            render.print_json(
                {
                    "start": result["start"],
                    "end": result["end"],
                    "truncated": result["truncated"],
                    "data_b64": base64.b64encode(data).decode("ascii"),
                }
            )
            return 0
        if result["truncated"]:
            notice(f"bytes {args.since}..{result['start']} are no longer kept")
        sid = c.info(args.session)["id"] if args.follow else args.session
        offset = result["start"]
        daemon_pid = c.daemon_pid
        while True:
            try:
                event = next_for(c, sub, None)
            except ConnectionLost:
                if not args.follow:
                    raise
                c.close()
                c, sub, offset = follow_again(args.socket, sid, offset, daemon_pid)
                continue
            if isinstance(event, Output):
                data = event.data[max(0, offset - event.offset) :]
                if args.json:
                    _print_chunk(offset, data)
                else:
                    write_out(data)
                offset = max(offset, event.offset + len(event.data))
            elif isinstance(event, Event) and event.event == "skipped":
                notice(f"skipped bytes {event.fields['from']}..{event.fields['to']}")
            elif isinstance(event, Event) and event.event == "end":
                return 0
    finally:
        c.close()


def _print_chunk(start: int, data: bytes) -> None:
    chunk = {
        "start": start,
        "end": start + len(data),
        "truncated": False,
        "data_b64": base64.b64encode(data).decode("ascii"),
    }
    print(json.dumps(chunk), flush=True)


def cmd_screen(args: argparse.Namespace) -> int:
    with client(args) as c:
        history = {"history": args.history} if args.history else {}
        screen = c.call("screen", session=args.session, ansi=args.ansi, **history)
    if args.json:
        render.print_json(screen)
        return 0
    before = screen.get("history") or []
    if args.ansi:
        text = "".join(line + "\r\n" for line in before) + screen["ansi"]
        write_out(text.encode("utf-8", "replace"))
    else:
        print("\n".join([*before, *screen["lines"]]))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from supervisor.protocol.messages import Event

    with client(args) as c:
        sub = c.call("events")["sub"]
        while True:
            event = next_for(c, sub, None)
            if not isinstance(event, Event):
                continue
            if args.json:
                print(json.dumps({"event": event.event, **event.fields}), flush=True)
            else:
                print(render.event_text(event.event, event.fields), flush=True)
