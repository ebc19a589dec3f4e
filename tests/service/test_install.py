"""`ptysup service install|uninstall|status`, with fake systemctl and launchctl that log
their calls, and without them."""

import os
import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest

from supervisor.service import units
from tests.conftest import Sandbox

from .helpers import calls, service_cli, with_fake_tools


def unit_dir(box: Sandbox) -> Path:
    return Path(box.env["XDG_CONFIG_HOME"]) / "systemd" / "user"


def agents_dir(box: Sandbox) -> Path:
    return box.home / "Library" / "LaunchAgents"


def test_dry_run_prints_the_systemd_commands_and_changes_nothing(
    sandbox: Sandbox, fake_tools: Path
) -> None:
    env = with_fake_tools(sandbox, fake_tools)
    proc = service_cli(sandbox, "install", "--systemd", "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"create {unit_dir(sandbox)} (mode 755)",
        f"write {unit_dir(sandbox) / units.SERVICE_UNIT}",
        "run systemctl --user daemon-reload",
        "run systemctl --user enable --now pty-supervisor.service",
    ]
    assert not unit_dir(sandbox).exists() and calls(fake_tools) == []


def test_dry_run_with_socket_activation(sandbox: Sandbox, fake_tools: Path) -> None:
    env = with_fake_tools(sandbox, fake_tools)
    proc = service_cli(sandbox, "install", "--systemd", "--socket-activation", "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"write {unit_dir(sandbox) / units.SOCKET_UNIT}" in lines
    assert lines[-2:] == [
        "run systemctl --user daemon-reload",
        "run systemctl --user enable --now pty-supervisor.socket",
    ]


def test_dry_run_for_launchd(sandbox: Sandbox, fake_tools: Path) -> None:
    env = with_fake_tools(sandbox, fake_tools)
    proc = service_cli(sandbox, "install", "--launchd", "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    plist = agents_dir(sandbox) / units.PLIST_NAME
    uid = os.getuid()
    assert proc.stdout.splitlines()[-3:] == [
        f"write {plist}",
        f"run launchctl enable gui/{uid}/local.pty-supervisor",
        f"run launchctl bootstrap gui/{uid} {plist}",
    ]


def test_install_without_systemctl_fails_clearly_and_writes_nothing(sandbox: Sandbox) -> None:
    empty = sandbox.root / "empty-bin"
    empty.mkdir()
    env = dict(sandbox.env, PATH=str(empty))
    for flags in ([], ["--dry-run"]):
        proc = service_cli(sandbox, "install", "--systemd", *flags, env=env)
        assert proc.returncode == 1
        assert "systemctl is not on PATH" in proc.stderr
        assert "ptysup service render --systemd --output DIR" in proc.stderr
    assert not unit_dir(sandbox).exists()


def test_install_status_uninstall_through_systemctl(sandbox: Sandbox, fake_tools: Path) -> None:
    env = with_fake_tools(sandbox, fake_tools)
    proc = service_cli(sandbox, "install", "--systemd", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "installed pty-supervisor.service" in proc.stdout
    service = unit_dir(sandbox) / units.SERVICE_UNIT
    assert "Type=notify" in service.read_text()
    assert not (unit_dir(sandbox) / units.SOCKET_UNIT).exists()
    assert calls(fake_tools) == [
        "systemctl --user show --property=Version",
        "systemctl --user daemon-reload",
        "systemctl --user enable --now pty-supervisor.service",
    ]

    proc = service_cli(sandbox, "status", "--systemd", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "socket activation: off" in proc.stdout
    assert (
        "pty-supervisor.service: enabled, active (running), pid 4242: "
        "2 sessions (1 running), 0 clients"
    ) in proc.stdout

    proc = service_cli(sandbox, "install", "--systemd", "--socket-activation", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (unit_dir(sandbox) / units.SOCKET_UNIT).exists()
    assert calls(fake_tools)[-1] == "systemctl --user enable --now pty-supervisor.socket"

    proc = service_cli(sandbox, "install", "--systemd", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not (unit_dir(sandbox) / units.SOCKET_UNIT).exists()
    assert "systemctl --user disable --now pty-supervisor.socket" in calls(fake_tools)

    proc = service_cli(sandbox, "uninstall", "--systemd", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not service.exists()
    assert calls(fake_tools)[-2:] == [
        "systemctl --user disable --now pty-supervisor.service",
        "systemctl --user daemon-reload",
    ]
    proc = service_cli(sandbox, "uninstall", "--systemd", env=env)
    assert proc.returncode == 0 and "nothing to uninstall" in proc.stdout
    proc = service_cli(sandbox, "status", "--systemd", env=env)
    assert proc.returncode == 1 and "not installed" in proc.stdout


def test_a_failing_systemctl_is_reported_with_its_words(sandbox: Sandbox, fake_tools: Path) -> None:
    env = with_fake_tools(sandbox, fake_tools, FAKE_FAIL="daemon-reload")
    proc = service_cli(sandbox, "install", "--systemd", env=env)
    assert proc.returncode == 1
    assert "`systemctl --user daemon-reload` failed (exit 1)" in proc.stderr
    assert calls(fake_tools)[0] == "systemctl --user show --property=Version"
    assert "Failed to connect to bus" in proc.stderr
    assert "loginctl enable-linger" in proc.stderr


def test_install_and_uninstall_through_launchctl(sandbox: Sandbox, fake_tools: Path) -> None:
    env = with_fake_tools(sandbox, fake_tools)
    proc = service_cli(sandbox, "install", "--launchd", "--socket-activation", env=env)
    assert proc.returncode == 0, proc.stderr
    plist_path = agents_dir(sandbox) / units.PLIST_NAME
    plist = plistlib.loads(plist_path.read_bytes())
    assert plist["Sockets"]["control"]["SockPathName"] == sandbox.socket
    assert (sandbox.home / "Library" / "Logs").is_dir()
    uid = os.getuid()
    assert calls(fake_tools) == [
        f"launchctl bootout gui/{uid}/local.pty-supervisor",
        f"launchctl enable gui/{uid}/local.pty-supervisor",
        f"launchctl bootstrap gui/{uid} {plist_path}",
    ]
    proc = service_cli(sandbox, "status", "--launchd", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "local.pty-supervisor: running (pid 4243)" in proc.stdout
    proc = service_cli(sandbox, "uninstall", "--launchd", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not plist_path.exists()


@pytest.mark.slow
def test_install_refuses_to_fight_a_daemon_started_on_demand(
    sandbox: Sandbox, fake_tools: Path
) -> None:
    pid = sandbox.json("status")["pid"]
    env = with_fake_tools(sandbox, fake_tools)
    proc = service_cli(sandbox, "install", "--systemd", env=env)
    assert proc.returncode == 1
    assert f"a daemon (pid {pid}) already serves {sandbox.socket}" in proc.stderr
    assert "ptysup stop" in proc.stderr
    assert calls(fake_tools) == []

    dry = service_cli(sandbox, "install", "--systemd", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "ptysup: warning: installing now would fail" in dry.stderr
    assert f"a daemon (pid {pid}) already serves" in dry.stderr
    assert "daemon-reload" in dry.stdout
    assert calls(fake_tools) == []


def test_uninstall_dry_run_with_nothing_installed_says_so(
    sandbox: Sandbox, fake_tools: Path
) -> None:
    env = with_fake_tools(sandbox, fake_tools)
    proc = service_cli(sandbox, "uninstall", "--systemd", "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to uninstall" in proc.stdout
    assert calls(fake_tools) == []


def test_real_systemctl_without_a_user_manager_fails_clearly(sandbox: Sandbox) -> None:
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        pytest.skip("systemctl is not installed")
    probe = subprocess.run(
        [systemctl, "--user", "show-environment"],
        env=sandbox.env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    if probe.returncode == 0:
        pytest.skip("a systemd user manager answers here; the test would really install")
    proc = service_cli(sandbox, "install", "--systemd")
    assert proc.returncode == 1
    assert (
        "ptysup: service install: `systemctl --user show --property=Version` failed" in proc.stderr
    )
    assert "loginctl enable-linger" in proc.stderr
    assert not unit_dir(sandbox).exists()
