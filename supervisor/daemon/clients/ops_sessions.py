"""The ops on the daemon and on sessions as a whole."""

import os
import sys
import time
import weakref
from typing import Any

import trio

import supervisor
from supervisor.daemon.clients import about
from supervisor.daemon.clients.call import Call
from supervisor.daemon.clients.hub import Hub, Upgrade
from supervisor.daemon.clients.optable import op
from supervisor.daemon.session import plane as byteplane
from supervisor.daemon.session.session import Session
from supervisor.daemon.spawn.childenv import context_env
from supervisor.daemon.spawn.context import Context, decide
from supervisor.protocol import BAD_REQUEST, CONFLICT, INTERNAL, PROTOCOL_VERSION, ProtocolError
from supervisor.protocol.requests import (
    ContextArgs,
    KillArgs,
    ListArgs,
    NoArgs,
    RenameArgs,
    ResizeArgs,
    SessionArgs,
    SpawnArgs,
    WaitArgs,
    WriteArgs,
)

_last_input: "weakref.WeakKeyDictionary[Session, dict[str, Any]]" = weakref.WeakKeyDictionary()
"""Each session's last `write` (`info`'s `last_input`): where the output stood when it began
(what came after is the answer to it), and whether it ended with Enter. Input frames and
attached terminals' keys are not counted; nor is it carried over an upgrade."""

RULES = {
    "explicit": "1: the request named a project directory",
    "parent-session": "2: the caller runs inside a supervised session",
    "caller-env": "3: the caller's own OPENCODE_DIRECTORY",
    "cwd": "4: the requested working directory",
}


@op("status")
async def status(hub: Hub, call: Call, args: NoArgs) -> dict[str, Any]:
    registry = hub.registry
    settings = hub.settings
    return {
        "pid": os.getpid(),
        "version": supervisor.__version__,
        "protocol": PROTOCOL_VERSION,
        "socket": hub.socket_path,
        "sessions": len(registry.sessions),
        "running": len(registry.running()),
        "connections": len(hub.clients),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hub.started_at)),
        "uptime": round(time.time() - hub.started_at, 3),
        "platform": sys.platform,
        "python": sys.version.split()[0],
        "gateway": about.gateway(registry.gateway),
        # Read on a worker thread the first time: the requests that come with the first
        # status (right after an upgrade) need not wait for it.
        "engines": about.known_engines() or await trio.to_thread.run_sync(about.engines),
        "byte_path": byteplane.describe(),
        "limits": {
            "max_sessions": settings.max_sessions,
            "max_connections": settings.max_connections,
            "max_frame": settings.max_frame,
            "ring_size": settings.ring_size,
        },
    }


@op("list")
async def list_sessions(hub: Hub, call: Call, args: ListArgs) -> dict[str, Any]:
    wanted = (args.labels or {}).items()
    return {
        "sessions": [
            s.describe()
            for s in hub.registry.sessions.values()
            if all(s.labels.get(k) == v for k, v in wanted)
        ]
    }


@op("stop")
async def stop(hub: Hub, call: Call, args: NoArgs) -> dict[str, Any]:
    hub.request_stop()
    return {"stopping": True, "pid": os.getpid(), "ending": len(hub.registry.running())}


@op("upgrade")
async def upgrade(hub: Hub, call: Call, args: NoArgs) -> dict[str, Any]:
    if hub.upgrade is not None:
        raise ProtocolError(CONFLICT, "an upgrade is already under way")
    pending = hub.upgrade = Upgrade()
    hub.wake.set()
    try:
        await pending.checked.wait()
    finally:
        if pending.error is not None:
            hub.upgrade = None
    if pending.error is not None:
        raise ProtocolError(INTERNAL, f"upgrade refused, nothing was replaced: {pending.error}")
    return {"upgrading": True, "pid": os.getpid(), "version": supervisor.__version__}


