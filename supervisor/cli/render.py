"""How the CLI prints sessions and results for people (JSON is printed as is)."""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def print_json(value: Any) -> None:
    import json

    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def exit_text(session: dict[str, Any]) -> str:
    if session["state"] == "running":
        return "-"
    if session.get("signal") is not None:
        return session.get("signal_name") or f"signal {session['signal']}"
    return str(session.get("exit_code"))


def session_table(sessions: list[dict[str, Any]]) -> str:
    rows = [("ID", "NAME", "STATE", "PID", "EXIT", "SIZE", "ATT", "COMMAND")]
    for s in sessions:
        rows.append(
            (
                s["id"],
                s.get("name") or "-",
                s["state"],
                str(s["pid"]),
                exit_text(s),
                f"{s['cols']}x{s['rows']}",
                str(s.get("attached", 0)),
                _command_line(s["argv"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )


def session_details(s: dict[str, Any]) -> str:
    fields = [
        ("id", s["id"]),
        ("name", s.get("name") or "-"),
        ("command", _command_line(s["argv"])),
        ("cwd", s["cwd"]),
        ("pid", s["pid"]),
        ("tty", s.get("tty", "-")),
        ("state", s["state"]),
        ("exit", exit_text(s)),
        ("size", f"{s['cols']}x{s['rows']}"),
        ("clients", f"{s.get('attached', 0)} attached, {s.get('subscribers', 0)} reading"),
        ("created", s["created_at"]),
        ("exited", s.get("exited_at") or "-"),
        ("output", f"bytes {s['start']}..{s['end']}"),
    ]
    context = s.get("context")
    if context:
        fields.append(("project", f"{context.get('directory')} ({context.get('project_id')})"))
    for key, value in sorted((s.get("labels") or {}).items()):
        fields.append(("label", f"{key}={value}"))
    return "\n".join(f"{k + ':':9} {v}" for k, v in fields)


def status_text(status: dict[str, Any]) -> str:
    keys = (
        "pid",
        "version",
        "protocol",
        "socket",
        "sessions",
        "running",
        "connections",
        "started_at",
        "uptime",
    )
    lines = [f"{k + ':':12} {status[k]}" for k in keys if k in status]
    gateway = status.get("gateway")
    if gateway:
        lines.append(f"{'gateway:':12} 127.0.0.1:{gateway['port']} -> {gateway['upstream']}")
    elif "gateway" in status:
        lines.append(f"{'gateway:':12} off (no opencode_upstream)")
    for name, version in (status.get("engines") or {}).items():
        lines.append(f"{name + ':':12} {version}")
    path = status.get("byte_path")
    if path:
        lanes = path.get("lanes")
        threads = f", {lanes} thread{'s' if lanes != 1 else ''}" if lanes else ""
        stopped = path.get("stopped") or []
        if stopped:
            threads += f", {len(stopped)} stopped ({'; '.join(map(str, stopped))})"
        lines.append(f"{'byte path:':12} {path['byte_path']} ({path['why']}){threads}")
    return "\n".join(lines)


def exit_status(session: dict[str, Any]) -> int:
    """The shell's convention: the exit code, or 128 + the signal number."""
    if session.get("signal") is not None:
        return 128 + int(session["signal"])
    code = session.get("exit_code")
    return int(code) if code is not None else 0


def context_text(context: dict[str, Any]) -> str:
    lines = [
        f"directory:  {context['directory']}",
        f"project_id: {context['project_id']}",
        f"rule:       {context.get('rule', context['source'])}",
    ]
    if context.get("parent"):
        lines.append(f"parent:     session {context['parent']}")
    lines.extend(f"warning:    {text}" for text in context.get("warnings", ()))
    return "\n".join(lines)


def event_text(event: str, fields: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S")
    if event == "created":
        s = fields["session"]
        return f"{stamp} created  {s['id']} {_command_line(s['argv'])}"
    if event == "exited":
        session = {"state": "exited", "signal_name": None, **fields}
        return f"{stamp} exited   {fields['session']} ({exit_text(session)})"
    if event == "removed":
        return f"{stamp} removed  {fields['session']}"
    if event == "title":
        return f"{stamp} title    {fields['session']} {fields['title']!r}"
    if event == "controller":
        who = fields.get("controller")
        text = "nobody" if not who else who.get("client") or f"sub {who.get('sub')}"
        return f"{stamp} control  {fields['session']} -> {text}"
    import json

    return f"{stamp} {event} {json.dumps(fields)}"


def count(n: int, noun: str) -> str:
    """`no running session`, `1 running session`, `3 running sessions`."""
    if n == 0:
        return f"no {noun}"
    return f"{n} {noun}" + ("" if n == 1 else "s")


_SHELL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def _command_line(argv: list[str]) -> str:
    """shlex.join(argv), without loading re for shlex."""
    return " ".join(_quoted(arg) for arg in argv)


def _quoted(arg: str) -> str:
    if not arg:
        return "''"
    if _SHELL_SAFE.issuperset(arg):
        return arg
    return "'" + arg.replace("'", "'\"'\"'") + "'"
