"""Who may hold a connection to the gateway, and for how long.

- Another user's connection (Linux tells the owner of a loopback peer) gets a 403 at once;
  a few of them per user are answered, the rest just closed.
- A connection that has not presented a valid secret is *pending*: it has ``head_timeout``
  seconds to send its first request head, and when ``max_pending`` are waiting the oldest
  is closed to make room, so idle connections cannot keep a client out.
- One that has is counted against ``max_connections`` instead.
- The exchanges forwarded under a secret end when it is revoked (its session ended).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections import Counter
from collections.abc import Iterator

import h11
import trio

from supervisor import logs
from supervisor.opencode.gateway_http import GONE, json_response
from supervisor.opencode.gateway_peer import SUPPORTED as PEER_UID_SUPPORTED
from supervisor.opencode.gateway_peer import peer_uid
from supervisor.opencode.gateway_upstream import Limits

log = logs.get_logger("supervisor.gateway")

LOG_INTERVAL = 10.0
"""Seconds between two log lines about the same refused user, or about evictions."""
_UNKNOWN_USER = -1


class Admission:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.uid = os.geteuid()
        self._slots = trio.Semaphore(limits.max_connections)
        self._pending: dict[int, trio.CancelScope] = {}
        self._pending_ids = itertools.count()
        self._refusing: Counter[int] = Counter()
        self._exchanges: dict[str, set[trio.CancelScope]] = {}
        self._last_logged: dict[object, tuple[float, int]] = {}

    async def admit(self, stream: trio.SocketStream) -> bool:
        """Whether the connection is the gateway's own user's; if not it is answered and
        closed. True where the platform cannot tell."""
        if not PEER_UID_SUPPORTED:
            return True
        uid = await peer_uid(stream.socket)
        if uid == self.uid:
            return True
        await self._refuse_user(stream, _UNKNOWN_USER if uid is None else uid)
        return False

    async def _refuse_user(self, stream: trio.SocketStream, uid: int) -> None:
        self._log_throttled(
            uid,
            "gateway refused a connection from another user"
            if uid != _UNKNOWN_USER
            else "gateway refused a connection whose user it cannot tell",
            uid=uid,
            own_uid=self.uid,
        )
        limits = self.limits
        if (
            self._refusing[uid] >= limits.max_refusing_per_peer
            or self._refusing.total() >= limits.max_pending
        ):
            with contextlib.suppress(*GONE):
                await stream.aclose()
            return
        self._refusing[uid] += 1
        try:
            message = f"this gateway serves only the processes of uid {self.uid}"
            await _refuse_raw(stream, 403, message, limits)
        finally:
            self._refusing[uid] -= 1
            if not self._refusing[uid]:
                del self._refusing[uid]

    @contextlib.contextmanager
    def pending(self) -> Iterator[trio.CancelScope]:
        """While a connection has not presented a valid secret: cancelled after
        ``head_timeout``, or when it is the oldest of ``max_pending`` and another comes."""
        if len(self._pending) >= self.limits.max_pending:
            self._pending.pop(next(iter(self._pending))).cancel()
            self._log_throttled(
                "evicted", "gateway closed its oldest unauthenticated connection to make room"
            )
        key = next(self._pending_ids)
        with trio.move_on_after(self.limits.head_timeout) as scope:
            self._pending[key] = scope
            try:
                yield scope
            finally:
                self._pending.pop(key, None)

    @contextlib.contextmanager
    def authenticated(self) -> Iterator[bool]:
        """A connection that has presented a valid secret: whether it has a slot."""
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            yield False
            return
        try:
            yield True
        finally:
            self._slots.release()

    @contextlib.contextmanager
    def exchange(self, secret: str) -> Iterator[trio.CancelScope]:
        """While a request is forwarded under ``secret``: cancelled by ``revoke(secret)``."""
        with trio.CancelScope() as scope:
            self._exchanges.setdefault(secret, set()).add(scope)
            try:
                yield scope
            finally:
                scopes = self._exchanges.get(secret)
                if scopes is not None:
                    scopes.discard(scope)
                    if not scopes:
                        del self._exchanges[secret]

    def revoke(self, secret: str) -> None:
        for scope in self._exchanges.pop(secret, ()):
            scope.cancel()

    def _log_throttled(self, key: object, event: str, **fields: object) -> None:
        """Log ``event`` at most once per LOG_INTERVAL for ``key``, with how many it stands for."""
        now = trio.current_time()
        last, count = self._last_logged.get(key, (-math.inf, 0))
        if now - last < LOG_INTERVAL:
            self._last_logged[key] = (last, count + 1)
            return
        self._last_logged[key] = (now, 0)
        log.warning(event, connections=count + 1, **fields)


async def _refuse_raw(stream: trio.SocketStream, status: int, message: str, limits: Limits) -> None:
    """Answer before reading a request, read what the client sends for a moment, close."""
    conn = h11.Connection(h11.SERVER)
    response, body = json_response(status, message)
    with trio.move_on_after(1), contextlib.suppress(*GONE):
        await stream.send_all(conn.send(response) + conn.send(h11.Data(data=body)))
    with contextlib.suppress(*GONE), trio.move_on_after(limits.linger_timeout):
        await stream.send_eof()
        left = limits.linger_bytes
        while left > 0 and (data := await stream.receive_some(limits.receive_size)):
            left -= len(data)
    with contextlib.suppress(*GONE):
        await stream.aclose()
