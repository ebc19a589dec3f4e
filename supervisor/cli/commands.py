"""One function per command: a client call or a stream, rendered."""

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import sys
import time
from typing import Any

from supervisor.cli import render
from supervisor.client.blocking import Client, connect
from supervisor.client.errors import ClientError, ConnectionLost
from supervisor.protocol.messages import Event, Output

OWN_FAILURE = 125
RECONNECT_TIMEOUT = 30.0
STATUS_COMMANDS = frozenset({"run", "wait", "attach", "new", "expect"})


def failure_status(cmd: str) -> int:
    """Commands whose exit status reports a child's or a verdict fail with 125, others 1."""
    return OWN_FAILURE if cmd in STATUS_COMMANDS else 1


def _client(args: argparse.Namespace) -> Client:
    return connect(args.socket, autostart=not args.no_start)


def _child_env(args: argparse.Namespace) -> dict[str, str] | None:
    env: dict[str, str] | None
    if args.clean_env:
        env = None
        if args.env:
            from supervisor.environment import minimal_env

            env = minimal_env()
            env["TERM"] = os.environ.get("TERM", "xterm-256color")
    else:
        env = dict(os.environ)
    for key, value in args.env:
        assert env is not None
        env[key] = value
    return env


def _spawn_request(args: argparse.Namespace, size: tuple[int, int] | None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "argv": args.command,
        "cwd": os.path.abspath(args.cwd) if args.cwd else os.getcwd(),
        "env": _child_env(args),
        "name": getattr(args, "name", None),
        "project": os.path.abspath(args.project) if args.project else None,
        "caller_directory": _caller_directory(),
    }
    if getattr(args, "label", None):
        request["labels"] = dict(args.label)
    if size is not None:
        request["cols"], request["rows"] = size
    return request


def _caller_directory() -> str | None:
    directory = os.environ.get("OPENCODE_DIRECTORY")
    return directory if directory and os.path.isabs(directory) else None


def _terminal_size() -> tuple[int, int] | None:
    """This terminal's size, if it has one (a terminal nobody sized says 0x0)."""
    for fd in (0, 1, 2):
        try:
            size = os.get_terminal_size(fd)
        except OSError:
            continue
        if size.columns > 0 and size.lines > 0:
            return size.columns, size.lines
    return None


# -- daemon -----------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.status()
    if args.json:
        render.print_json(status)
    else:
        print(render.status_text(status))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    try:
        client = connect(args.socket, autostart=False)
    except ClientError as exc:
        print(f"ptysup stop: {exc}", file=sys.stderr)
        return 1
    with client:
        pid = client.stop()
    print(f"stopped the daemon (pid {pid})", file=sys.stderr)
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    started = time.monotonic()
    with connect(args.socket, autostart=False) as client:
        before = client.status()
        client.call("upgrade", reply_timeout=120)
        with contextlib.suppress(ClientError):
            while client.receive(10):
                pass
    after = _reconnect_status(args.socket, timeout=30)
    if after is None:
        print("ptysup upgrade: the daemon did not come back within 30 s", file=sys.stderr)
        return 1
    if after["pid"] != before["pid"]:
        print(
            f"ptysup upgrade: a different daemon answers now (pid {after['pid']}, "
            f"was {before['pid']})",
            file=sys.stderr,
        )
        return 1
    print(
        f"upgraded in place: pid {after['pid']}, version {before['version']} -> "
        f"{after['version']}, {after['sessions']} sessions kept, "
        f"{time.monotonic() - started:.2f} s"
    )
    return 0


