"""Installing the units in the user's service manager: a plan of steps, shown or carried out."""

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.safedir import SafeDir
from supervisor.service import units
from supervisor.service.units import ServiceError

SYSTEMD = "systemd"
LAUNCHD = "launchd"
TOOLS = {SYSTEMD: "systemctl", LAUNCHD: "launchctl"}
COMMAND_TIMEOUT = 120.0


def default_manager() -> str:
    return LAUNCHD if sys.platform == "darwin" else SYSTEMD


@dataclass(frozen=True)
class MakeDir:
    path: Path
    mode: int = 0o755

    def describe(self) -> str:
        return f"create {self.path} (mode {self.mode:o})"


@dataclass(frozen=True)
class Write:
    path: Path
    content: bytes

    def describe(self) -> str:
        return f"write {self.path}"


@dataclass(frozen=True)
class Remove:
    path: Path

    def describe(self) -> str:
        return f"remove {self.path}"


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    tolerated: str | None = None

    def describe(self) -> str:
        text = "run " + shlex.join(self.argv)
        return text + (f"  (a failure is fine: {self.tolerated})" if self.tolerated else "")


Step = MakeDir | Write | Remove | Run


@dataclass
class Plan:
    manager: str
    steps: list[Step] = field(default_factory=list)
    done: str = ""
    preflight: tuple[str, ...] | None = None

    @property
    def tool(self) -> str:
        return TOOLS[self.manager]


def _systemctl(*args: str) -> tuple[str, ...]:
    return ("systemctl", "--user", *args)


def _launchd_target() -> str:
    return f"gui/{os.getuid()}"


def install_plan(
    manager: str, socket_path: str, *, socket_activation: bool, env: Mapping[str, str]
) -> Plan:
    command = units.daemon_command()
    if manager == SYSTEMD:
        directory = units.systemd_unit_dir(env)
        rendered = units.render_systemd(command, socket_path, env.get("XDG_RUNTIME_DIR"))
        plan = Plan(
            SYSTEMD, [MakeDir(directory)], preflight=_systemctl("show", "--property=Version")
        )
        socket_file = directory / units.SOCKET_UNIT
        if not socket_activation and socket_file.exists():
            plan.steps += [
                Run(_systemctl("disable", "--now", units.SOCKET_UNIT), "it may not be enabled"),
                Remove(socket_file),
            ]
        names = [units.SERVICE_UNIT] + ([units.SOCKET_UNIT] if socket_activation else [])
        plan.steps += [Write(directory / name, rendered[name].encode()) for name in names]
        start = units.SOCKET_UNIT if socket_activation else units.SERVICE_UNIT
        plan.steps += [Run(_systemctl("daemon-reload")), Run(_systemctl("enable", "--now", start))]
        plan.done = (
            f"installed {start}; "
            + (
                "systemd holds the socket and starts the daemon when a client connects"
                if socket_activation
                else "the daemon runs as a service now and at every login"
            )
            + f" (`ptysup service status`, `journalctl --user -u {units.SERVICE_UNIT}`)"
        )
        return plan
    directory = units.launch_agents_dir(env)
    log = units.launchd_log(env)
    plist = directory / units.PLIST_NAME
    content = units.render_launchd(command, socket_path, str(log), sockets=socket_activation)
    target = _launchd_target()
    plan = Plan(LAUNCHD, [MakeDir(directory), MakeDir(log.parent)])
    if socket_activation:
        plan.steps.append(MakeDir(Path(socket_path).parent, 0o700))
    plan.steps += [
        Run(("launchctl", "bootout", f"{target}/{units.LAUNCHD_LABEL}"), "it may not be loaded"),
        Write(plist, content),
        Run(("launchctl", "enable", f"{target}/{units.LAUNCHD_LABEL}")),
        Run(("launchctl", "bootstrap", target, str(plist))),
    ]
    plan.done = f"installed {plist}; logs go to {log}"
    return plan


