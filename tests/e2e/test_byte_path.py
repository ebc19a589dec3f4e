"""The byte path a daemon runs: the compiled plane where it is built, the Python one on
request, and the same bytes either way."""

import hashlib
import json

import pytest

from tests.conftest import make_sandbox

pytestmark = pytest.mark.byte_path

try:
    from supervisor.native import _plane
except ImportError:
    _plane = None


def status(box) -> dict:
    return json.loads(box.ok("status", "--json"))


@pytest.mark.parametrize("native", ["0", "1"])
def test_status_says_which_byte_path_runs_and_output_is_the_same(short_tmp, native):
    if native == "1" and _plane is None:
        pytest.skip("the compiled byte plane is not built here (no C compiler or headers)")
    box = make_sandbox(short_tmp, PTYSUP_NATIVE=native)
    try:
        path = status(box)["byte_path"]
        assert path["byte_path"] == ("native" if native == "1" else "python")
        text = box.ok("status")
        assert ("byte path:   native (compiled)" in text) == (native == "1")
        assert ("byte path:   python (PTYSUP_NATIVE=0)" in text) == (native == "0")
        out = box.run("run", "--", "sh", "-c", "seq 1 200000; printf 'end\\n'", check=True)
        want = "".join(f"{i}\n" for i in range(1, 200001)) + "end\n"
        assert hashlib.sha256(out.stdout).hexdigest() == hashlib.sha256(want.encode()).hexdigest()
        sid = box.spawn("sh", "-c", "printf 'a\\nb\\n'; sleep 30")
        box.run("expect", sid, "b", "--timeout", "10", check=True)
        assert box.run("read", sid, check=True).stdout == b"a\r\nb\r\n"
    finally:
        assert not box.cleanup()


def test_a_bad_byte_path_setting_stops_the_daemon_with_its_name(short_tmp):
    box = make_sandbox(short_tmp, PTYSUP_NATIVE="yes")
    try:
        done = box.run("list")
        assert done.returncode != 0
        assert b"PTYSUP_NATIVE must be 0 or 1, not 'yes'" in done.stderr
    finally:
        assert not box.cleanup()
