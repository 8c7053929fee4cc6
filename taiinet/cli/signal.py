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
from taiinet.signal.transport import WebSocketSignalTransport, parse_listen_address
from taiinet.transport.limits import LinkDeadlines, ListenerLimits
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
    limits = parser.add_argument_group(
        "deadlines and budgets", "per-link deadlines (seconds) and per-address connection "
        "budgets of the listener; defaults in docs/protocol.md")
    defaults = ListenerLimits()
    limits.add_argument("--upgrade-timeout", type=_positive, default=defaults.upgrade_timeout)
    limits.add_argument("--handshake-timeout", type=_positive,
                        default=defaults.deadlines.handshake)
    limits.add_argument("--handshake-message-timeout", type=_positive,
                        default=defaults.deadlines.handshake_message)
    limits.add_argument("--frame-timeout", type=_positive, default=defaults.deadlines.frame)
    limits.add_argument("--idle-timeout", type=_positive, default=defaults.deadlines.idle)
    limits.add_argument("--max-connections", type=_count, default=defaults.max_connections)
    limits.add_argument("--max-unauthenticated", type=_count,
                        default=defaults.max_unauthenticated)
    limits.add_argument("--max-unauthenticated-per-address", type=_count,
                        default=defaults.max_unauthenticated_per_address)
    limits.add_argument("--max-links-per-address", type=_count,
                        default=defaults.max_authenticated_per_address)
    parser.set_defaults(handler=run)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def listener_limits(args: argparse.Namespace) -> ListenerLimits:
    """The listener's ``ListenerLimits`` from the command line."""
    return ListenerLimits(
        upgrade_timeout=args.upgrade_timeout,
        max_connections=args.max_connections,
        max_unauthenticated=args.max_unauthenticated,
        max_unauthenticated_per_address=args.max_unauthenticated_per_address,
        max_authenticated_per_address=args.max_links_per_address,
        deadlines=LinkDeadlines(handshake=args.handshake_timeout,
                                handshake_message=args.handshake_message_timeout,
                                frame=args.frame_timeout, idle=args.idle_timeout))


def run(args: argparse.Namespace) -> int:
    parse_listen_address(args.listen)  # bad input is a one-line error, before starting
    identity = Identity.load(args.key) if args.key else Identity.generate()
    if args.verbose:
        logging.basicConfig(level=logging.INFO)

    async def main() -> None:
        transport = WebSocketSignalTransport(limits=listener_limits(args))
        async with open_signaller(listen=args.listen, join=args.join, identity=identity,
                                  transport=transport) as signaller:
            print(f"signaller {signaller.peer_id} {signaller.url}", flush=True)
            await trio.sleep_forever()

    trio.run(main)
    return 0
