"""The plainest command lines of the commands people and scripts run most, read without
argparse: loading it and building a parser is a fifth of such a call.

`parse` takes only what it understands exactly (the global flags before or after the
command, the command's own flags spelt out, its positional arguments) and gives what
argparse would; anything else, help and mistakes included, is for the full parser.
"""

from types import SimpleNamespace

GLOBAL_FLAGS = frozenset({"--no-start"})
GLOBAL_VALUES = frozenset({"--socket"})
COMMANDS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "status": (frozenset({"--json"}), ()),
    "list": (frozenset({"--json"}), ()),
    "ls": (frozenset({"--json"}), ()),
    "info": (frozenset({"--json"}), ("session",)),
}
"""command -> (its flags, the names of its positional arguments)"""
DEFAULTS = {"list": {"label": []}, "ls": {"label": []}}


def parse(argv: list[str]) -> SimpleNamespace | None:
    """The arguments, as argparse would give them, or None: let argparse read these."""
    values: dict[str, object] = {"socket": None, "no_start": False, "version": False}
    command: str | None = None
    flags: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()
    positional: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg in GLOBAL_VALUES:
            value = next(rest, None)
            if value is None or value.startswith("-"):
                return None
            values[arg[2:]] = value
        elif arg in GLOBAL_FLAGS or arg in flags:
            values[arg[2:].replace("-", "_")] = True
        elif arg.startswith("-"):
            return None
        elif command is None:
            if arg not in COMMANDS:
                return None
            command = arg
            flags, names = COMMANDS[arg]
            values.update({"cmd": arg, **{flag[2:]: False for flag in flags}})
            values.update({key: list(value) for key, value in DEFAULTS.get(arg, {}).items()})
        else:
            positional.append(arg)
    if command is None or len(positional) != len(names):
        return None
    values.update(zip(names, positional, strict=True))
    return SimpleNamespace(**values)
