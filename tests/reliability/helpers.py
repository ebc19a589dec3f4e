"""What the reliability tests share: the daemon's fds and children from /proc, raw frames,
and running a command as another user or in a mount namespace of its own."""

import json
import os
import shutil
import socket
import subprocess
from typing import Any

NOBODY = 65534


def frame(message: dict[str, Any]) -> bytes:
    data = json.dumps(message).encode()
    return len(data).to_bytes(4, "big") + data


HELLO = frame({"type": "hello", "protocol": 1})


def read_frames(sock: socket.socket, timeout: float = 10.0) -> list[dict[str, Any] | bytes]:
    """Every frame until the daemon closes: control messages parsed, output frames raw."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        data += chunk
    frames: list[dict[str, Any] | bytes] = []
    while len(data) >= 4:
        size = int.from_bytes(data[:4], "big")
        payload, data = data[4 : 4 + size], data[4 + size :]
        frames.append(json.loads(payload) if payload[:1] == b"{" else payload)
    return frames


def request(path: str, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request on a fresh connection; its reply."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.settimeout(timeout)
        sock.sendall(HELLO + frame(message))
        data = b""
        while True:
            while len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[:4], "big"):
                size = int.from_bytes(data[:4], "big")
                payload, data = data[4 : 4 + size], data[4 + size :]
                if payload[:1] == b"{":
                    reply = json.loads(payload)
                    if reply.get("id") == message.get("id") and reply["type"] != "hello":
                        return reply
            chunk = sock.recv(65536)
            assert chunk, "the daemon closed the connection"
            data += chunk


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no fd limit")


def children(pid: int) -> dict[int, str]:
    """The children of `pid` and their states (R, S, Z...)."""
    found: dict[int, str] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids = [int(p) for p in f.read().split()]
        except OSError:
            continue
        for kid in kids:
            try:
                with open(f"/proc/{kid}/stat", "rb") as f:
                    found[kid] = f.read().rsplit(b")", 1)[1].split()[0].decode()
            except OSError:
                continue
    return found


def as_nobody(
    *argv: str, env: dict[str, str] | None = None, euid_only: bool = False, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    who = (
        [f"--euid={NOBODY}"]
        if euid_only
        else [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    )
    return subprocess.run(
        [setpriv, *who, *argv],
        capture_output=True,
        timeout=timeout,
        env=env or {"PATH": "/usr/bin:/bin"},
        check=False,
    )


def can_unshare_mounts() -> bool:
    if os.getuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", "/mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0
