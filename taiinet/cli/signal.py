"""``taiinet signal``: run a signaller until interrupted.

The first line on stdout is ``signaller <peer-id> <ws-url>`` (flushed), so
``--listen 127.0.0.1:0`` is scriptable.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import trio

from taiinet.signal.api import open_signaller
from taiinet.signal.transport import parse_listen_address
from taiinet.wire.identity import Identity


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "signal", help="run a signaller of the signalling mesh",
        description="Run a signaller: a secure WebSocket server that joins the Kademlia mesh "
                    "of signallers and relays offers and answers between peers.")
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="address to listen at (default 127.0.0.1:0, any free port)")
    parser.add_argument("--join", action="append", default=[], metavar="URL",
                        help="ws:// URL of a signaller of the mesh (repeatable)")
    parser.add_argument("--key", metavar="PATH",
                        help="key file (from 'taiinet keygen'); default: a fresh identity")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    parse_listen_address(args.listen)  # bad input is a one-line error, before starting
    identity = Identity.load(args.key) if args.key else Identity.generate()
    if args.verbose:
        logging.basicConfig(level=logging.INFO)

    async def main() -> None:
        async with open_signaller(listen=args.listen, join=args.join,
                                  identity=identity) as signaller:
            print(f"signaller {signaller.peer_id} {signaller.url}", flush=True)
            await trio.sleep_forever()

    trio.run(main)
    return 0