def uninstall_plan(manager: str, env: Mapping[str, str]) -> Plan:
    if manager == SYSTEMD:
        directory = units.systemd_unit_dir(env)
        present = [n for n in (units.SOCKET_UNIT, units.SERVICE_UNIT) if (directory / n).exists()]
        plan = Plan(SYSTEMD, preflight=_systemctl("show", "--property=Version"))
        if present:
            plan.steps.append(Run(_systemctl("disable", "--now", *present)))
            plan.steps += [Remove(directory / name) for name in present]
            plan.steps.append(Run(_systemctl("daemon-reload")))
            plan.done = f"uninstalled {', '.join(present)}"
        else:
            plan.done = f"nothing to uninstall: no pty-supervisor unit in {directory}"
        return plan
    plist = units.launch_agents_dir(env) / units.PLIST_NAME
    plan = Plan(LAUNCHD)
    if plist.exists():
        label = f"{_launchd_target()}/{units.LAUNCHD_LABEL}"
        plan.steps += [Run(("launchctl", "bootout", label), "it may not be loaded"), Remove(plist)]
        plan.done = f"uninstalled {plist}"
    else:
        plan.done = f"nothing to uninstall: no {plist}"
    return plan


def describe(plan: Plan) -> list[str]:
    return [step.describe() for step in plan.steps]


def find_tool(plan: Plan, env: Mapping[str, str]) -> str | None:
    return shutil.which(plan.tool, path=env.get("PATH", os.defpath))


def missing_tool_message(plan: Plan) -> str:
    what = "systemd's systemctl" if plan.manager == SYSTEMD else "launchctl (macOS)"
    return (
        f"{plan.tool} is not on PATH: managing a {plan.manager} service needs {what}; "
        f"`ptysup service render --{plan.manager} --output DIR` writes the files to install by hand"
    )


def execute(plan: Plan, env: Mapping[str, str], echo: bool = True) -> None:
    """Carry out every step in order; stop at the first that fails, saying why."""
    if any(isinstance(step, Run) for step in plan.steps):
        if find_tool(plan, env) is None:
            raise ServiceError(missing_tool_message(plan))
        if plan.preflight:
            result = run_tool(plan.preflight, env)
            if result.returncode != 0:
                raise ServiceError(failure_message(plan.manager, plan.preflight, result))
    for step in plan.steps:
        if echo:
            print(step.describe(), file=sys.stderr)
        try:
            _carry_out(step, plan, env)
        except OSError as exc:
            raise ServiceError(f"cannot {step.describe()}: {exc.strerror or exc}") from None


def _carry_out(step: Step, plan: Plan, env: Mapping[str, str]) -> None:
    if isinstance(step, MakeDir):
        step.path.mkdir(mode=step.mode, parents=True, exist_ok=True)
    elif isinstance(step, Write):
        _write_file(step.path, step.content)
    elif isinstance(step, Remove):
        step.path.unlink(missing_ok=True)
    else:
        result = run_tool(step.argv, env)
        if result.returncode != 0 and step.tolerated is None:
            raise ServiceError(failure_message(plan.manager, step.argv, result))


def _write_file(path: Path, content: bytes) -> None:
    """`content` as `path`, whole or not at all (SafeDir.replace, mode 644 whatever the
    umask); never through a symbolic link."""
    with SafeDir.open(path.parent, follow=True) as directory:
        if directory.kind(path.name) == "link":
            raise ServiceError(
                f"{path} is a symbolic link (to {os.readlink(path)}) where ptysup's own unit "
                "file belongs; ptysup does not write through links: remove it, then install again"
            )
        directory.replace(path.name, content, mode=0o644, exact_mode=True)


