"""The OpenCode server behind the gateway (its address and credentials), the gateway's
limits, and the secrets that name a session in its URLs."""

from __future__ import annotations

import base64
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from supervisor.opencode.gateway_http import Headers, end_to_end

_NOT_FORWARDED = frozenset({b"host", b"authorization", b"expect"})


def new_secret() -> str:
    """A fresh per-session secret: 32 URL-safe characters."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Upstream:
    """An OpenCode server: ``http://host:port[/base]`` and its basic-auth credentials."""

    url: str
    username: str = "opencode"
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname or not self.url.isascii():
            raise ValueError(f"not an http://host:port URL: {self.url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "credentials in the upstream URL are not used; set OPENCODE_SERVER_PASSWORD"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"the upstream URL has a query or fragment: {self.url!r}")
        _ = parts.port  # raises ValueError for a port that is not a number in range

    @classmethod
    def from_env(cls, url: str, env: Mapping[str, str]) -> Upstream:
        """Credentials as OpenCode's own clients read them (an empty password means none)."""
        return cls(
            url,
            username=env.get("OPENCODE_SERVER_USERNAME", "opencode"),
            password=env.get("OPENCODE_SERVER_PASSWORD") or None,
        )

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.url).port or 80

    @property
    def host_header(self) -> bytes:
        return urllib.parse.urlsplit(self.url).netloc.encode("ascii")

    @property
    def base(self) -> str:
        return urllib.parse.urlsplit(self.url).path.rstrip("/")

    def authorization(self) -> bytes | None:
        if self.password is None:
            return None
        token = base64.b64encode(f"{self.username}:{self.password}".encode())
        return b"Basic " + token

    def request_headers(self, headers: Headers, upgrade: bool) -> Headers:
        """A client's request headers as they go to this server: its Host and credentials."""
        out = [(b"host", self.host_header)]
        out += end_to_end(headers, _NOT_FORWARDED)
        authorization = self.authorization()
        if authorization is not None:
            out.append((b"authorization", authorization))
        if upgrade:
            out.append((b"connection", b"upgrade"))
            out += [(name, value) for name, value in headers if name == b"upgrade"]
        else:
            out.append((b"connection", b"close"))
        return out


@dataclass(frozen=True)
class Limits:
    max_connections: int = 256
    """Client connections at once that have presented a valid secret; a further one gets
    503 and is closed."""
    max_pending: int = 64
    """Client connections at once that have not presented a valid secret yet; a further one
    makes the oldest of them close. Also the most refusals of other users under way."""
    max_refusing_per_peer: int = 8
    """Refusals under way for one other user; further connections of it are closed at once."""
    head_timeout: float = 5.0
    """Seconds a new connection has to send its first request head (line and headers)."""
    max_header_bytes: int = 64 * 1024
    """Largest request head (h11's max_incomplete_event_size)."""
    idle_timeout: float = 60.0
    """Seconds a connection may wait between requests, once it has presented a valid secret."""
    connect_timeout: float = 10.0
    """Seconds to connect to the OpenCode server before answering 502."""
    receive_size: int = 64 * 1024
    linger_timeout: float = 1.0
    """Seconds to keep reading from a client that is sent an error before closing."""
    linger_bytes: int = 1024 * 1024
