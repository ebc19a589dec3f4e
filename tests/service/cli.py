"""`python -m tests.service.cli ARGS`: the ptysup CLI, with the `service` command even before
supervisor/cli/parser.py wires it (then through a parser built the same way)."""

import argparse
import sys

from supervisor.cli import service
from supervisor.cli.parser import build_parser


def wired() -> bool:
    parser = build_parser()
    return any(
        isinstance(action, argparse._SubParsersAction) and "service" in action.choices
        for action in parser._actions
    )


def main(argv: list[str]) -> int:
    if wired():
        from supervisor.cli.main import main as ptysup

        return ptysup(argv)
    parser = argparse.ArgumentParser(prog="ptysup")
    parser.add_argument("--socket", default=None)
    parser.add_argument("--no-start", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text)

    service.add_parser(sub, add)
    return service.run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