async def context_for(
    hub: Hub, call: Call, *, project: str | None, caller_directory: str | None, cwd: str
) -> Context:
    if project is not None and not os.path.isdir(project):
        raise ProtocolError(BAD_REQUEST, f"project directory does not exist: {project}")
    parent = hub.registry.session_of(call.client.peer.pid)
    return await decide(
        hub.projects,
        explicit=project,
        parent=(parent.id, parent.context) if parent and parent.context else None,
        caller_directory=caller_directory,
        cwd=cwd,
    )


@op("context")
async def context(hub: Hub, call: Call, args: ContextArgs) -> dict[str, Any]:
    found = await context_for(
        hub, call, project=args.project, caller_directory=args.caller_directory, cwd=args.cwd or "/"
    )
    setup = hub.registry.setup
    return {
        **found.describe(),
        "rule": RULES[found.source],
        "env": context_env(setup, found),
        "shim_dir": setup.shim_dir,
    }


@op("spawn")
async def spawn(hub: Hub, call: Call, args: SpawnArgs) -> dict[str, Any]:
    env = args.env or {}
    found = await context_for(
        hub,
        call,
        project=args.project,
        caller_directory=args.caller_directory or env.get("OPENCODE_DIRECTORY"),
        cwd=hub.registry.child_cwd(args),
    )
    terminal = call.terminal() if args.terminal else None
    try:
        session = hub.registry.spawn(args, found)
    except BaseException:
        if terminal is not None:
            terminal.close()
        raise
    if not (args.subscribe or args.input):
        return session.describe()
    client = call.client
    sub = client.new_subscription(
        session.id,
        follow=True,
        input=args.input,
        lossless=args.lossless or args.input,
        patient=args.input and not args.lossless,
    )
    sub.cols, sub.rows = args.cols, args.rows
    if terminal is not None:
        client.link_terminal(
            terminal,
            sub,
            session,
            detach_key=args.detach_key,
            read_only=False,
            first=None,
            start=0,
            keys=args.input,
        )
    session.subscribe(sub, 0)
    if args.input:
        session.attach(sub, read_only=False)
    return {**session.describe(), "sub": sub.id, "terminal": terminal is not None}


@op("info")
async def info(hub: Hub, call: Call, args: SessionArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    return {**session.describe(), "last_input": _last_input.get(session)}


@op("write")
async def write(hub: Hub, call: Call, args: WriteArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    offset = session.ring.end
    data = args.payload()
    if session.state == "running":
        _last_input[session] = {"offset": offset, "enter": data.endswith((b"\n", b"\r"))}
    return {"written": await session.writer.write(data), "offset": offset}


@op("resize")
async def resize(hub: Hub, call: Call, args: ResizeArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    if args.sub is None:
        session.resize(args.cols, args.rows)
        return {**session.describe(), "applied": True}
    sub = call.client.subscriptions.get(args.sub)
    if sub is None or sub.session_id != session.id:
        raise ProtocolError("not_found", f"no subscription {args.sub} to session {session.id}")
    applied = session.roles.client_resize(sub, args.cols, args.rows)
    return {**session.describe(), "applied": applied}


@op("wait")
async def wait(hub: Hub, call: Call, args: WaitArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    timed_out = False
    if args.timeout is None:
        await session.finished.wait()
    else:
        with trio.move_on_after(args.timeout) as scope:
            await session.finished.wait()
        timed_out = scope.cancelled_caught
    return {"timed_out": timed_out, "session": session.describe()}


@op("kill")
async def kill(hub: Hub, call: Call, args: KillArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    if args.signal is not None:
        session.send_signal(args.signal_number())
    else:
        await session.terminate(hub.settings.kill_grace)
    return session.describe()


@op("remove")
async def remove(hub: Hub, call: Call, args: SessionArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    # Finished even when the client goes away meanwhile (an OpenCode that removes its
    # session's terminals as it exits): half a removal would leave the processes running.
    with trio.CancelScope(shield=True):
        await hub.registry.remove(session)
    return {"removed": session.id, "session": session.describe()}


@op("rename")
async def rename(hub: Hub, call: Call, args: RenameArgs) -> dict[str, Any]:
    session = hub.registry.lookup(args.session)
    hub.registry.rename(session, args.name)
    return session.describe()
