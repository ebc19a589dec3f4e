"""What a short `ptysup` call and a new daemon image import before they do anything: the
modules their start-up figures were won by leaving out (docs/architecture.md, Start-up)
stay out."""

import subprocess
import sys

CLI_LEAVES_OUT = {
    "typing",
    "re",
    "enum",
    "json",
    "socket",
    "argparse",
    "collections",
    "shlex",
    "base64",
    "contextlib",
    "dataclasses",
}
DAEMON_LEAVES_OUT = {
    "argparse",
    "tomllib",
    "pydantic",
    "importlib.metadata",
    "supervisor.cli.main",
    "supervisor.screen.types",
    "supervisor.opencode.project",
    "supervisor.service.activation",
    "supervisor.daemon.lifecycle.crash",
}


def modules_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(done.stdout.split())


def test_status_and_list_leave_the_heavy_modules_out() -> None:
    python = modules_after("pass")
    for command in ("status", "list"):
        code = (
            "from supervisor.cli.main import main\n"
            f"main(['--no-start', '--socket', '/nonexistent/s', {command!r}])"
        )
        assert (modules_after(code) - python) & CLI_LEAVES_OUT == set(), command


def test_a_new_daemon_image_leaves_out_what_it_needs_later() -> None:
    loaded = modules_after("import supervisor.daemon.lifecycle.main")
    assert loaded & DAEMON_LEAVES_OUT == set()
