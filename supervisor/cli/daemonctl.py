"""`status`, `stop` and `upgrade`: the daemon itself."""

from __future__ import annotations

import time

from supervisor.cli import render
from supervisor.cli.common import Failure, client, reconnect_status

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from supervisor.cli.common import ParsedArgs


def cmd_status(args: ParsedArgs) -> int:
    with client(args) as c:
        status = c.status()
    status.setdefault("engines", {})["opencode"] = _opencode(status.get("socket"))
    if args.json:
        render.print_json(status)
    else:
        print(render.status_text(status))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from supervisor.client.blocking import connect

    with connect(args.socket, autostart=False) as c:
        result = c.call("stop")
        pid = c.wait_gone(int(result["pid"]))
    ended = result.get("ending")
    if ended is None:
        print(f"stopped the daemon (pid {pid})")
    else:
        print(f"stopped the daemon (pid {pid}), ending {render.count(ended, 'running session')}")
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    import contextlib

    from supervisor.client.blocking import connect
    from supervisor.client.errors import ClientError, ConnectionLost

    started = time.monotonic()
    answered = True
    with connect(args.socket, autostart=False) as c:
        before = c.status()
        asked = time.monotonic()
        try:
            c.call("upgrade", reply_timeout=120)
        except ConnectionLost:
            answered = False  # the answer can be lost as the daemon executes its new image
        with contextlib.suppress(ClientError):
            while c.receive(10):
                pass
    after = reconnect_status(args.socket, timeout=30)
    if after is None:
        raise Failure("the daemon did not come back within 30 s")
    if after["pid"] != before["pid"]:
        raise Failure(f"a different daemon answers now (pid {after['pid']}, was {before['pid']})")
    if not answered and after["uptime"] > time.monotonic() - asked:
        raise Failure("the daemon closed the connection without upgrading; nothing was replaced")
    print(
        f"upgraded in place: pid {after['pid']}, version {before['version']} -> "
        f"{after['version']}, {after['sessions']} session{'s' * (after['sessions'] != 1)} kept, "
        f"{time.monotonic() - started:.2f} s"
    )
    return 0


def _opencode(socket_path: str | None) -> str:
    """The real `opencode` a child's shim would run from here, and its version."""
    import os

    from supervisor.opencode.locate import OpenCodeNotFound, cached_version, find_opencode

    socket_dir = os.path.dirname(socket_path or "")
    try:
        binary = find_opencode(
            path=os.environ.get("PATH", os.defpath),
            skip=[os.path.join(socket_dir, "shim")],
            binary=os.environ.get("PTYSUP_OPENCODE_BIN") or None,
        )
    except OpenCodeNotFound:
        return "not found (the shim has no real opencode to run)"
    cache = os.path.join(socket_dir, "cache")
    version = cached_version(binary, cache)
    if version is None:
        from supervisor.opencode.probe import ProbeFailed, probe

        try:
            version = probe(binary, cache).version
        except (ProbeFailed, OSError) as exc:
            return f"{binary} (does not answer: {exc})"
    return f"{version or 'version unknown'} ({binary})"
