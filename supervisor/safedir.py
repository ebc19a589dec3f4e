"""A directory held open by descriptor, every name in it looked up without following a
symbolic link, so that nothing swapped in along the way leads elsewhere; files written whole
through a new temporary file (O_EXCL) and os.replace."""

import os
import secrets
import stat
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_READ = 16 << 20


class SafeDirError(Exception):
    """A name in a held directory is not what belongs there; the message says which and why."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def read_plain(path: Path) -> bytes | None:
    """A regular file's bytes, not through a link at its own name; None if it is not one."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, MAX_READ)
    finally:
        os.close(fd)


@dataclass
class SafeDir:
    """An open directory; `owner` ("this plugin's") names whose files belong in it, in the
    messages of what is refused."""

    fd: int
    path: Path
    owner: str = "ptysup's"

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        within: "SafeDir | None" = None,
        follow: bool = False,
        owner: str = "ptysup's",
    ) -> "SafeDir":
        """The directory `path` (a name in `within`, if given), not through a link at its
        own name unless `follow`; an OSError as os.open raises it."""
        flags = _DIR_FLAGS & ~os.O_NOFOLLOW if follow else _DIR_FLAGS
        if within is None:
            return cls(os.open(path, flags), Path(path), owner)
        return cls(os.open(path, flags, dir_fd=within.fd), within.path / path, within.owner)

    def __enter__(self) -> "SafeDir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        os.close(self.fd)

    def kind(self, name: str) -> str | None:
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return "link"
        if stat.S_ISDIR(st.st_mode):
            return "directory"
        return "file" if stat.S_ISREG(st.st_mode) else "special file"

    def child(self, name: str, *, create: bool) -> "SafeDir | None":
        """The directory `name` in this one; refused if it is a link or not a directory."""
        if create:
            with suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=self.fd)
        try:
            return SafeDir.open(name, within=self)
        except FileNotFoundError:
            return None
        except OSError as exc:
            kind = self.kind(name)
            if kind == "link":
                raise self._link_error(name, "a directory") from None
            raise SafeDirError(
                self.path / name,
                f"{self.path / name} is a {kind or 'path'} where a directory belongs "
                f"({exc.strerror}): move it away first",
            ) from None

    def read(self, name: str) -> bytes | None:
        """The bytes of the regular file `name` (None: there is none)."""
        path = self.path / name
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if self.kind(name) == "link":
                raise self._link_error(name, f"{self.owner} file") from None
            raise SafeDirError(path, f"cannot read {path}: {exc.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SafeDirError(path, f"{path} is not a regular file: move it away first")
            data = bytearray()
            while chunk := os.read(fd, 1 << 16):
                data += chunk
                if len(data) > MAX_READ:
                    raise SafeDirError(path, f"{path} is too big for {self.owner}")
            return bytes(data)
        finally:
            os.close(fd)

    def write(self, name: str, data: bytes, *, mode: int = 0o644) -> None:
        """`data` as the file `name` (see replace); a link or a directory at `name` is
        refused."""
        kind = self.kind(name)
        if kind == "link":
            raise self._link_error(name, f"{self.owner} file")
        if kind not in (None, "file"):
            raise SafeDirError(
                self.path / name,
                f"{self.path / name} is a {kind} where {self.owner} file belongs: move it away",
            )
        self.replace(name, data, mode=mode)

    def replace(
        self, name: str, data: bytes, *, mode: int = 0o644, exact_mode: bool = False
    ) -> None:
        """`data` as the file `name`, whole or not at all: a new temporary file (O_EXCL) in
        this directory renamed over whatever `name` is, a link itself and not what it points
        to. `mode` is narrowed by the umask unless `exact_mode`."""
        while True:
            tmp = f".{name}.{secrets.token_hex(8)}.tmp"
            try:
                fd = os.open(tmp, _WRITE_FLAGS, mode, dir_fd=self.fd)
                break
            except FileExistsError:
                continue
        try:
            with os.fdopen(fd, "wb") as f:
                if exact_mode:
                    os.fchmod(f.fileno(), mode)
                f.write(data)
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)
            raise

    def remove(self, name: str) -> bool:
        """Unlink `name` (a link itself, never what it points to); a directory stays."""
        if self.kind(name) in (None, "directory"):
            return False
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)
        return True

    def _link_error(self, name: str, what: str) -> SafeDirError:
        path = self.path / name
        try:
            to = f" (to {os.readlink(name, dir_fd=self.fd)})"
        except OSError:
            to = ""
        return SafeDirError(
            path,
            f"{path} is a symbolic link{to} where {what} belongs; ptysup neither writes nor "
            "removes anything through a link: remove the link, then try again",
        )
