"""`expect`, and `write --expect`: wait until a session's output matches a pattern."""

import argparse
import re
import time
from typing import TYPE_CHECKING, Any

from supervisor.cli import render
from supervisor.cli.common import Failure, client, next_for, notice

if TYPE_CHECKING:
    from supervisor.client.blocking import Client

KEEP = 1024 * 1024
CUT_AT = 4 * KEEP
OVERLAP = 4096
_INVISIBLE = re.compile(
    rb"\x1b\[[0-9;?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.|[\x00-\x20\x7f]"
)


def compile_pattern(regex: str) -> re.Pattern[bytes]:
    try:
        return re.compile(regex.encode("utf-8", "surrogateescape"), re.MULTILINE)
    except re.error as exc:
        raise Failure(f"bad regular expression: {exc}") from None


def _visible(data: bytes) -> bytes:
    return _INVISIBLE.sub(b"", data)


class EchoSkip:
    """Where the echo of typed text ends: once as many lines as were typed have come, they
    are the echo when, without spaces and control sequences, they hold the typed text."""

    def __init__(self, typed: bytes) -> None:
        self.lines = typed.count(b"\r") + typed.count(b"\n") - typed.count(b"\r\n")
        self.want = _visible(typed)

    def decide(self, data: bytes) -> int | None:
        """The offset in `data` where the search starts; None while undecided."""
        if self.lines == 0 or not self.want:
            return 0
        end = -1
        for _ in range(self.lines):
            end = data.find(b"\n", end + 1)
            if end < 0:
                return None
        return end + 1 if self.want in _visible(data[:end]) else 0


def wait_for_match(
    c: "Client",
    session: str,
    pattern: re.Pattern[bytes],
    since: int | None,
    deadline: float | None,
    typed: bytes | None = None,
) -> tuple[re.Match[bytes] | None, int, str]:
    """(match, offset of the match's buffer, why not): follow the output from `since`
    (None: from now on) until `pattern` matches, the deadline passes or the session ends."""
    from supervisor.protocol.messages import Event, Output

    result = c.call("subscribe", session=session, since=since, follow=True)
    sub = result["sub"]
    base = result["start"]
    buffer = bytearray()
    searched = 0
    echo = EchoSkip(typed) if typed is not None else None
    reason = "timed out"
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        event = next_for(c, sub, left)
        if event is None:
            break
        if isinstance(event, Output):
            if event.offset != base + len(buffer):
                buffer.clear()
                base = event.offset
                searched = 0
            buffer += event.data
            if echo is not None:
                skip = echo.decide(bytes(buffer))
                if skip is None:
                    continue
                del buffer[:skip]
                base += skip
                echo = None
            match = pattern.search(buffer, max(0, searched - OVERLAP))
            if match:
                return match, base, ""
            searched = len(buffer)
            if len(buffer) > CUT_AT:
                cut = len(buffer) - KEEP
                del buffer[:cut]
                base += cut
                searched -= cut
        elif isinstance(event, Event) and event.event == "end":
            reason = "the session ended"
            break
    if echo is not None:  # the echo never completed: search what there is
        match = pattern.search(buffer)
        if match:
            return match, base, ""
    return None, base, reason


def report(args: argparse.Namespace, match: re.Match[bytes] | None, base: int, reason: str) -> int:
    if match is None:
        if args.json:
            render.print_json({"matched": False, "reason": reason})
        else:
            notice(f"no match; {reason}")
        return 1
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


def since_arg(value: Any) -> int | None:
    """`now` (None: from the end of the output when asked) or an offset."""
    return None if value == "now" else int(value)


def cmd_expect(args: argparse.Namespace) -> int:
    pattern = compile_pattern(args.regex)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    with client(args) as c:
        match, base, reason = wait_for_match(
            c, args.session, pattern, since_arg(args.since), deadline
        )
    return report(args, match, base, reason)
