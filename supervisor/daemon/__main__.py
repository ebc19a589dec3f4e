"""`python -m supervisor.daemon`: the daemon without the CLI in front of it, for the image an
upgrade in place executes and for the check that comes before it:

    python -m supervisor.daemon --socket PATH --resume STATE [--no-notify]
    python -m supervisor.daemon --check-state STATE

Every session waits while this image starts, so it reads these fixed arguments itself
rather than loading argparse and the parser of every command. An image this one upgrades
to runs it with these arguments: keep them.
"""

import gc
import sys

USAGE = (
    "usage: python -m supervisor.daemon --socket PATH --resume STATE [--no-notify]\n"
    "       python -m supervisor.daemon --check-state STATE"
)


def options(argv: list[str]) -> dict[str, str | bool] | None:
    """The options given, or None when they are not one of the two forms."""
    given: dict[str, str | bool] = {}
    rest = list(argv)
    while rest:
        flag = rest.pop(0)
        if flag == "--no-notify" and flag not in given:
            given[flag] = True
        elif flag in ("--socket", "--resume", "--check-state") and rest and flag not in given:
            given[flag] = rest.pop(0)
        else:
            return None
    forms = ({"--check-state"}, {"--socket", "--resume"}, {"--socket", "--resume", "--no-notify"})
    return given if set(given) in forms else None


def main(argv: list[str]) -> int:
    given = options(argv)
    if given is None:
        print(USAGE, file=sys.stderr)
        return 2
    # No collections while the imports create their objects: they all live on.
    gc.disable()
    from supervisor.daemon.lifecycle.main import check_state, run
    from supervisor.paths import resolve_socket

    gc.enable()
    if "--check-state" in given:
        return check_state(str(given["--check-state"]))
    socket_path = resolve_socket(str(given["--socket"]))
    return run(socket_path, resume=str(given["--resume"]), notify="--no-notify" not in given)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