def run_tool(argv: tuple[str, ...], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=dict(env),
            timeout=COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ServiceError(f"{argv[0]} is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise ServiceError(
            f"`{shlex.join(argv)}` did not finish in {COMMAND_TIMEOUT:.0f} s"
        ) from None


def failure_message(
    manager: str, argv: tuple[str, ...], result: subprocess.CompletedProcess[str]
) -> str:
    detail = (result.stderr or result.stdout).strip()
    message = f"`{shlex.join(argv)}` failed (exit {result.returncode})"
    message += f": {detail}" if detail else ""
    if manager == SYSTEMD and "bus" in detail.lower():
        message += (
            "\nsystemctl --user needs this user's systemd instance: log in through a session "
            "that starts it, or on a headless machine run `loginctl enable-linger $USER`"
        )
    elif manager == SYSTEMD and "enable" in argv:
        message += f"\nsee `journalctl --user -u {units.SERVICE_UNIT}`"
    return message


def running_daemon(socket_path: str) -> int | None:
    """The pid written in the socket's lock file, if that process still lives."""
    try:
        text = Path(socket_path + ".lock").read_text().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def runs_in_systemd_unit(pid: int, unit: str) -> bool | None:
    """Whether `pid` runs in `unit`'s cgroup; None where that cannot be told."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    return any(line.rstrip().endswith("/" + unit) for line in text.splitlines())


def install_conflict(
    manager: str, socket_path: str, *, socket_activation: bool, env: Mapping[str, str]
) -> str | None:
    """Why installing now would fight the daemon already serving the socket, if it would."""
    pid = running_daemon(socket_path)
    if pid is None or manager != SYSTEMD:
        return None
    inside = runs_in_systemd_unit(pid, units.SERVICE_UNIT)
    if inside is None:
        return None
    stop = "`ptysup stop`"
    if inside:
        had_socket = (units.systemd_unit_dir(env) / units.SOCKET_UNIT).exists()
        if had_socket == socket_activation:
            return None
        stop = f"`systemctl --user stop {units.SERVICE_UNIT}`"
        why = "switching socket activation on or off needs the running service stopped"
    else:
        why = "it was not started by the service, which could not take the socket over"
    return (
        f"a daemon (pid {pid}) already serves {socket_path}, and {why}; stop it with {stop} "
        "(this ends its sessions), then install again"
    )


def status_lines(manager: str, env: Mapping[str, str]) -> tuple[bool, list[str]]:
    """Whether it is installed, and what the service manager says about it."""
    lines = []
    if manager == SYSTEMD:
        directory = units.systemd_unit_dir(env)
        present = [n for n in (units.SERVICE_UNIT, units.SOCKET_UNIT) if (directory / n).exists()]
        if not present:
            return False, [f"not installed: no pty-supervisor unit in {directory}"]
        lines.append(f"unit files: {', '.join(str(directory / n) for n in present)}")
        mode = "on" if units.SOCKET_UNIT in present else "off"
        lines.append(f"socket activation: {mode}")
        if shutil.which("systemctl", path=env.get("PATH", os.defpath)) is None:
            raise ServiceError("systemctl is not on PATH: cannot ask systemd about the units")
        for name in present:
            props = "LoadState,ActiveState,SubState,UnitFileState,MainPID,StatusText"
            argv = _systemctl("show", "--property=" + props, name)
            result = run_tool(argv, env)
            if result.returncode != 0:
                raise ServiceError(failure_message(SYSTEMD, argv, result))
            lines.append(_describe_unit(name, _properties(result.stdout)))
        return True, lines
    plist = units.launch_agents_dir(env) / units.PLIST_NAME
    if not plist.exists():
        return False, [f"not installed: no {plist}"]
    lines.append(f"agent: {plist}")
    if shutil.which("launchctl", path=env.get("PATH", os.defpath)) is None:
        raise ServiceError("launchctl is not on PATH: cannot ask launchd about the agent")
    argv = ("launchctl", "print", f"{_launchd_target()}/{units.LAUNCHD_LABEL}")
    result = run_tool(argv, env)
    if result.returncode != 0:
        lines.append(
            f"{units.LAUNCHD_LABEL}: not loaded (`launchctl bootstrap` it, or log in again)"
        )
        return True, lines
    props = _launchctl_fields(result.stdout)
    state = props.get("state", "unknown")
    pid = props.get("pid")
    lines.append(f"{units.LAUNCHD_LABEL}: {state}" + (f" (pid {pid})" if pid else ""))
    return True, lines


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _describe_unit(name: str, props: Mapping[str, str]) -> str:
    text = f"{name}: {props.get('UnitFileState') or 'unknown'}, {props.get('ActiveState', '?')}"
    if props.get("SubState"):
        text += f" ({props['SubState']})"
    if props.get("MainPID", "0") not in ("", "0"):
        text += f", pid {props['MainPID']}"
    if props.get("StatusText"):
        text += f": {props['StatusText']}"
    return text


def _launchctl_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep and key in ("state", "pid") and key not in fields:
            fields[key] = value.strip()
    return fields
