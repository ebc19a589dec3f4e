"""Which shells the daemon starts with its shell integration, and the rc files it writes."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from supervisor.daemon.spawn import shells

SHIM = "/run/ptysup/shim"
ENV = {"HOME": "/home/u", "PATH": f"{SHIM}:/usr/bin:/bin"}
WEIRD = '/tmp/a b/it\'s $HOME "q" \\ `x`/shim'


@pytest.fixture
def shell_dir(tmp_path: Path) -> str:
    return shells.install(str(tmp_path / "shell"))


def integrate(shell_dir: str, *argv: str, **env: str) -> tuple[list[str], dict[str, str]]:
    return shells.integrate(list(argv), {**ENV, **env}, SHIM, shell_dir)


@pytest.mark.parametrize(
    ("args", "login"),
    [
        ((), False),
        (("-i",), False),
        (("-l",), True),
        (("--login",), True),
        (("-il",), True),
        (("-li",), True),
        (("-i", "-l"), True),
    ],
)
def test_an_interactive_bash_reads_our_rc(shell_dir: str, args: tuple[str, ...], login: bool):
    argv, env = integrate(shell_dir, "/usr/bin/bash", *args)
    assert argv == ["/usr/bin/bash", "--init-file", os.path.join(shell_dir, "bashrc"), "-i"]
    assert env[shells.SHIM_VAR] == SHIM
    assert (env.get(shells.LOGIN_VAR) == "1") is login
    assert env["PATH"] == ENV["PATH"]


@pytest.mark.parametrize(
    "args",
    [
        ("-c", "echo hi"),
        ("-ic", "echo hi"),
        ("script.sh",),
        ("-i", "script.sh"),
        ("--norc",),
        ("--norc", "-i"),
        ("--rcfile", "/x"),
        ("--init-file", "/x", "-i"),
        ("--noprofile", "-l"),
        ("--posix",),
        ("-s",),
        ("-x", "-i"),
        ("-",),
        ("--",),
    ],
)
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_any_other_argument_leaves_the_shell_alone(
    shell_dir: str, shell: str, args: tuple[str, ...]
):
    argv, env = integrate(shell_dir, shell, *args)
    assert argv == [shell, *args]
    assert env == ENV


@pytest.mark.parametrize("program", ["sh", "dash", "-bash", "bash5", "ksh", "/bin/bash.real", ""])
def test_other_programs_are_left_alone(shell_dir: str, program: str):
    assert integrate(shell_dir, program, "-i") == ([program, "-i"], ENV)
    assert integrate(shell_dir) == ([], ENV)


def test_zsh_keeps_its_arguments_and_reads_our_zdotdir(shell_dir: str):
    argv, env = integrate(shell_dir, "zsh", "-il")
    assert argv == ["zsh", "-il"]
    assert env["ZDOTDIR"] == os.path.join(shell_dir, "zsh")
    assert env[shells.SHIM_VAR] == SHIM
    assert shells.ZDOTDIR_VAR not in env


def test_the_users_zdotdir_is_kept_for_our_files_to_give_back(shell_dir: str):
    _, env = integrate(shell_dir, "/bin/zsh", ZDOTDIR="/home/u/.config/zsh")
    assert env["ZDOTDIR"] == os.path.join(shell_dir, "zsh")
    assert env[shells.ZDOTDIR_VAR] == "/home/u/.config/zsh"
    _, env = integrate(shell_dir, "zsh", ZDOTDIR=os.path.join(shell_dir, "zsh"))
    assert shells.ZDOTDIR_VAR not in env


def test_fish_gets_an_init_command(shell_dir: str):
    argv, env = integrate(shell_dir, "fish", "-l")
    assert argv == ["fish", "-l", "--init-command", shells.fish_shim_first(SHIM)]
    assert env == ENV


def test_stale_private_variables_never_reach_a_child(shell_dir: str):
    stale = {shells.LOGIN_VAR: "1", shells.SHIM_VAR: "/old", shells.ZDOTDIR_VAR: "/old"}
    _, env = integrate(shell_dir, "bash", "-i", **stale)
    assert env[shells.SHIM_VAR] == SHIM and shells.LOGIN_VAR not in env
    assert shells.ZDOTDIR_VAR not in env
    _, env = integrate(shell_dir, "bash", "-c", "true", **stale)
    assert env == ENV


def test_nothing_is_rewritten_when_the_rc_files_are_missing(tmp_path: Path):
    missing = str(tmp_path / "nothing")
    for argv in (["bash", "-i"], ["zsh"]):
        assert shells.integrate(argv, ENV, SHIM, missing) == (argv, ENV)


def test_the_callers_argv_and_env_are_not_changed(shell_dir: str):
    argv, env = ["bash", "-l"], dict(ENV)
    shells.integrate(argv, env, SHIM, shell_dir)
    assert argv == ["bash", "-l"] and env == ENV


@pytest.mark.parametrize("text", ["/plain", WEIRD, "'", "\\", "\\'", "$(x)", "a\nb", "{a,b}*"])
def test_fish_quoting(text: str):
    quoted = shells.fish_quote(text)
    assert quoted.startswith("'") and quoted.endswith("'")
    if shutil.which("fish"):
        out = subprocess.run(
            ["fish", "--no-config", "-c", f"printf %s {quoted}"], capture_output=True, check=True
        )
        assert out.stdout.decode() == text


@pytest.mark.skipif(not shutil.which("fish"), reason="fish is not installed")
def test_the_fish_command_puts_the_shim_first_once():
    script = f"set -gx PATH /a {shells.fish_quote(WEIRD)} /b {shells.fish_quote(WEIRD)}; "
    script += f"{shells.fish_shim_first(WEIRD)}; printf '%s\\n' $PATH"
    out = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True, check=True)
    assert out.stdout.decode().splitlines() == [WEIRD, "/a", "/b"]


def test_install_writes_private_files(tmp_path: Path):
    directory = tmp_path / "shell"
    assert shells.install(str(directory)) == str(directory)
    shells.install(str(directory))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "zsh").stat().st_mode) == 0o700
    files = [directory / "bashrc", *(directory / "zsh" / n for n in shells.ZSH_FILES)]
    for path in files:
        assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == ["bashrc", "zsh"]
    assert (directory / "bashrc").read_text() == shells.BASHRC


def test_install_never_follows_a_symlink(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "shell").symlink_to(elsewhere)
    with pytest.raises(OSError):
        shells.install(str(tmp_path / "shell"))
    assert not any(elsewhere.iterdir())

    directory = tmp_path / "real"
    directory.mkdir(mode=0o755)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (directory / "bashrc").symlink_to(victim)
    (directory / "zsh").symlink_to(elsewhere)
    with pytest.raises(OSError):
        shells.install(str(directory))
    assert victim.read_text() == "keep"
    assert not (directory / "bashrc").is_symlink()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert not any(elsewhere.iterdir())


def test_the_bash_rc_parses():
    subprocess.run(["bash", "-n", "-c", shells.BASHRC], check=True)


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
@pytest.mark.parametrize("name", list(shells.ZSH_FILES))
def test_the_zsh_files_parse(name: str):
    subprocess.run(["zsh", "-n", "-c", shells.ZSH_FILES[name]], check=True)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a:/b", f"{WEIRD}:/a:/b"),
        (f"{WEIRD}:/a:{WEIRD}:{WEIRD}:/b:{WEIRD}", f"{WEIRD}:/a:/b"),
        (WEIRD, WEIRD),
        ("", WEIRD),
        (":/a", f"{WEIRD}::/a"),
        (f"/a{WEIRD}:{WEIRD}/b", f"{WEIRD}:/a{WEIRD}:{WEIRD}/b"),
    ],
)
def test_the_bash_rc_puts_the_shim_first_once(tmp_path: Path, path: str, expected: str):
    rc = shells.install(str(tmp_path / "shell")) + "/bashrc"
    env = {"HOME": str(tmp_path), "PTYSUP_SHELL_SHIM": WEIRD, "PATH": path}
    script = f'. "{rc}"; printf "%s|%s" "$PATH" "${{PTYSUP_SHELL_SHIM-unset}}"'
    out = subprocess.run(["/bin/bash", "-c", script], env=env, capture_output=True, check=True)
    assert out.stdout.decode() == f"{expected}|unset"
