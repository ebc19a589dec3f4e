"""Session ids that never repeat on one socket, across daemon restarts: the next id is kept
in a file beside the socket, written before any session takes it."""

import contextlib
import os

SUFFIX = ".next-id"


class IdCounter:
    def __init__(self, socket_path: str) -> None:
        self.path = socket_path + SUFFIX
        self.next = max(1, _read(self.path))

    def take(self) -> str:
        """The next id, stored as taken before it is handed out."""
        taken = self.next
        self.advance(taken + 1)
        return str(taken)

    def advance(self, at_least: int) -> None:
        """Never hand out an id below `at_least` (ids adopted from a previous image)."""
        if at_least <= self.next and os.path.exists(self.path):
            return
        self.next = max(self.next, at_least)
        tmp = f"{self.path}.{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"{self.next}\n")
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _read(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as f:
            text = f.read(32).strip()
    except OSError:
        return 1
    return int(text) if text.isdigit() else 1
