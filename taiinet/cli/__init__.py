"""The ``taiinet`` command: one entry point, one module per subcommand.

Each subcommand module exposes ``register(subparsers)``, which adds its parser
and sets ``handler`` to a function taking the parsed arguments and returning
the exit code.  Errors that are the user's (bad input) are ``TaiiNetError``s:
they are printed as one line and the exit code is 2, never a traceback; bad
arguments are one line too (exit 2), Ctrl-C exits 130 and a closed stdout
141 (see ``taiinet.cli.run``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from taiinet.cli.run import EXIT_USAGE, exit_code

SUBCOMMAND_MODULES: tuple[str, ...] = ("keys", "sim", "signal", "node", "demo")

Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (not the whole usage text)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="taiinet", description="Peer-to-peer mesh messaging with Mongo-like subscriptions."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(f"taiinet.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return exit_code(args.command, lambda: handler(args))


if __name__ == "__main__":
    sys.exit(main())
