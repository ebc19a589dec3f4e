"""Shell integration: the `opencode` shim first on PATH after the user's start-up files.

The shim directory goes first on every child's PATH, but an interactive shell's start-up
files run later and may prepend another `opencode` (OpenCode's installer adds one to
~/.bashrc) or reset PATH altogether (/etc/profile of a login shell). For the shells the
daemon starts itself — an interactive bash, zsh or fish with no arguments but `-i`/`-l` —
the command line and environment are rewritten, as editors inject their shell integration,
so that the user's own files run as usual and the shim goes first once they are done. The
user's files are never edited; anything else (`-c`, a script, `--norc`...) is left alone.

- bash: `bash --init-file <shell dir>/bashrc -i`, which reads the profile files (login) or
  ~/.bashrc as bash would have.
- zsh: ZDOTDIR points to `<shell dir>/zsh`, whose files run the user's own from the user's
  ZDOTDIR (else $HOME) and give that ZDOTDIR back once zsh has read its last file.
- fish: `--init-command`, which fish runs after its configuration files.
"""

import contextlib
import os
import stat
from collections.abc import Mapping, Sequence

from supervisor.safedir import SafeDir

SHIM_VAR = "PTYSUP_SHELL_SHIM"
"""The shim directory, for the rc files (they unset it)."""
LOGIN_VAR = "PTYSUP_SHELL_LOGIN"
"""Set for a bash asked to be a login shell: our rc reads the profile files (and unsets it)."""
ZDOTDIR_VAR = "PTYSUP_USER_ZDOTDIR"
"""The user's own ZDOTDIR, when there was one, while zsh reads ours (our .zshenv unsets it)."""
PRIVATE = (SHIM_VAR, LOGIN_VAR, ZDOTDIR_VAR)

INTERACTIVE_ARGS = frozenset({"-i"})
LOGIN_ARGS = frozenset({"-l", "--login", "-il", "-li"})

BASH_RC = "bashrc"
ZSH_DIR = "zsh"

BASHRC = """\
# pty-supervisor: the start-up file of an interactive bash the daemon starts, run as
# `bash --init-file <this file> -i`. It reads the user's own files as bash would have (the
# profile files for a login shell, else ~/.bashrc; Debian's bash reads /etc/bash.bashrc
# itself), then puts the `opencode` shim first on PATH again, whatever they did to PATH.

__ptysup_shim_first() {
    builtin local dir="$1" rest=":$PATH:"
    while [[ $rest == *":$dir:"* ]]; do
        rest=${rest//":$dir:"/:}
    done
    rest=${rest#:}
    rest=${rest%:}
    builtin export PATH="$dir${rest:+:$rest}"
}

__ptysup_shim=${PTYSUP_SHELL_SHIM-}
builtin unset PTYSUP_SHELL_SHIM

if [[ -n ${PTYSUP_SHELL_LOGIN-} ]]; then
    builtin unset PTYSUP_SHELL_LOGIN
    if [[ -r /etc/profile ]]; then
        . /etc/profile
    fi
    if [[ -r ~/.bash_profile ]]; then
        . ~/.bash_profile
    elif [[ -r ~/.bash_login ]]; then
        . ~/.bash_login
    elif [[ -r ~/.profile ]]; then
        . ~/.profile
    fi
elif [[ -r ~/.bashrc ]]; then
    . ~/.bashrc
fi

if [[ -n ${__ptysup_shim-} ]]; then
    __ptysup_shim_first "$__ptysup_shim"
fi
builtin unset -v __ptysup_shim
builtin unset -f __ptysup_shim_first
"""

ZSHENV = """\
# pty-supervisor: the ZDOTDIR of a zsh the daemon starts. Each file here runs the user's own
# (from the user's ZDOTDIR, else $HOME) with ZDOTDIR set to the user's value, then sets it
# back to this directory so that zsh reads the next file here; after the last file zsh
# reads, ZDOTDIR is the user's again. .zshrc and .zlogin put the `opencode` shim first on
# PATH, whatever the user's files did to it.

typeset -g __ptysup_zdotdir="$ZDOTDIR"
typeset -g __ptysup_shim="${PTYSUP_SHELL_SHIM-}"
unset PTYSUP_SHELL_SHIM
if (( ${+PTYSUP_USER_ZDOTDIR} )); then
    typeset -g __ptysup_user_zdotdir="$PTYSUP_USER_ZDOTDIR"
    unset PTYSUP_USER_ZDOTDIR
fi

__ptysup_user() {
    emulate -L zsh
    if (( ${+__ptysup_user_zdotdir} )); then
        typeset -gx ZDOTDIR="$__ptysup_user_zdotdir"
    else
        unset ZDOTDIR
    fi
}

__ptysup_ours() {
    emulate -L zsh
    if (( ${+ZDOTDIR} )); then
        typeset -g __ptysup_user_zdotdir="$ZDOTDIR"
    else
        unset __ptysup_user_zdotdir
    fi
    typeset -g ZDOTDIR="$__ptysup_zdotdir"
}

__ptysup_shim_first() {
    emulate -L zsh
    local entry
    local -a kept
    [[ -n $__ptysup_shim ]] || return 0
    for entry in "${path[@]}"; do
        [[ $entry == "$__ptysup_shim" ]] || kept+=("$entry")
    done
    path=("$__ptysup_shim" "${kept[@]}")
    export PATH
}

__ptysup_done() {
    unset __ptysup_zdotdir __ptysup_shim __ptysup_user_zdotdir
    unfunction __ptysup_user __ptysup_ours __ptysup_shim_first __ptysup_done
}

__ptysup_user
{
    if [[ -r "${ZDOTDIR-$HOME}/.zshenv" ]]; then
        source "${ZDOTDIR-$HOME}/.zshenv"
    fi
} always {
    if [[ -o interactive || -o login ]]; then
        __ptysup_ours
    else
        __ptysup_done
    fi
}
"""

