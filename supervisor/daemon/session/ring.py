"""Scrollback: the last `capacity` bytes of a session's output, by absolute offset."""

import bisect
from collections import deque

_SMALL = 16 * 1024


class Ring:
    """Output kept as a list of chunks, each tagged with its absolute start offset.

    Appending keeps the caller's bytes object (no copy) unless the last chunk is
    small, in which case the two are joined so that a stream of tiny writes does
    not become a million tiny objects. Memory stays within capacity + one chunk.
    """

    __slots__ = ("_chunks", "_offsets", "_size", "capacity", "end")

    def __init__(self, capacity: int, end: int = 0) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be positive")
        self.capacity = capacity
        self.end = end
        self._chunks: deque[bytes] = deque()
        self._offsets: deque[int] = deque()
        self._size = 0

    @property
    def start(self) -> int:
        return max(self.end - self.capacity, self.end - self._size)

    def append(self, data: bytes) -> int:
        """Add output; return the offset at which it starts."""
        offset = self.end
        n = len(data)
        if not n:
            return offset
        chunks = self._chunks
        if chunks and len(chunks[-1]) < _SMALL and n < _SMALL:
            chunks[-1] += data
        else:
            chunks.append(data)
            self._offsets.append(offset)
        self._size += n
        self.end += n
        limit = self.end - self.capacity
        while len(chunks) > 1 and self._offsets[1] <= limit:
            self._size -= len(chunks.popleft())
            self._offsets.popleft()
        return offset

    def read(self, since: int, limit: int | None = None) -> tuple[int, bytes]:
        """Bytes from `since` (or the oldest kept, if later) up to the end or `limit` bytes.

        Returns (start, data); start > since means bytes were lost to the ring's size.
        """
        start = max(since, self.start)
        stop = self.end if limit is None else min(self.end, start + limit)
        if start >= stop:
            return min(start, self.end), b""
        offsets = self._offsets
        i = bisect.bisect_right(offsets, start) - 1
        parts = []
        pos = start
        while pos < stop:
            chunk = self._chunks[i]
            base = offsets[i]
            lo = pos - base
            hi = min(len(chunk), stop - base)
            parts.append(chunk[lo:hi] if lo or hi < len(chunk) else chunk)
            pos = base + hi
            i += 1
        return start, parts[0] if len(parts) == 1 else b"".join(parts)

    def snapshot(self) -> tuple[int, bytes]:
        return self.read(self.start)
