"""Entry point of the ``signgen`` command.

Each command group lives in its own module with a ``register(commands)`` function that
adds its sub-parsers and sets ``func`` on each; this file only wires them together and
turns user errors into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from signgen import __version__
from signgen.errors import SigngenError

# Modules under signgen.cli that register commands, in the order shown by --help.
COMMAND_MODULES = ["render", "pipeline", "poses", "gloss", "data", "train", "eval"]

EXIT_USER_ERROR = 2


class CommandGroups:
    """Shared sub-parser registry, so that two modules can add commands to one group
    (``signgen train fusion`` and ``signgen train g2p`` live in different modules)."""

    def __init__(self, subparsers: argparse._SubParsersAction):
        self._subparsers = subparsers
        self._groups: dict[str, argparse._SubParsersAction] = {}

    def group(self, name: str, help: str) -> argparse._SubParsersAction:
        if name not in self._groups:
            parser = self._subparsers.add_parser(name, help=help)
            self._groups[name] = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
        return self._groups[name]

    def command(self, name: str, help: str) -> argparse.ArgumentParser:
        return self._subparsers.add_parser(name, help=help, description=help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signgen", description="Sign-language video generation and evaluation.")
    parser.add_argument("--version", action="version", version=f"signgen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups = CommandGroups(subparsers)
    for name in COMMAND_MODULES:
        importlib.import_module(f"signgen.cli.{name}").register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SigngenError as error:
        print(f"signgen: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("signgen: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
