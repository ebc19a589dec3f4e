"""Handing a terminal to the daemon over the socket: what it refuses, and that no
descriptor a client passes stays behind in the daemon."""

import array
import os
import pty
import socket
import time

import pytest

from supervisor.client import DaemonError, connect
from supervisor.protocol.messages import Error, Output
from tests.conftest import Sandbox, held_terminals, wait_until
from tests.reliability.helpers import fd_count

pytestmark = pytest.mark.slow


def daemon_pid(sandbox: Sandbox) -> int:
    sandbox.ok("status")
    pid = sandbox.daemon_pid()
    assert pid is not None
    return pid


def test_terminal_without_a_descriptor_is_refused_and_nothing_is_started(
    sandbox: Sandbox,
) -> None:
    with connect(sandbox.socket, autostart=True) as client:
        with pytest.raises(DaemonError) as info:
            client.call("spawn", argv=["sh"], input=True, terminal=True)
        assert info.value.message.startswith("terminal:")
        assert "one descriptor" in info.value.message
        assert client.list() == []


def test_a_descriptor_that_is_not_a_terminal_is_refused_and_closed(sandbox: Sandbox) -> None:
    pid = daemon_pid(sandbox)
    read_end, write_end = os.pipe()
    try:
        with connect(sandbox.socket, autostart=False) as client:
            before = fd_count(pid)
            with pytest.raises(DaemonError) as info:
                client.call("spawn", argv=["sh"], input=True, terminal=True, pass_fd=read_end)
            assert info.value.message == "terminal: the descriptor passed is not a terminal"
            assert client.list() == []
            assert wait_until(lambda: fd_count(pid) == before)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_descriptors_sent_with_other_messages_are_closed(sandbox: Sandbox) -> None:
    pid = daemon_pid(sandbox)
    master, slave = pty.openpty()
    try:
        with connect(sandbox.socket, autostart=False) as client:
            before = fd_count(pid)
            for _ in range(20):
                client.call("status", pass_fd=slave)
            # a bare descriptor with a single byte of nothing in particular: a bad frame
            rights = array.array("i", [slave, slave, slave]).tobytes()
            client.sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
            assert wait_until(lambda: fd_count(pid) == before)
    finally:
        os.close(master)
        os.close(slave)


def test_attach_with_a_terminal_writes_there_and_reads_keys_from_it(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sh", "-c", "stty raw -echo; printf ready; exec cat")
    wait_until(lambda: b"ready" in sandbox.run("read", sid).stdout)
    master, slave = pty.openpty()
    pid = daemon_pid(sandbox)
    try:
        with connect(sandbox.socket, autostart=False) as client:
            result = client.call("attach", session=sid, since=0, terminal=True, pass_fd=slave)
            assert result["terminal"] is True
            seen = b""
            deadline = time.monotonic() + 10
            while b"ready" not in seen and time.monotonic() < deadline:
                seen += os.read(master, 4096)
            os.write(master, b"keys-through-the-terminal")
            while b"keys-through-the-terminal" not in seen and time.monotonic() < deadline:
                seen += os.read(master, 4096)
            assert b"keys-through-the-terminal" in seen
            while client.receive(0.2):
                pass
            assert not any(isinstance(e, Output) for e in client._events), "no output frames"
            assert os.ttyname(slave) in held_terminals(pid)
        # the client went away: the daemon lets go of its terminal
        assert wait_until(lambda: os.ttyname(slave) not in held_terminals(pid))
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(
    ("note", "fragment"),
    [
        ({"type": "written", "sub": "1", "offset": 0}, "'sub'"),
        ({"type": "written", "sub": 1, "offset": -1}, "'offset'"),
        ({"type": "written", "sub": 1}, "'offset'"),
    ],
)
def test_a_bad_written_note_gets_an_error_and_the_connection_goes_on(
    sandbox: Sandbox, note: dict[str, object], fragment: str
) -> None:
    from supervisor.protocol.frames import encode_control

    with connect(sandbox.socket, autostart=True) as client:
        client.sock.sendall(encode_control(note))
        event = client.next_event(10)
        assert isinstance(event, Error)
        assert event.code == "bad_request"
        assert fragment in event.message
        assert client.status()["sessions"] == 0
