"""Socket activation: systemd's LISTEN_FDS protocol, launchd's launch_activate_socket."""

import ctypes
import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supervisor.service import activation
from tests.conftest import ROOT

# Plays systemd in a fresh process: puts a socket (or a pipe) at fd 3, sets LISTEN_*, and
# reports what inherited_listener makes of it.
CHILD = r"""
import fcntl, json, os, socket, sys
from supervisor.service.activation import ActivationError, inherited_listener
bound, served, kind, listen_pid = sys.argv[1:5]
if kind == "socket":
    s = socket.socket(socket.AF_UNIX)
    s.bind(bound)
    s.listen()
    fd = s.detach()
else:
    fd, w = os.pipe()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ.update(
    LISTEN_PID=str(os.getpid()) if listen_pid == "self" else listen_pid,
    LISTEN_FDS="1",
    LISTEN_FDNAMES="control",
)
try:
    sock = inherited_listener(None if served == "ANY" else served)
    result = {"listener": sock.getsockname() if sock else None}
except ActivationError as exc:
    result = {"error": str(exc)}
result["env"] = sorted(k for k in os.environ if k.startswith("LISTEN_"))
try:
    result["fd3"] = "cloexec" if fcntl.fcntl(3, fcntl.F_GETFD) & fcntl.FD_CLOEXEC else "inheritable"
except OSError:
    result["fd3"] = "closed"
print("RESULT " + json.dumps(result))
"""


def activate(tmp: Path, *, kind: str = "socket", served: str = "", pid: str = "self") -> Any:
    bound = str(tmp / "bound.sock")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, bound, served or bound, kind, pid],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=True,
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))


def test_the_socket_systemd_passed_is_taken_and_the_variables_go(short_tmp: Path) -> None:
    result = activate(short_tmp)
    assert result == {"listener": str(short_tmp / "bound.sock"), "env": [], "fd3": "cloexec"}


def test_with_no_socket_chosen_the_passed_one_decides(short_tmp: Path) -> None:
    result = activate(short_tmp, served="ANY")
    assert result == {"listener": str(short_tmp / "bound.sock"), "env": [], "fd3": "cloexec"}


def test_fds_meant_for_another_process_are_left_alone(short_tmp: Path) -> None:
    result = activate(short_tmp, pid="1")
    assert result == {"listener": None, "env": [], "fd3": "inheritable"}


def test_a_socket_bound_elsewhere_is_refused(short_tmp: Path) -> None:
    result = activate(short_tmp, served=str(short_tmp / "other.sock"))
    assert "passed a socket bound to" in result["error"]
    assert "other.sock" in result["error"] and result["fd3"] == "closed"


def test_fds_that_are_not_listening_sockets_are_closed(short_tmp: Path) -> None:
    result = activate(short_tmp, kind="pipe")
    assert result == {"listener": None, "env": [], "fd3": "closed"}


ACTIVATE = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.POINTER(ctypes.POINTER(ctypes.c_int)),
    ctypes.POINTER(ctypes.c_size_t),
)


def fake_launchd(fds: list[int], err: int = 0) -> tuple[Any, list[bytes]]:
    """launch_activate_socket as launchd implements it: a malloc'd array the caller frees."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    asked: list[bytes] = []

    def activate(name: bytes, out: Any, count: Any) -> int:
        asked.append(name)
        if err:
            return err
        block = libc.malloc(ctypes.sizeof(ctypes.c_int) * len(fds))
        array = ctypes.cast(block, ctypes.POINTER(ctypes.c_int))
        for i, fd in enumerate(fds):
            array[i] = fd
        out[0] = array
        count[0] = len(fds)
        return 0

    return ACTIVATE(activate), asked


def tracking_free(freed: list[int]) -> Any:
    real_free = ctypes.CDLL(None).free
    real_free.argtypes = [ctypes.c_void_p]

    def free(pointer: Any) -> None:
        address = ctypes.cast(pointer, ctypes.c_void_p).value
        assert address is not None
        freed.append(address)
        real_free(address)

    return free


def test_launchd_sockets_through_the_c_interface(short_tmp: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(short_tmp / "c.sock"))
    sock.listen()
    sock.set_inheritable(True)
    r, w = os.pipe()
    func, asked = fake_launchd([sock.fileno(), r])
    freed: list[int] = []
    passed = activation.launchd_fds("control", activate=func, free=tracking_free(freed))
    assert asked == [b"control"] and len(freed) == 1
    assert passed == [
        activation.Inherited(sock.fileno(), "control"),
        activation.Inherited(r, "control"),
    ]
    assert not sock.get_inheritable()
    chosen = activation.choose_listener(passed, str(short_tmp / "c.sock"), "launchd")
    assert chosen is not None and chosen.fileno() == sock.fileno()
    with pytest.raises(OSError):
        os.fstat(r)
    chosen.detach()
    sock.close()
    os.close(w)


@pytest.mark.parametrize("err", [errno.ESRCH, errno.ENOENT])
def test_not_a_launchd_job_means_no_sockets(err: int) -> None:
    func, _ = fake_launchd([], err)
    freed: list[int] = []
    assert activation.launchd_fds("control", activate=func, free=freed.append) == []
    assert freed == []


def test_a_launchd_failure_is_an_error() -> None:
    func, _ = fake_launchd([], errno.EALREADY)
    with pytest.raises(activation.ActivationError, match="launch_activate_socket"):
        activation.launchd_fds("control", activate=func, free=lambda p: None)


@pytest.mark.skipif(
    sys.platform == "darwin", reason="on macOS the real launch_activate_socket answers"
)
def test_off_macos_launchd_is_never_asked() -> None:
    assert activation.launchd_fds("control") == []


@pytest.mark.skipif(
    sys.platform != "darwin",
    reason="launch_activate_socket exists only in macOS's libSystem; the C interface is "
    "tested above against a stand-in with the same signature",
)
def test_a_process_launchd_did_not_start_gets_no_sockets() -> None:
    assert activation.launchd_fds("control") == []
