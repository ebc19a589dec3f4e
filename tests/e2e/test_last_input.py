"""`info`'s `last_input`: where the output stood when the last `write` began, from any client
(the OpenCode plugin's pty_wait searches from there)."""

import pytest

from tests.conftest import Sandbox

pytestmark = pytest.mark.slow


def test_info_tells_the_last_write(sandbox: Sandbox) -> None:
    sid = sandbox.json("spawn", "--", "cat")["id"]
    assert sandbox.json("info", sid)["last_input"] is None
    sandbox.ok("write", sid, "one\n")
    first = sandbox.json("info", sid)["last_input"]
    assert first == {"offset": 0, "enter": True}
    sandbox.ok("expect", sid, "one\r\none")  # the echo, then cat's answer
    end = sandbox.json("info", sid)["end"]
    sandbox.ok("write", sid, "two")
    assert sandbox.json("info", sid)["last_input"] == {"offset": end, "enter": False}
    sandbox.ok("kill", sid)
    assert sandbox.json("info", sid)["last_input"] == {"offset": end, "enter": False}
