"""Processes as the kernel reports them: the one reader of `/proc/<pid>/stat`, with `ps` where
there is no /proc (macOS). Cheap to import: the CLI uses it too."""

import os

HAS_PROC = os.path.isdir("/proc/self")


class ProcStat:
    """`state` is one letter (R, S, D, Z for a zombie, T, …); `tty` the controlling
    terminal's device number, where the system says (Linux). A plain class: the CLI imports
    this module, and a dataclass would cost it more than the rest of its start."""

    __slots__ = ("pgrp", "pid", "ppid", "sid", "state", "tty")

    def __init__(
        self, pid: int, state: str, ppid: int, pgrp: int, sid: int, tty: int | None
    ) -> None:
        self.pid = pid
        self.state = state
        self.ppid = ppid
        self.pgrp = pgrp
        self.sid = sid
        self.tty = tty

    @property
    def zombie(self) -> bool:
        return self.state == "Z"

    def __repr__(self) -> str:
        return f"ProcStat(pid={self.pid}, state={self.state!r}, sid={self.sid})"


def _parse(pid: int, raw: bytes) -> ProcStat:
    # The command name is in parentheses and may itself hold ") ": split at the last one.
    fields = raw[raw.rfind(b")") + 2 :].split()
    return ProcStat(
        pid, fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[4])
    )


def _from_ps(pid: int) -> ProcStat | None:
    import subprocess

    try:
        out = subprocess.run(
            ["ps", "-o", "ppid=,pgid=,stat=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if len(out) < 3:
            return None
        return ProcStat(pid, out[2][0], int(out[0]), int(out[1]), os.getsid(pid), None)
    except (OSError, ValueError):
        return None


def stat(pid: int) -> ProcStat | None:
    """What the kernel says of `pid`, or None if there is no such process. Raises OSError
    only when /proc cannot be read at all (out of descriptors, say)."""
    if not HAS_PROC:
        return _from_ps(pid)
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return _parse(pid, f.read())
    except (FileNotFoundError, ProcessLookupError):
        return None


def every() -> list[ProcStat]:
    """Every process there is, in one pass."""
    if not HAS_PROC:
        return _every_ps()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    found.append(_parse(int(name), f.read()))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def _every_ps() -> list[ProcStat]:
    import subprocess

    out = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,pgid=,stat="], capture_output=True, text=True, check=False
    ).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        pid = int(parts[0])
        try:
            sid = os.getsid(pid)
        except OSError:
            continue
        found.append(ProcStat(pid, parts[3][0], int(parts[1]), int(parts[2]), sid, None))
    return found


def children_of_self() -> list[int]:
    """The daemon's own children (Linux: every thread's list); empty where not known."""
    pids: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return pids


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie does not count)."""
    if HAS_PROC:
        try:
            info = stat(pid)
        except OSError:
            info = None
        else:
            return info is not None and not info.zombie
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
