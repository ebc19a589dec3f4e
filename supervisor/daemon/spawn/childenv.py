"""What a child starts with: its working directory and its environment — the caller's (or a
minimal one), the session's own variables, the OpenCode context, the gateway's URL and the
shim first on PATH."""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from supervisor.daemon.spawn.context import Context
from supervisor.environment import DEFAULT_PATH, DEFAULT_TERM, minimal_env

GATEWAY_PRIVATE = ("OPENCODE_SERVER_PASSWORD", "OPENCODE_SERVER_USERNAME")
"""Never in a child's environment while the gateway serves it: it talks to the gateway."""


@dataclass(slots=True)
class ChildSetup:
    """What the daemon adds to every child, whoever asks."""

    socket_path: str
    shim_dir: str | None = None
    opencode_bin: str | None = None
    shell_dir: str | None = None
    """The shell integration's rc files (`shells.install`), which put the shim first again
    after a shell's start-up files."""


def base_env(env: Mapping[str, str] | None) -> dict[str, str]:
    return dict(env) if env is not None else minimal_env()


def child_cwd(cwd: str | None, env: Mapping[str, str] | None) -> str:
    return cwd or base_env(env).get("HOME") or "/"


def child_env(
    env: Mapping[str, str] | None,
    session_id: str,
    setup: ChildSetup,
    context: Context | None,
    gateway_url: str | None = None,
) -> dict[str, str]:
    result = base_env(env)
    result.setdefault("TERM", DEFAULT_TERM)
    if result.get("TERM") in ("", "dumb") and env is None:
        result["TERM"] = DEFAULT_TERM
    result["PTYSUP_SESSION"] = session_id
    result["PTYSUP_SOCKET"] = setup.socket_path
    if context is not None:
        result.update(context.env())
    if gateway_url is not None:
        for key in GATEWAY_PRIVATE:
            result.pop(key, None)
        result["OPENCODE_SERVER_URL"] = gateway_url
    if setup.shim_dir is not None:
        path = result.get("PATH", DEFAULT_PATH)
        entries = [p for p in path.split(os.pathsep) if p != setup.shim_dir]
        result["PATH"] = os.pathsep.join([setup.shim_dir, *entries])
        if setup.opencode_bin:
            result["PTYSUP_OPENCODE_BIN"] = setup.opencode_bin
    return result


def context_env(setup: ChildSetup, context: Context) -> dict[str, str]:
    """The variables a child of this context gets, but for PATH (the shim directory goes
    first on the child's own PATH) and the session's own PTYSUP_SESSION: what a process
    the daemon did not start (the bash tool of OpenCode) needs to behave as its child."""
    env = {"PTYSUP_SOCKET": setup.socket_path, **context.env()}
    if setup.shim_dir is not None and setup.opencode_bin:
        env["PTYSUP_OPENCODE_BIN"] = setup.opencode_bin
    return env
