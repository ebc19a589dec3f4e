"""An offset the daemon gives out can always be read from: `write`'s offset and `info`'s end
are never past what `read --since` takes, though the byte plane reads ahead of what it has
told the event loop of (issue 24)."""

import time

import pytest

from supervisor.client import DaemonError, connect
from tests.conftest import Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.byte_path]


def test_the_offset_of_a_write_and_the_end_in_info_are_readable_at_once_in_a_flood(
    sandbox: Sandbox,
) -> None:
    sid = sandbox.spawn("sh", "-c", "cat > /dev/null & yes flood")
    past: list[str] = []
    tries = 0
    with connect(sandbox.socket, autostart=False) as client:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            tries += 1
            for offset in (
                client.call("write", session=sid, data="x")["offset"],
                client.call("info", session=sid)["end"],
            ):
                try:
                    client.call("subscribe", session=sid, since=offset, follow=False)
                except DaemonError as exc:
                    past.append(exc.message)
        client.kill(sid)
    assert tries > 20
    assert not past, f"{len(past)} of {2 * tries}: {past[0]}"
