"""The ``taiinet`` command: one entry point, one module per subcommand.

Each subcommand module exposes ``register(subparsers)``, which adds its parser
and sets ``handler`` to a function taking the parsed arguments and returning
the exit code.  Only the module of the command being run is imported (the
others would load trio, the node stack or the simulator, ~1.5 s): every
other command gets a one-line stub parser, with its help line from
``COMMANDS``, so ``taiinet --help`` lists them all.

Errors that are the user's (bad input) are ``TaiiNetError``s: they are
printed as one line and the exit code is 2, never a traceback; bad arguments
are one line too (exit 2), Ctrl-C exits 130 and a closed stdout 141 (see
``taiinet.cli.run``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from taiinet.cli.run import EXIT_USAGE, exit_code

#: Each command, in ``--help`` order: the module (``taiinet.cli.<module>``) that
#: registers and runs it, and its help line (a test checks it is the module's).
COMMANDS: dict[str, tuple[str, str]] = {
    "keygen": ("keys", "create an Ed25519 key file (mode 0600) and print its peer id"),
    "id": ("keys", "print the peer id of a key file"),
    "sim": ("sim", "run a seeded simulation of the overlay or the DHT"),
    "signal": ("signal", "run a signaller of the signalling mesh"),
    "sub": ("node", "print the documents matching a query, one JSON line each"),
    "pub": ("node", "publish JSON documents once joined"),
    "seed": ("seed", "keep the documents matching queries in SQLite and serve them"),
    "find": ("seed", "print the stored documents matching a query, and exit"),
    "stream": ("stream", "broadcast or watch live video and audio over a relay tree"),
    "demo": ("demo", "run a local mesh of signallers and peers, live on the terminal"),
}

Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (not the whole usage text)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser(argv: Sequence[str] | None = None, *, full: bool = False
                 ) -> argparse.ArgumentParser:
    """The parser for ``argv``: the full parser of its command (the command's
    module imported), a stub for every other one; with ``full``, every
    command's full parser."""
    parser = Parser(
        prog="taiinet", description="Peer-to-peer mesh messaging with Mongo-like subscriptions."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = ({module for module, _ in COMMANDS.values()} if full
              else _modules_for(sys.argv[1:] if argv is None else argv))
    registered: set[str] = set()
    for command, (module, help_line) in COMMANDS.items():
        if module not in wanted:
            subparsers.add_parser(command, help=help_line, add_help=False)
        elif module not in registered:
            importlib.import_module(f"taiinet.cli.{module}").register(subparsers)
            registered.add(module)
    return parser


def _modules_for(argv: Sequence[str]) -> set[str]:
    """The module of the command in ``argv``: its first non-option word (the
    top-level parser has no option but ``-h``)."""
    command = next((word for word in argv if not word.startswith("-")), None)
    return {COMMANDS[command][0]} if command in COMMANDS else set()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return exit_code(args.command, lambda: handler(args))


if __name__ == "__main__":
    sys.exit(main())
