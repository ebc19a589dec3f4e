"""What a request to the gateway may be: the Host it names, how its body is framed, and the
secret and path of its target. Pure functions of the request head."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import h11

SECRET_PREFIX = "/s/"
SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")
_PATH_SEPARATORS = re.compile(r"[/\\]")


@dataclass(frozen=True)
class Route:
    secret: str
    directory: str
    path: str
    query: str


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


def allowed_hosts(port: int) -> frozenset[bytes]:
    """The Host values naming the gateway itself: a page that reached it through another
    name (DNS rebinding) is refused."""
    names = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"]
    if port == 80:
        names += ["127.0.0.1", "localhost", "[::1]"]
    return frozenset(name.encode() for name in names)


def check(
    request: h11.Request, hosts: frozenset[bytes], lookup: Callable[[str], str | None]
) -> Route | Refusal:
    """Whether a request may go upstream, and where."""
    named = [value for name, value in request.headers if name == b"host"]
    if not named:
        return Refusal(400, "the request has no Host header")
    if named[0].lower() not in hosts:
        shown = named[0][:100].decode("latin-1")
        allowed = ", ".join(sorted(host.decode() for host in hosts))
        return Refusal(421, f"this gateway answers only to Host {allowed}, not {shown!r}")
    names = {name for name, _ in request.headers}
    if b"transfer-encoding" in names and b"content-length" in names:
        return Refusal(400, "a request carries both Content-Length and Transfer-Encoding")
    return route(request.target, lookup)


def route(target: bytes, lookup: Callable[[str], str | None]) -> Route | Refusal:
    """Where a request target goes: the session's directory, the upstream path, the query."""
    text = target.decode("latin-1")
    if not text.startswith("/"):
        return Refusal(400, "the request target must be a path")
    path, _, query = text.partition("?")
    if not path.startswith(SECRET_PREFIX):
        return Refusal(401, "this URL carries no session secret; use $OPENCODE_SERVER_URL")
    secret, _, rest = path[len(SECRET_PREFIX) :].partition("/")
    directory = lookup(secret) if SECRET.fullmatch(secret) else None
    if directory is None:
        return Refusal(403, "unknown or expired session secret")
    if dot_segment(rest):
        return Refusal(400, "the path after the secret has a '.' or '..' segment")
    return Route(secret, directory, "/" + rest.lstrip("/"), query)


def dot_segment(path: str) -> bool:
    """Whether a path has a ``.`` or ``..`` segment, percent-encoded or behind a backslash."""
    return any(part in (".", "..") for part in _PATH_SEPARATORS.split(urllib.parse.unquote(path)))
