"""``taiinet signal``: run a signaller until interrupted.

The first line on stdout is ``signaller <peer-id> <ws-url>`` (flushed), so
``--listen 127.0.0.1:0`` is scriptable.  ``<ws-url>`` is the URL others dial:
``--advertise`` when given, else the address listened at; listening on every
interface (``0.0.0.0``) without ``--advertise`` advertises this host's name,
with a warning on stderr.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import trio

from taiinet.cli.run import CommandError, first_in_group, run_trio, warnings_as_lines
from taiinet.signal.api import open_signaller
from taiinet.signal.transport import parse_listen_address
from taiinet.signal.urls import check_signaller_url
from taiinet.wire.identity import Identity


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "signal", help="run a signaller of the signalling mesh",
        description="Run a signaller: a secure WebSocket server that joins the Kademlia mesh "
                    "of signallers and relays offers and answers between peers.")
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="address to listen at (default 127.0.0.1:0, any free port; "
                             "0.0.0.0:PORT for every interface)")
    parser.add_argument("--advertise", metavar="URL",
                        help="the URL other machines dial to reach this signaller "
                             "(default: the --listen address); a ws:// URL without a port "
                             "gets the port listened at, a wss:// URL (a TLS proxy's) is "
                             "used as given")
    parser.add_argument("--join", action="append", default=[], metavar="URL",
                        help="ws:// URL of a signaller of the mesh (repeatable)")
    parser.add_argument("--key", metavar="PATH",
                        help="key file (from 'taiinet keygen'); default: a fresh identity")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Bad input is a one-line error, before starting.
    parse_listen_address(args.listen)
    for url in [*args.join, *([args.advertise] if args.advertise else [])]:
        check_signaller_url(url)
    identity = Identity.load(args.key) if args.key else Identity.generate()
    if args.verbose:
        logging.basicConfig(level=logging.INFO)
    else:
        warnings_as_lines("signal", "taiinet")

    async def main() -> None:
        listening = False
        try:
            async with open_signaller(listen=args.listen, join=args.join,
                                      advertise=args.advertise,
                                      identity=identity) as signaller:
                listening = True
                print(f"signaller {signaller.peer_id} {signaller.url}", flush=True)
                await trio.sleep_forever()
        except BaseException as exc:
            failure = None if listening else first_in_group(exc, OSError)
            if failure is not None:
                raise CommandError(f"cannot listen at {args.listen}: "
                                   f"{failure.strerror or failure}") from None
            raise

    run_trio(main)
    return 0


