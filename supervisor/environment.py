"""The environment of a child whose caller sent none: enough to log in, no more. Shared by
the CLI (`--clean-env`) and the daemon."""

import os
import pwd

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
DEFAULT_TERM = "xterm-256color"


def minimal_env() -> dict[str, str]:
    entry = pwd.getpwuid(os.getuid())
    return {
        "HOME": entry.pw_dir,
        "USER": entry.pw_name,
        "LOGNAME": entry.pw_name,
        "SHELL": entry.pw_shell or "/bin/sh",
        "PATH": DEFAULT_PATH,
        "LANG": "C.UTF-8",
    }