def _reconnect_status(socket_path: str | None, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with connect(socket_path, autostart=False, timeout=5) as client:
                return client.status()
        except ClientError:
            time.sleep(0.02)
    return None


# -- sessions ---------------------------------------------------------------------


def cmd_spawn(args: argparse.Namespace) -> int:
    with _client(args) as client:
        session = client.call("spawn", **_spawn_request(args, args.size))
    if args.json:
        render.print_json(session)
    else:
        print(session["id"])
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        sessions = client.list(dict(args.label))
    if args.json:
        render.print_json(sessions)
    elif sessions:
        print(render.session_table(sessions))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with _client(args) as client:
        session = client.info(args.session)
    if args.json:
        render.print_json(session)
    else:
        print(render.session_details(session))
    return 0


def cmd_write(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.text is None:
            stdin = sys.stdin.buffer
            while chunk := stdin.read1(256 * 1024):
                client.write(args.session, chunk)
            if args.enter:
                client.write(args.session, "\r")
        else:
            text = " ".join(args.text) + ("\r" if args.enter else "")
            client.write(args.session, text.encode("utf-8", "surrogateescape"))
    return 0


def cmd_resize(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.resize(args.session, args.cols, args.rows)
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.kill(args.session, args.signal)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.remove(args.session)
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    daemon_pid = None
    while True:
        try:
            with _client(args) as client:
                if daemon_pid is not None and client.daemon_pid != daemon_pid:
                    raise ClientError(
                        f"the daemon was replaced by a new one; session {args.session} is gone"
                    )
                daemon_pid = client.daemon_pid
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                result = client.wait(args.session, left)
            break
        except ConnectionLost:
            if _reconnect_status(args.socket, RECONNECT_TIMEOUT) is None:
                raise
    session = result["session"]
    if args.json:
        render.print_json({"timed_out": result["timed_out"], **session})
    if result["timed_out"]:
        if not args.json:
            print(f"ptysup wait: session {session['id']} still runs", file=sys.stderr)
        return 124
    return render.exit_status(session)


# -- output -----------------------------------------------------------------------


def _write_out(data: bytes) -> None:
    out = sys.stdout.buffer
    out.write(data)
    out.flush()


def cmd_read(args: argparse.Namespace) -> int:
    with _client(args) as client:
        result = client.call(
            "subscribe", session=args.session, since=args.since, follow=args.follow, lossless=True
        )
        sub = result["sub"]
        if args.json and not args.follow:
            data = b"".join(e.data for e in client.stream(sub) if isinstance(e, Output))
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
            _notice(f"bytes {args.since}..{result['start']} are no longer kept")
        for event in client.stream(sub):
            if isinstance(event, Output):
                if args.json:
                    print(
                        json.dumps(
                            {
                                "start": event.offset,
                                "end": event.offset + len(event.data),
                                "truncated": False,
                                "data_b64": base64.b64encode(event.data).decode("ascii"),
                            }
                        ),
                        flush=True,
                    )
                else:
                    _write_out(event.data)
            elif isinstance(event, Event) and event.event == "skipped":
                _notice(f"skipped bytes {event.fields['from']}..{event.fields['to']}")
    return 0


def _notice(text: str) -> None:
    print(f"ptysup: {text}", file=sys.stderr)


def cmd_expect(args: argparse.Namespace) -> int:
    try:
        pattern = re.compile(args.regex.encode("utf-8", "surrogateescape"), re.MULTILINE)
    except re.error as exc:
        print(f"ptysup expect: bad regular expression: {exc}", file=sys.stderr)
        return OWN_FAILURE
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    with _client(args) as client:
        result = client.call("subscribe", session=args.session, since=args.since, follow=True)
        sub = result["sub"]
        base = result["start"]
        buffer = bytearray()
        searched = 0
        reason = "timed out"
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            event = _next_for(client, sub, left)
            if event is None:
                break
            if isinstance(event, Output):
                if event.offset != base + len(buffer):
                    buffer.clear()
                    base = event.offset
                    searched = 0
                buffer += event.data
                match = pattern.search(buffer, max(0, searched - 4096))
                if match:
                    return _expect_matched(args, match, base)
                searched = len(buffer)
                if len(buffer) > 4 * 1024 * 1024:
                    cut = len(buffer) - 1024 * 1024
                    del buffer[:cut]
                    base += cut
                    searched -= cut
            elif isinstance(event, Event) and event.event == "end":
                reason = "the session ended"
                break
    if args.json:
        render.print_json({"matched": False, "reason": reason})
    else:
        print(f"ptysup expect: no match; {reason}", file=sys.stderr)
    return 1


def _expect_matched(args: argparse.Namespace, match: re.Match[bytes], base: int) -> int:
    if args.json:
        render.print_json(
            {
                "matched": True,
                "match": match.group(0).decode("utf-8", "replace"),
                "groups": [
                    g.decode("utf-8", "replace") if g is not None else None for g in match.groups()
                ],
                "start": base + match.start(),
                "end": base + match.end(),
            }
        )
    return 0


def _next_for(client: Client, sub: int, timeout: float | None) -> Output | Event | None:
    while True:
        event = client.next_event(timeout)
        if event is None:
            return None
        if isinstance(event, Output | Event) and event.sub == sub:
            return event


# -- run, new, attach ---------------------------------------------------------------


def _follow_again(
    socket_path: str | None, sid: str, since: int, daemon_pid: int | None
) -> tuple[Client, int]:
    """After the daemon restarted in place: subscribe again where the output stopped.
    A different daemon (one started after a crash) does not have our session."""
    deadline = time.monotonic() + RECONNECT_TIMEOUT
    while True:
        try:
            client = connect(socket_path, autostart=False, timeout=5)
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
            continue
        if client.daemon_pid != daemon_pid:
            client.close()
            raise ClientError(f"the daemon was replaced by a new one; session {sid} is gone")
        result = client.call("subscribe", session=sid, since=since, follow=True, lossless=True)
        return client, result["sub"]


def cmd_run(args: argparse.Namespace) -> int:
    from supervisor.cli.attach import handing_over, has_input, raw_terminal

    with contextlib.ExitStack() as stack:
        client = stack.enter_context(_client(args))
        # The child's terminal already turned its newlines into CR LF: ours must not again.
        # Set before the spawn: the daemon may write to this terminal itself from the start.
        stack.enter_context(raw_terminal(sys.stdout.fileno(), output_only=True))
        request = {"subscribe": True, "lossless": True, **_spawn_request(args, _terminal_size())}
        out = sys.stdout.fileno()
        session = handing_over(
            lambda extra: client.call("spawn", **request, **extra),
            out if os.isatty(out) and not args.relay else None,
        )
        sid, sub = session["id"], session["sub"]
        direct = bool(session.get("terminal"))
        """The daemon writes the output to our terminal; frames come only for floods."""
        unnoted = False
        daemon_pid = client.daemon_pid
        offset = 0
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        interrupts = 0

        def on_signal(signum: int, _frame: object) -> None:
            nonlocal interrupts
            interrupts += 1
            raise KeyboardInterrupt

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        timed_out = False
        try:
            while True:
                try:
                    if unnoted and not client.pending() and not has_input(client.sock):
                        client.send_written(sub, offset)
                        unnoted = False
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        timed_out = True
                        client.kill(sid)
                        deadline = None
                        continue
                    event = _next_for(client, sub, left)
                except KeyboardInterrupt:
                    client.send_request(
                        "kill", session=sid, signal="INT" if interrupts < 2 else None
                    )
                    continue
                except ConnectionLost:
                    client, sub = _follow_again(args.socket, sid, offset, daemon_pid)
                    stack.enter_context(client)
                    direct = unnoted = False
                    continue
                if isinstance(event, Output):
                    if event.offset > offset and not direct:
                        _notice(f"skipped bytes {offset}..{event.offset}")
                    try:
                        _write_out(event.data[max(0, offset - event.offset) :])
                    except BrokenPipeError:
                        # Whoever read our output is gone: end the child, as SIGPIPE would.
                        client.remove(sid)
                        raise
                    offset = max(offset, event.offset + len(event.data))
                    unnoted = direct
                elif isinstance(event, Event) and event.event == "relayed":
                    direct = unnoted = False
                    offset = max(offset, int(event.fields.get("offset") or 0))
                elif isinstance(event, Event) and event.event == "hangup":
                    client.remove(sid)  # our terminal went away: end the child, as SIGHUP would
                    raise ClientError("the terminal went away")
                elif isinstance(event, Event) and event.event == "end":
                    break
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        final = client.info(sid)
        if not args.keep:
            client.remove(sid)
    if timed_out:
        print(f"ptysup run: timed out after {args.timeout} s", file=sys.stderr)
        return 124
    return render.exit_status(final)


def _spawned(session: dict[str, Any]) -> dict[str, Any]:
    """A spawn's reply in the form of an attach's."""
    return {
        "session": session,
        "sub": session["sub"],
        "start": 0,
        "redraw": None,
        "terminal": session.get("terminal"),
    }


def cmd_new(args: argparse.Namespace) -> int:
    from supervisor.cli.attach import attach_loop, parse_detach_key

    key = parse_detach_key(args.detach_key)
    size = args.size or _terminal_size()
    with _client(args) as client:
        spawn = _spawn_request(args, size)
        return attach_loop(
            client,
            lambda extra: _spawned(client.call("spawn", input=True, **spawn, **extra)),
            key,
            relay=args.relay,
        )


def cmd_attach(args: argparse.Namespace) -> int:
    from supervisor.cli.attach import attach_loop, parse_detach_key

    key = parse_detach_key(args.detach_key)
    size = _terminal_size()
    with _client(args) as client:
        return attach_loop(
            client,
            lambda extra: client.call(
                "attach",
                session=args.session,
                read_only=args.read_only,
                cols=size[0] if size else None,
                rows=size[1] if size else None,
                **extra,
            ),
            key,
            read_only=args.read_only,
            relay=args.relay,
        )


def cmd_screen(args: argparse.Namespace) -> int:
    with _client(args) as client:
        screen = client.call("screen", session=args.session, ansi=args.ansi)
    if args.json:
        render.print_json(screen)
    elif args.ansi:
        _write_out(screen["ansi"].encode("utf-8", "replace"))
    else:
        print("\n".join(screen["lines"]))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    with _client(args) as client:
        sub = client.call("events")["sub"]
        while True:
            event = _next_for(client, sub, None)
            if not isinstance(event, Event):
                continue
            if args.json:
                print(json.dumps({"event": event.event, **event.fields}), flush=True)
            else:
                print(render.event_text(event.event, event.fields), flush=True)


# -- OpenCode ---------------------------------------------------------------------------


def cmd_context(args: argparse.Namespace) -> int:
    with _client(args) as client:
        context = client.call(
            "context",
            cwd=os.path.abspath(args.cwd) if args.cwd else os.getcwd(),
            project=os.path.abspath(args.project) if args.project else None,
            caller_directory=_caller_directory(),
        )
    if args.json:
        render.print_json(context)
    else:
        print(render.context_text(context))
    return 0


def cmd_opencode(args: argparse.Namespace) -> int:
    from supervisor.opencode.sessions import InvalidSessionId, SessionNotFound, find_session

    try:
        record = find_session(args.session_id)
    except (SessionNotFound, InvalidSessionId) as exc:
        print(f"ptysup opencode {args.oc_cmd}: {exc}", file=sys.stderr)
        return 1
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
    return _opencode_open(args, record.session_id, record.directory)


def _opencode_open(args: argparse.Namespace, session_id: str, directory: str) -> int:
    from supervisor.opencode.probe import OpenCodeNotFound, ProbeFailed, find_opencode, probe
    from supervisor.paths import resolve_socket

    if not os.path.isdir(directory):
        print(
            f"ptysup opencode open: the session's directory is gone: {directory}", file=sys.stderr
        )
        return 1
    socket_dir = os.path.dirname(resolve_socket(args.socket))
    try:
        binary = find_opencode(
            path=os.environ.get("PATH", os.defpath),
            skip=[os.path.join(socket_dir, "shim")],
            binary=os.environ.get("PTYSUP_OPENCODE_BIN") or None,
        )
        caps = probe(binary, os.path.join(socket_dir, "cache"))
    except (OpenCodeNotFound, ProbeFailed, OSError) as exc:
        print(f"ptysup opencode open: {exc}", file=sys.stderr)
        return 1
    if not (caps.tui_project and caps.tui_session):
        print(
            f"ptysup opencode open: {binary} ({caps.version}) cannot open a session by id "
            "(its TUI lacks a project argument or --session)",
            file=sys.stderr,
        )
        return 1
    request = {
        "argv": [binary, directory, "--session", session_id],
        "cwd": directory,
        "env": dict(os.environ),
        "name": args.name,
        "project": directory,
    }
    size = _terminal_size()
    if size is not None:
        request["cols"], request["rows"] = size
    with _client(args) as client:
        if args.detach:
            print(client.call("spawn", **request)["id"])
            return 0
        from supervisor.cli.attach import attach_loop, parse_detach_key

        key = parse_detach_key(args.detach_key)
        return attach_loop(
            client,
            lambda extra: _spawned(client.call("spawn", input=True, **request, **extra)),
            key,
            relay=args.relay,
        )
