"""The rendered units: systemd-analyze verifies them without a word, plistlib reads the plist."""

import os
import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest

from supervisor.service import units
from tests.conftest import Sandbox

from .helpers import service_cli

ROOT = Path(__file__).resolve().parents[2]


def verify(box: Sandbox, *paths: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed: run `scripts/setup --tests`"
    return subprocess.run(
        [analyze, "verify", "--user", *map(str, paths)],
        capture_output=True,
        text=True,
        env=box.env,
        timeout=60,
        check=False,
    )


def render(box: Sandbox, *flags: str) -> Path:
    out = box.root / "rendered"
    proc = service_cli(box, "render", *flags, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def settings(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_shipped_templates_have_the_promised_settings() -> None:
    service = settings((ROOT / "systemd" / units.SERVICE_UNIT).read_text())
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["Restart"] == ["on-failure"]
    assert service["KillMode"] == ["process"]
    assert service["WatchdogSec"] and service["ExecReload"][0].endswith(" upgrade")
    sock = settings((ROOT / "systemd" / units.SOCKET_UNIT).read_text())
    assert sock["SocketMode"] == ["0600"] and sock["DirectoryMode"] == ["0700"]
    plist = plistlib.loads((ROOT / "launchd" / units.PLIST_NAME).read_bytes())
    assert plist["Sockets"]["control"]["SockPathMode"] == 0o600


def test_rendered_systemd_units_verify_without_any_warning(sandbox: Sandbox) -> None:
    out = render(sandbox, "--systemd")
    service, sock = out / units.SERVICE_UNIT, out / units.SOCKET_UNIT
    proc = verify(sandbox, service, sock)
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "")
    text = service.read_text()
    assert "@" not in text.replace("%t", "")
    unit = settings(text)
    program, *args = unit["ExecStart"][0].split()
    assert os.path.isabs(program) and os.access(program, os.X_OK)
    assert args == ["daemon", "--socket", "%t/pty-supervisor/control.sock"]
    assert unit["ExecReload"][0].split() == [
        program,
        "--no-start",
        "--socket",
        "%t/pty-supervisor/control.sock",
        "upgrade",
    ]
    assert settings(sock.read_text())["ListenStream"] == ["%t/pty-supervisor/control.sock"]


def test_a_socket_outside_the_runtime_dir_with_odd_characters(sandbox: Sandbox) -> None:
    odd = sandbox.root / "odd dir %n $HOME"
    odd.mkdir(mode=0o700)
    env = dict(sandbox.env, PTYSUP_SOCKET=str(odd / "c.sock"))
    out = sandbox.root / "rendered"
    proc = service_cli(sandbox, "render", "--systemd", "--output", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    proc = verify(sandbox, out / units.SERVICE_UNIT, out / units.SOCKET_UNIT)
    assert (proc.returncode, proc.stderr) == (0, "")
    escaped = str(odd / "c.sock").replace("%", "%%")
    listen = settings((out / units.SOCKET_UNIT).read_text())["ListenStream"]
    assert listen == [escaped]
    exec_start = settings((out / units.SERVICE_UNIT).read_text())["ExecStart"][0]
    assert exec_start.endswith(' --socket "' + escaped.replace("$", "$$") + '"')


def test_exec_words_are_quoted_and_escaped_for_systemd() -> None:
    assert units.exec_word("/usr/bin/ptysup") == "/usr/bin/ptysup"
    assert units.exec_word("/a b/c") == '"/a b/c"'
    assert units.exec_word('/x/"q"\\%$') == '"/x/\\"q\\"\\\\%%$$"'
    with pytest.raises(units.ServiceError, match="control character"):
        units.exec_word("/a\nb")


def test_the_command_is_the_ptysup_beside_the_interpreter(tmp_path: Path) -> None:
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.symlink_to("/usr/bin/env")
    assert units.daemon_command(str(python)) == [str(python), "-m", "supervisor"]
    script = tmp_path / "bin" / "ptysup"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert units.daemon_command(str(python)) == [str(script)]


def test_rendered_plist(sandbox: Sandbox) -> None:
    out = render(sandbox, "--launchd")
    plist = plistlib.loads((out / units.PLIST_NAME).read_bytes())
    args = plist["ProgramArguments"]
    assert os.path.isabs(args[0]) and os.access(args[0], os.X_OK)
    assert args[1:] == ["daemon", "--socket", sandbox.socket]
    assert plist["Label"] == units.LAUNCHD_LABEL
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    log = str(sandbox.home / "Library" / "Logs" / units.LOG_NAME)
    assert plist["StandardOutPath"] == plist["StandardErrorPath"] == log
    assert plist["Sockets"] == {"control": {"SockPathName": sandbox.socket, "SockPathMode": 384}}


def test_plist_without_socket_activation_has_no_sockets() -> None:
    data = units.render_launchd(["/opt/ptysup"], "/tmp/s/c.sock", "/h/l.log", sockets=False)
    plist = plistlib.loads(data)
    assert "Sockets" not in plist
    assert plist["ProgramArguments"] == ["/opt/ptysup", "daemon", "--socket", "/tmp/s/c.sock"]
