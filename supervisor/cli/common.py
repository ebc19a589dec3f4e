"""What the commands share: the connection, the spawn request, failures, the output."""

from __future__ import annotations

import os
import sys
import time

from supervisor import workdir

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from types import SimpleNamespace
    from typing import Any

    from supervisor.client.blocking import Client
    from supervisor.protocol.messages import Event, Output

    ParsedArgs = argparse.Namespace | SimpleNamespace
    """A command line as argparse read it, or supervisor.cli.quick."""

OWN_FAILURE = 125
RECONNECT_TIMEOUT = 30.0
STATUS_COMMANDS = frozenset({"run", "wait", "attach", "new", "expect"})


class Failure(Exception):
    """ptysup itself failed: `ptysup: <why>` on stderr, and the command's failure status."""


def failure_status(cmd: str) -> int:
    """Commands whose exit status reports a child's or a verdict fail with 125, others 1."""
    return OWN_FAILURE if cmd in STATUS_COMMANDS else 1


def fail(text: str) -> None:
    print(f"ptysup: {text}", file=sys.stderr)


notice = fail
"""A remark on stderr that is not a failure, in the same form."""


def client(args: ParsedArgs) -> Client:
    from supervisor.client.blocking import connect

    return connect(args.socket, autostart=not args.no_start)


def child_env(args: argparse.Namespace) -> dict[str, str] | None:
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


def spawn_request(args: argparse.Namespace, size: tuple[int, int] | None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "argv": args.command,
        "cwd": workdir.absolute(args.cwd) if args.cwd else workdir.current(),
        "env": child_env(args),
        "name": getattr(args, "name", None),
        "project": workdir.absolute(args.project) if args.project else None,
        "caller_directory": caller_directory(),
    }
    if getattr(args, "label", None):
        request["labels"] = dict(args.label)
    if size is not None:
        request["cols"], request["rows"] = size
    return request


def caller_directory() -> str | None:
    directory = os.environ.get("OPENCODE_DIRECTORY")
    return directory if directory and os.path.isabs(directory) else None


def terminal_size() -> tuple[int, int] | None:
    """This terminal's size, if it has one (a terminal nobody sized says 0x0)."""
    for fd in (0, 1, 2):
        try:
            size = os.get_terminal_size(fd)
        except OSError:
            continue
        if size.columns > 0 and size.lines > 0:
            return size.columns, size.lines
    return None


def write_out(data: bytes) -> None:
    out = sys.stdout.buffer
    out.write(data)
    out.flush()


def next_for(client: Client, sub: int, timeout: float | None) -> Output | Event | None:
    from supervisor.protocol.messages import Event, Output

    while True:
        event = client.next_event(timeout)
        if event is None:
            return None
        if isinstance(event, Output | Event) and event.sub == sub:
            return event


def reconnect_status(socket_path: str | None, timeout: float) -> dict[str, Any] | None:
    from supervisor.client.blocking import connect
    from supervisor.client.errors import ClientError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with connect(socket_path, autostart=False, timeout=5) as c:
                return c.status()
        except ClientError:
            time.sleep(0.02)
    return None


def follow_again(
    socket_path: str | None, sid: str, since: int, daemon_pid: int | None
) -> tuple[Client, int, int]:
    """After the daemon restarted in place: subscribe again where the output stopped, and
    say so if the output goes on further on (what the ring no longer keeps). A different
    daemon (one started after a crash) does not have our session. Returns the client, the
    subscription and the offset the output goes on from."""
    from supervisor.client.blocking import connect
    from supervisor.client.errors import ClientError

    deadline = time.monotonic() + RECONNECT_TIMEOUT
    while True:
        try:
            c = connect(socket_path, autostart=False, timeout=5)
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
            continue
        if c.daemon_pid != daemon_pid:
            c.close()
            raise ClientError(f"the daemon was replaced by a new one; session {sid} is gone")
        result = c.call("subscribe", session=sid, since=since, follow=True, lossless=True)
        start = int(result["start"])
        if result.get("truncated") or start > since:
            notice(f"skipped bytes {since}..{start}")
        return c, result["sub"], max(since, start)
