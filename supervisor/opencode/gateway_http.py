"""h11 plumbing for the gateway: one side of a proxied exchange, header hygiene, error bodies."""

from __future__ import annotations

import http
import json

import h11
import trio

Headers = list[tuple[bytes, bytes]]

# Hop-by-hop headers (RFC 9110 §7.6.1) plus the old proxy ones. The framing headers
# (content-length, transfer-encoding) are kept: h11 frames a forwarded message by them.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
    }
)


class PeerFailed(Exception):
    """One side of an exchange closed, reset, or spoke broken HTTP."""

    def __init__(self, peer: str, reason: str, status_hint: int = 400) -> None:
        super().__init__(f"{peer}: {reason}")
        self.peer = peer
        self.reason = reason
        self.status_hint = status_hint


GONE = (trio.BrokenResourceError, trio.ClosedResourceError, PeerFailed)
"""What a send or receive raises once the other side is gone."""


class Peer:
    """An h11 connection and the stream it speaks over; transport errors become PeerFailed."""

    def __init__(
        self, name: str, conn: h11.Connection, stream: trio.abc.Stream, receive_size: int
    ) -> None:
        self.name = name
        self.conn = conn
        self.stream = stream
        self.receive_size = receive_size

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        """The next event, reading as needed; ConnectionClosed comes back as an event."""
        try:
            while True:
                event = self.conn.next_event()
                if event is not h11.NEED_DATA:
                    return event
                self.conn.receive_data(await self.receive())
        except h11.RemoteProtocolError as exc:
            raise PeerFailed(self.name, str(exc), exc.error_status_hint) from exc

    def held_event(self) -> h11.Event | type[h11.PAUSED] | None:
        """The next event if h11 can give it without reading, else None."""
        try:
            event = self.conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise PeerFailed(self.name, str(exc), exc.error_status_hint) from exc
        return None if event is h11.NEED_DATA else event

    async def receive(self) -> bytes:
        try:
            return await self.stream.receive_some(self.receive_size)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise PeerFailed(self.name, "connection lost") from exc

    async def send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            await self.send_raw(data)

    async def send_raw(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise PeerFailed(self.name, "connection lost") from exc

    def finished(self) -> bool:
        """Both directions of the current exchange are complete."""
        return self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE


def connection_options(headers: Headers) -> set[bytes]:
    """The header names listed in Connection, which are hop-by-hop as well."""
    names: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            names.update(token.strip().lower() for token in value.split(b","))
    return names


def end_to_end(headers: Headers, drop: frozenset[bytes] = frozenset()) -> Headers:
    """``headers`` without hop-by-hop ones and without the names in ``drop``."""
    skip = HOP_BY_HOP | connection_options(headers) | drop
    return [(name, value) for name, value in headers if name.lower() not in skip]


def json_response(status: int, message: str, *, close: bool = True) -> tuple[h11.Response, bytes]:
    """A response shaped like OpenCode's own errors, so its clients print the message."""
    body = json.dumps({"name": "GatewayError", "data": {"message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    reason = http.HTTPStatus(status).phrase.encode()
    return h11.Response(status_code=status, headers=headers, reason=reason), body
