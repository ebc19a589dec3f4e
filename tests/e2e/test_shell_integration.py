"""A bash, zsh or fish the daemon starts finds the `opencode` shim first on PATH after its
start-up files ran, whatever they did to PATH; the user's files stay as they were."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Sandbox, make_sandbox
from tests.e2e.test_opencode_context import Shell

pytestmark = pytest.mark.slow

OTHER = '#!/bin/sh\necho "OTHER OPENCODE"\n'
WEIRD_DIR = "we ird'$x\"q"


def needs(program: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        shutil.which(program) is None,
        reason=f"{program} is not installed (scripts/setup --tests installs it)",
    )


class AnyShell(Shell):
    """`Shell` for bash, zsh and fish: the marker is split by quotes (`MARK-''1001`), which
    all three join, so that the echoed command line never holds it."""

    def do(self, line: str, timeout: float = 30) -> str:
        self.count += 1
        start = self.box.json("info", self.sid)["end"]
        marker = f"MARK-{1000 + self.count}"
        self.box.ok("write", self.sid, f"{line}; echo MARK-''{1000 + self.count}", "--enter")
        done = self.box.run(
            "expect", self.sid, marker, "--since", str(start), "--timeout", str(timeout)
        )
        assert done.returncode == 0, f"{line!r} did not finish: {self.output(start)}"
        return self.output(start)

    def values(self, line: str) -> dict[str, str]:
        """Run `line`, which prints `KEY=value` lines; return them."""
        found = {}
        for text in self.do(line).splitlines():
            key, sep, value = text.partition("=")
            if sep and key.isupper() and key.isidentifier():
                found[key] = value
        return found


def start(box: Sandbox, *argv: str) -> AnyShell:
    return AnyShell(box, box.spawn(*argv, cwd=str(box.home)))


def shim_dir(box: Sandbox) -> str:
    return os.path.join(os.path.dirname(box.socket), "shim")


def other_opencode(box: Sandbox) -> Path:
    directory = box.home / "other bin"
    directory.mkdir(exist_ok=True)
    (directory / "opencode").write_text(OTHER)
    (directory / "opencode").chmod(0o755)
    return directory


def real_argv(box: Sandbox, sid: str) -> list[str]:
    pid = box.json("info", sid)["pid"]
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def check_shim_first(box: Sandbox, shell: AnyShell, *markers: str) -> dict[str, str]:
    line = (
        'echo "OC=$(command -v opencode)"; echo "P=$PATH"; '
        'echo "LEAK=$(env | grep -c -e ^PTYSUP_SHELL_ -e ^PTYSUP_USER_)"'
    )
    for marker in markers:
        line += f'; echo "{marker}=${marker}"'
    found = shell.values(line)
    assert found["OC"] == os.path.join(shim_dir(box), "opencode"), found
    assert found["P"].split(":")[0] == shim_dir(box)
    assert found["P"].split(":").count(shim_dir(box)) == 1
    assert found["LEAK"] == "0"
    for marker in markers:
        assert found[marker] == "yes", f"the start-up file setting {marker} did not run"
    return found


@pytest.fixture
def weird(short_tmp: Path) -> Iterator[Sandbox]:
    """A sandbox whose socket (so the shim) sits in a directory named with a space, quotes
    and a `$`."""
    socket = short_tmp / "run" / WEIRD_DIR / "control.sock"
    box = make_sandbox(short_tmp, PTYSUP_SOCKET=str(socket))
    try:
        yield box
    finally:
        left = box.cleanup()
        assert not left, f"processes left behind: {left}"


@pytest.mark.parametrize("box_name", ["sandbox", "weird"])
def test_a_bashrc_prepending_another_opencode_leaves_the_shim_first(
    request: pytest.FixtureRequest, box_name: str
) -> None:
    box: Sandbox = request.getfixturevalue(box_name)
    other = other_opencode(box)
    bashrc = f'export PATH="{other}:$PATH"\nBASHRC_RAN=yes\necho "SRC=${{BASH_SOURCE[0]}}"\n'
    (box.home / ".bashrc").write_text(bashrc)
    shell = start(box, "bash", "-i")
    found = check_shim_first(box, shell, "BASHRC_RAN")
    assert found["P"].split(":")[1] == str(other)
    assert f"SRC={box.home}/.bashrc" in shell.output(0)
    assert shell.values('echo "Z0=$0"')["Z0"] == "bash"
    assert (box.home / ".bashrc").read_text() == bashrc
    assert box.json("info", shell.sid)["argv"] == ["bash", "-i"]
    assert real_argv(box, shell.sid)[1] == "--init-file"


def test_a_login_bash_whose_profile_resets_path_gets_the_shim_back(sandbox: Sandbox) -> None:
    (sandbox.home / ".bash_profile").write_text("PATH=/usr/bin:/bin\nPROFILE_RAN=yes\n")
    (sandbox.home / ".profile").write_text("PROFILE_RAN=no-the-wrong-file\n")
    (sandbox.home / ".bashrc").write_text("BASHRC_RAN=yes\n")
    shell = start(sandbox, "bash", "-l")
    found = check_shim_first(sandbox, shell, "PROFILE_RAN")
    assert found["P"] == f"{shim_dir(sandbox)}:/usr/bin:/bin"
    assert shell.values('echo "B=${BASHRC_RAN-unset}"')["B"] == "unset"
    assert sandbox.json("info", shell.sid)["argv"] == ["bash", "-l"]


def test_an_error_in_the_bashrc_does_not_stop_the_shim(sandbox: Sandbox) -> None:
    other = other_opencode(sandbox)
    (sandbox.home / ".bashrc").write_text(
        f'export PATH="{other}:$PATH"\nBASHRC_RAN=yes\necho ${{nothing:?boom}}\nif then fi\n'
    )
    check_shim_first(sandbox, start(sandbox, "bash"), "BASHRC_RAN")


@pytest.mark.parametrize(
    "argv", [("bash", "-c", "sleep 60; true"), ("bash", "--norc", "-i"), ("bash", "-i", "-x")]
)
def test_a_bash_with_other_arguments_is_not_rewritten(
    sandbox: Sandbox, argv: tuple[str, ...]
) -> None:
    (sandbox.home / ".bashrc").write_text("BASHRC_RAN=yes\n")
    sid = sandbox.spawn(*argv)
    assert sandbox.json("info", sid)["argv"] == list(argv)
    assert real_argv(sandbox, sid) == list(argv)


@needs("zsh")
@pytest.mark.parametrize("box_name", ["sandbox", "weird"])
def test_a_zshrc_prepending_another_opencode_leaves_the_shim_first(
    request: pytest.FixtureRequest, box_name: str
) -> None:
    box: Sandbox = request.getfixturevalue(box_name)
    other = other_opencode(box)
    zshrc = f'export PATH="{other}:$PATH"\nZSHRC_RAN=yes\n'
    (box.home / ".zshrc").write_text(zshrc)
    (box.home / ".zshenv").write_text("ZSHENV_RAN=yes\n")
    shell = start(box, "zsh", "-i")
    found = check_shim_first(box, shell, "ZSHRC_RAN", "ZSHENV_RAN")
    assert found["P"].split(":")[1] == str(other)
    assert shell.values('echo "Z=${ZDOTDIR-unset}"')["Z"] == "unset"
    assert (box.home / ".zshrc").read_text() == zshrc
    assert box.json("info", shell.sid)["argv"] == ["zsh", "-i"]


@needs("zsh")
def test_a_login_zsh_with_its_own_zdotdir_gets_the_shim_back(sandbox: Sandbox) -> None:
    zdotdir = sandbox.home / ".config" / "zsh"
    zdotdir.mkdir(parents=True)
    (zdotdir / ".zprofile").write_text("PATH=/usr/bin:/bin\nZPROFILE_RAN=yes\n")
    (zdotdir / ".zshrc").write_text("ZSHRC_RAN=yes\necho ${nothing:?boom}\n")
    (zdotdir / ".zlogin").write_text('ZLOGIN_RAN=yes\necho "ZL=$ZDOTDIR"\n')
    (sandbox.home / ".zshrc").write_text("ZSHRC_RAN=the-wrong-file\n")
    sid = sandbox.spawn("zsh", "-l", cwd=str(sandbox.home), env=f"ZDOTDIR={zdotdir}")
    shell = AnyShell(sandbox, sid)
    found = check_shim_first(sandbox, shell, "ZPROFILE_RAN", "ZSHRC_RAN", "ZLOGIN_RAN")
    assert found["P"] == f"{shim_dir(sandbox)}:/usr/bin:/bin"
    assert shell.values('echo "Z=${ZDOTDIR-unset}"')["Z"] == str(zdotdir)
    assert f"ZL={zdotdir}" in shell.output(0)
    assert sandbox.json("info", sid)["argv"] == ["zsh", "-l"]


@needs("zsh")
def test_a_zsh_with_other_arguments_is_not_rewritten(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("zsh", "-f", "-i")
    assert real_argv(sandbox, sid) == ["zsh", "-f", "-i"]
    shell = AnyShell(sandbox, sid)
    assert shell.values('echo "Z=${ZDOTDIR-unset}"')["Z"] == "unset"


@needs("fish")
@pytest.mark.parametrize("box_name", ["sandbox", "weird"])
def test_a_config_fish_prepending_another_opencode_leaves_the_shim_first(
    request: pytest.FixtureRequest, box_name: str
) -> None:
    box: Sandbox = request.getfixturevalue(box_name)
    other = other_opencode(box)
    config = Path(box.env["XDG_CONFIG_HOME"]) / "fish" / "config.fish"
    config.parent.mkdir(parents=True)
    config.write_text(f"set -gx PATH '{other}' $PATH\nset -g FISH_RAN yes\n")
    shell = start(box, "fish", "-l")
    found = shell.values(
        'echo "OC=$(command -v opencode)"; echo "P=$PATH[1] $PATH[2]"; echo "F=$FISH_RAN"'
    )
    assert found["OC"] == os.path.join(shim_dir(box), "opencode")
    assert found["P"] == f"{shim_dir(box)} {other}"
    assert found["F"] == "yes"
    assert box.json("info", shell.sid)["argv"] == ["fish", "-l"]


@needs("fish")
def test_a_fish_running_a_command_is_not_rewritten(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("fish", "-c", "sleep 60; true")
    assert real_argv(sandbox, sid) == ["fish", "-c", "sleep 60; true"]


def test_without_the_shim_no_shell_is_rewritten(short_tmp: Path) -> None:
    box = make_sandbox(short_tmp, PTYSUP_SHIM="false")
    try:
        sid = box.spawn("bash", "-i")
        assert real_argv(box, sid) == ["bash", "-i"]
        assert not (Path(box.socket).parent / "shell").exists()
    finally:
        left = box.cleanup()
        assert not left, f"processes left behind: {left}"