ZPROFILE = """\
# pty-supervisor: see .zshenv here.
__ptysup_user
{
    if [[ -r "${ZDOTDIR-$HOME}/.zprofile" ]]; then
        source "${ZDOTDIR-$HOME}/.zprofile"
    fi
} always {
    __ptysup_ours
}
"""

ZSHRC = """\
# pty-supervisor: see .zshenv here.
__ptysup_user
{
    if [[ -r "${ZDOTDIR-$HOME}/.zshrc" ]]; then
        source "${ZDOTDIR-$HOME}/.zshrc"
    fi
} always {
    __ptysup_shim_first
    if [[ -o login ]]; then
        __ptysup_ours
    else
        __ptysup_done
    fi
}
"""

ZLOGIN = """\
# pty-supervisor: see .zshenv here.
__ptysup_user
{
    if [[ -r "${ZDOTDIR-$HOME}/.zlogin" ]]; then
        source "${ZDOTDIR-$HOME}/.zlogin"
    fi
} always {
    __ptysup_shim_first
    __ptysup_done
}
"""

ZSH_FILES = {".zshenv": ZSHENV, ".zprofile": ZPROFILE, ".zshrc": ZSHRC, ".zlogin": ZLOGIN}


def plain_args(args: Sequence[str]) -> bool | None:
    """For a shell's arguments after argv[0]: None unless they only ask for an interactive
    or login shell; else whether a login shell is asked for."""
    if any(a not in INTERACTIVE_ARGS and a not in LOGIN_ARGS for a in args):
        return None
    return any(a in LOGIN_ARGS for a in args)


def fish_quote(text: str) -> str:
    """`text` as one fish word: in single quotes only `\\` and `'` are special."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_shim_first(shim_dir: str) -> str:
    """Fish commands that put `shim_dir` first on PATH, once."""
    quoted = fish_quote(shim_dir)
    return (
        f"while contains -- {quoted} $PATH; "
        f"set -e PATH[(contains -i -- {quoted} $PATH)]; end; "
        f"set -gx PATH {quoted} $PATH"
    )


def integrate(
    argv: Sequence[str], env: Mapping[str, str], shim_dir: str, shell_dir: str
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run `argv` with the shim first on PATH after
    the shell's start-up files; anything but a plain interactive bash, zsh or fish is
    returned as it was."""
    new_argv = list(argv)
    new_env = {k: v for k, v in env.items() if k not in PRIVATE}
    if not new_argv:
        return new_argv, new_env
    shell = os.path.basename(new_argv[0])
    login = plain_args(new_argv[1:])
    if login is None:
        return new_argv, new_env
    if shell == "bash":
        rc = os.path.join(shell_dir, BASH_RC)
        if not os.path.isfile(rc):
            return new_argv, new_env
        new_env[SHIM_VAR] = shim_dir
        if login:
            new_env[LOGIN_VAR] = "1"
        return [new_argv[0], "--init-file", rc, "-i"], new_env
    if shell == "zsh":
        zdotdir = os.path.join(shell_dir, ZSH_DIR)
        if not os.path.isfile(os.path.join(zdotdir, ".zshenv")):
            return new_argv, new_env
        user = new_env.get("ZDOTDIR")
        if user is not None and user != zdotdir:
            new_env[ZDOTDIR_VAR] = user
        new_env["ZDOTDIR"] = zdotdir
        new_env[SHIM_VAR] = shim_dir
        return new_argv, new_env
    if shell == "fish":
        return [*new_argv, "--init-command", fish_shim_first(shim_dir)], new_env
    return new_argv, new_env


def install(shell_dir: str) -> str:
    """Write the rc files under `shell_dir` (atomically, never through a symlink) and
    return `shell_dir`."""
    with _open_private_dir(shell_dir) as top:
        top.replace(BASH_RC, BASHRC.encode(), mode=0o600)
        with _open_private_dir(ZSH_DIR, top) as zsh:
            for name, text in ZSH_FILES.items():
                zsh.replace(name, text.encode(), mode=0o600)
    return shell_dir


def _open_private_dir(path: str, within: SafeDir | None = None) -> SafeDir:
    """`path` (in `within`), made if missing, as a directory only this user can enter."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700, dir_fd=within.fd if within else None)
    directory = SafeDir.open(path, within=within)
    try:
        info = os.fstat(directory.fd)
        if info.st_uid != os.geteuid():
            raise PermissionError(f"{path} belongs to another user")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.fchmod(directory.fd, 0o700)
    except BaseException:
        directory.close()
        raise
    return directory
