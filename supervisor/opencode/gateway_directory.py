"""Which directory a request to OpenCode names, and keeping it inside a session's project.

OpenCode's server picks the instance of a request from the ``directory`` query parameter
(``location[directory]`` on ``/api/`` routes), else the ``x-opencode-directory`` header
(percent-decoded), else its own working directory. docs/gateway.md has the details.
"""

from __future__ import annotations

import functools
import os
import re
import urllib.parse
from collections.abc import Mapping

import trio

from supervisor.opencode.project import Project, ProjectMemo, project_for, within

Headers = list[tuple[bytes, bytes]]

HEADER = b"x-opencode-directory"
QUERY_KEYS = frozenset({"directory", "location[directory]"})
# What JavaScript's encodeURIComponent leaves alone besides letters and digits.
_URI_COMPONENT_SAFE = "-_.!~*'()"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def encode_directory(directory: str) -> str:
    """``encodeURIComponent(directory)``, as OpenCode's SDK sends it in the header."""
    return urllib.parse.quote(os.fsencode(directory), safe=_URI_COMPONENT_SAFE)


def decode_directory(value: str) -> str:
    """The server's ``decodeURIComponent``, which keeps the raw text where it would throw."""
    if _BAD_ESCAPE.search(value):
        return value
    try:
        return urllib.parse.unquote(value, errors="strict")
    except UnicodeDecodeError:
        return value


def query_items(query: str) -> list[tuple[str, str, str]]:
    """Each ``&``-separated piece of ``query`` with its key and value decoded as
    ``URLSearchParams`` decodes them (``+`` is a space)."""
    items = []
    for piece in query.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        items.append(
            (
                piece,
                urllib.parse.unquote_plus(key, errors="replace"),
                urllib.parse.unquote_plus(value, errors="replace"),
            )
        )
    return items


def without_keys(query: str, keys: frozenset[str]) -> str:
    """``query`` without the pieces whose decoded key is in ``keys``; the rest byte for byte."""
    return "&".join(piece for piece, key, _ in query_items(query) if key not in keys)


def named_directories(query: str, headers: Headers) -> list[str]:
    """Every directory the request names, decoded as the server decodes it."""
    # The server decodes the query value a second time (decodeURIComponent after
    # URLSearchParams), so the query needs the same treatment as the header.
    named = [decode_directory(value) for _, key, value in query_items(query) if key in QUERY_KEYS]
    named += [
        decode_directory(value.decode("utf-8", "replace"))
        for _, value in directory_headers(headers)
    ]
    return [d for d in named if d]


def directory_headers(headers: Headers) -> Headers:
    return [(name, value) for name, value in headers if name == HEADER]


def anchor(query: str, headers: Headers, directory: str) -> tuple[str, Headers]:
    """The request naming ``directory`` and nothing else: query parameters dropped, header set."""
    rest = [(name, value) for name, value in headers if name != HEADER]
    rest.append((HEADER, encode_directory(directory).encode("ascii")))
    return without_keys(query, QUERY_KEYS), rest


class ProjectCache:
    """OpenCode's project of a directory, computed in a worker thread and remembered while
    its repository stays as it was (at most ``size`` directories)."""

    def __init__(
        self, *, env: Mapping[str, str] | None = None, size: int = 512, threads: int = 4
    ) -> None:
        self._memo = ProjectMemo(functools.partial(project_for, env=env), size=size)
        self._limiter = trio.CapacityLimiter(threads)

    async def project(self, directory: str) -> Project:
        return await trio.to_thread.run_sync(
            self._memo.get, directory, limiter=self._limiter, abandon_on_cancel=True
        )

    async def inside(self, home: str, named: str) -> bool:
        """Whether OpenCode files ``named`` under the same project as ``home``."""
        if not os.path.isabs(named):
            return False
        return within(await self.project(home), await self.project(named))
