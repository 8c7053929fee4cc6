"""``taiinet signal``: run a signaller until interrupted.

The first line on stdout is ``signaller <peer-id> <ws-url>`` (flushed), so
``--listen 127.0.0.1:0`` is scriptable.  ``<ws-url>`` is the URL others dial:
``--advertise`` when given, else the address listened at; listening on every
interface (``0.0.0.0``) without ``--advertise`` advertises this host's name,
with a warning on stderr.  With ``--tls-cert``/``--tls-key`` the signaller
speaks TLS and its URL is ``wss://``.
"""

from __future__ import annotations

import argparse
from typing import Any

import trio

from taiinet.cli import tls
from taiinet.cli.args import int_at_least, positive_float
from taiinet.cli.run import (
    CommandError,
    first_in_group,
    log_to_stderr,
    run_trio,
    warnings_as_lines,
)
from taiinet.signal.api import open_signaller
from taiinet.signal.transport import WebSocketSignalTransport, parse_listen_address
from taiinet.signal.urls import check_signaller_url
from taiinet.transport.limits import LinkDeadlines, ListenerLimits
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
                        help="the ws:// or wss:// URL other machines dial to reach this "
                             "signaller (default: the --listen address; without a port, the "
                             "port listened at, or 443 for wss:// in front of a plain "
                             "listener: a TLS-terminating proxy)")
    parser.add_argument("--join", action="append", default=[], metavar="URL",
                        help="ws:// or wss:// URL of a signaller of the mesh (repeatable)")
    tls.add_arguments(parser, "listen behind TLS (the URL becomes wss://)")
    parser.add_argument("--key", metavar="PATH",
                        help="key file (from 'taiinet keygen'); default: a fresh identity")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log to stderr (-vv: debug lines stamped with the wall clock)")
    limits = parser.add_argument_group(
        "deadlines and budgets", "per-link deadlines (seconds) and per-address connection "
        "budgets of the listener; defaults in docs/protocol.md")
    defaults = ListenerLimits()
    limits.add_argument("--upgrade-timeout", type=positive_float, default=defaults.upgrade_timeout)
    limits.add_argument("--handshake-timeout", type=positive_float,
                        default=defaults.deadlines.handshake)
    limits.add_argument("--handshake-message-timeout", type=positive_float,
                        default=defaults.deadlines.handshake_message)
    limits.add_argument("--frame-timeout", type=positive_float, default=defaults.deadlines.frame)
    limits.add_argument("--idle-timeout", type=positive_float, default=defaults.deadlines.idle)
    limits.add_argument("--max-connections", type=int_at_least(1), default=defaults.max_connections)
    limits.add_argument("--max-unauthenticated", type=int_at_least(1),
                        default=defaults.max_unauthenticated)
    limits.add_argument("--max-unauthenticated-per-address", type=int_at_least(1),
                        default=defaults.max_unauthenticated_per_address)
    limits.add_argument("--max-links-per-address", type=int_at_least(1),
                        default=defaults.max_authenticated_per_address)
    parser.set_defaults(handler=run)


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
    # Bad input is a one-line error, before starting.
    parse_listen_address(args.listen)
    for url in [*args.join, *([args.advertise] if args.advertise else [])]:
        check_signaller_url(url)
    server_context = tls.server_tls(args)
    client_context = tls.client_tls(args)
    identity = Identity.load(args.key) if args.key else Identity.generate()
    if args.verbose:
        log_to_stderr(args.verbose)
    else:
        warnings_as_lines("signal", "taiinet")

    async def main() -> None:
        listening = False
        try:
            transport = WebSocketSignalTransport(limits=listener_limits(args),
                                                 ssl_context=client_context)
            async with open_signaller(listen=args.listen, join=args.join,
                                      advertise=args.advertise, identity=identity,
                                      transport=transport,
                                      ssl_context=server_context) as signaller:
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


