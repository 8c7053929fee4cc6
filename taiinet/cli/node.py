"""``taiinet sub`` and ``taiinet pub``: a node that prints or publishes documents.

``sub`` prints one JSON line per matching document,
``{"publisher": ..., "id": ..., "data": ...}``, flushed at once; once it has
joined the overlay and subscribed it prints ``subscribed <peer-id>`` on stderr.
``data`` is in the JSON form of ``taiinet.cli.jsonform`` (bytes and infinite
floats as ``{"$bytes": ...}``/``{"$float": ...}``), which ``pub`` and
QUERY_JSON read too.

``pub`` prints ``{"id": ..., "neighbors": N}`` for each document it
published: its message id and the overlay neighbours it had then.

``pub`` publishes only after it has joined: it waits until it has
``--neighbors`` overlay neighbours (default 1; up to ``--join-timeout``), then
``--wait`` seconds (default 0: the routing contract, docs/pubsub.md section
1, needs no settling), publishes, and exits 0 as soon as every document was
handed to a neighbour (its parent in the routing tree) and written to that
link (``Node.hand_off``).  If that does not happen within ``--join-timeout``
(no neighbour reachable, or no parent), it exits non-zero saying so.  A
subscription opened before the publication gets the documents; one opened
after may not: start subscribers first.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import urlsplit

import trio

from taiinet.cli import jsonform, tls
from taiinet.cli.args import int_at_least, non_negative_float, positive_float
from taiinet.cli.run import log_to_stderr, run_trio, warnings_as_lines
from taiinet.node.errors import InvalidInput, NodeError
from taiinet.node.links import LinkFactory, websocket_links
from taiinet.node.node import Node, NodeConfig, open_node
from taiinet.node.subscription import Message
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.query import Query, document_to_value
from taiinet.signal.transport import parse_listen_address
from taiinet.signal.urls import check_signaller_url
from taiinet.wire.identity import Identity

__all__ = ["common_options", "links_option", "node_config", "parse_json", "print_message",
           "pub_command", "register", "run_trio", "setup", "sub_command"]


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--signaller", action="append", required=True, metavar="URL",
                        help="ws:// or wss:// URL of a signaller (repeat to fail over among "
                             "several)")
    parser.add_argument("--links", choices=["webrtc", "websocket"], default="webrtc",
                        help="how to link to peers (default webrtc)")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="with --links websocket: where to listen for peers (default "
                             "127.0.0.1:0 with loopback signallers, else 0.0.0.0:0)")
    parser.add_argument("--advertise", metavar="HOST",
                        help="with --links websocket: the host name or address other "
                             "peers dial (default: the --listen host; for 0.0.0.0, this "
                             "machine's host name)")
    parser.add_argument("--key", metavar="PATH",
                        help="key file (from 'taiinet keygen'); default: a fresh identity")
    tls.add_arguments(parser, "listen for peers behind TLS with --links websocket (hands "
                              "out wss://; the certificate must name --advertise)")
    parser.add_argument("--join-timeout", type=positive_float, default=15.0, metavar="S",
                        help="seconds to wait for a first overlay neighbour (default 15)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log to stderr (-vv: debug lines stamped with the wall clock)")


def register(subparsers: Any) -> None:
    sub = subparsers.add_parser(
        "sub", help="print the documents matching a query, one JSON line each",
        description="Join the mesh and print each document matching QUERY_JSON as one JSON "
                    "line {\"publisher\", \"id\", \"data\"}.")
    common_options(sub)
    sub.add_argument("--count", type=int_at_least(0), default=0, metavar="N",
                     help="exit after N documents (default: run until interrupted)")
    sub.add_argument("--duration", type=non_negative_float, default=0.0, metavar="S",
                     help="exit after S seconds (default: run until interrupted)")
    sub.add_argument("--history", action="store_true",
                     help="first print the stored matching documents the mesh's seeders "
                          "hold, in publication order, then the live ones")
    sub.add_argument("--since", type=non_negative_float, metavar="UNIX_S",
                     help="with history: only documents published at or after this time "
                          "(seconds since the epoch; implies --history)")
    sub.add_argument("--history-limit", type=int_at_least(0), metavar="N",
                     help="with history: at most the first N stored documents "
                          "(implies --history)")
    sub.add_argument("query", metavar="QUERY_JSON", help="a Mongo-like query, as JSON")
    sub.set_defaults(handler=sub_command)
    pub = subparsers.add_parser(
        "pub", help="publish JSON documents once joined",
        description="Join the mesh, publish DOC_JSON (or one document per line of stdin "
                    "with '-') and exit 0 once every document was handed to a neighbour; "
                    "non-zero if none can be reached within --join-timeout.")
    common_options(pub)
    pub.add_argument("--neighbors", type=int_at_least(0), default=1, metavar="N",
                     help="overlay neighbours to wait for before publishing (default 1)")
    pub.add_argument("--wait", type=non_negative_float, default=0.0, metavar="S",
                     help="seconds to wait once joined before publishing (default 0: the "
                          "routing contract needs none)")
    pub.add_argument("document", metavar="DOC_JSON",
                     help="a JSON document, or '-' for one document per line of stdin")
    pub.set_defaults(handler=pub_command)


def parse_json(text: str, what: str) -> Any:
    """``text`` in the JSON form (``taiinet.cli.jsonform``); ``InvalidInput`` if not."""
    return jsonform.loads(text, what)


def links_option(args: argparse.Namespace) -> str | LinkFactory:
    """``--links``, with ``--listen``/``--advertise``/``--tls-cert`` for WebSocket links."""
    listening_tls = args.tls_cert is not None or args.tls_key is not None
    if args.listen is None and args.advertise is None and not listening_tls:
        return str(args.links)
    if args.links != "websocket":
        raise InvalidInput("--listen, --advertise, --tls-cert and --tls-key are for --links "
                           "websocket (WebRTC finds its addresses itself)")
    loopback = all((urlsplit(url).hostname or "").startswith("127.") for url in args.signaller)
    host, port = parse_listen_address(args.listen or ("127.0.0.1:0" if loopback else "0.0.0.0:0"))
    return websocket_links(host, port, advertised_host=args.advertise,
                           server_ssl_context=tls.server_tls(args),
                           ssl_context=tls.client_tls(args))


def node_config(args: argparse.Namespace) -> NodeConfig:
    return NodeConfig(join_timeout=args.join_timeout, pubsub=PubsubConfig())


def setup(args: argparse.Namespace) -> Identity:
    for url in args.signaller:
        check_signaller_url(url)
    if args.verbose:
        log_to_stderr(args.verbose)
    else:
        warnings_as_lines(args.command, "taiinet")
    return Identity.load(args.key) if args.key else Identity.generate()


def sub_command(args: argparse.Namespace) -> int:
    query = Query(parse_json(args.query, "QUERY_JSON"))
    identity = setup(args)
    links = links_option(args)
    ssl_context = tls.client_tls(args)

    async def main() -> None:
        async with open_node(args.signaller, identity, links=links, config=node_config(args),
                             ssl_context=ssl_context) as node, node.subscribe(
                query, history=args.history, since=args.since,
                history_limit=args.history_limit) as subscription:
            print(f"subscribed {node.peer_id}", file=sys.stderr, flush=True)
            seen = 0
            with trio.move_on_after(args.duration if args.duration > 0 else float("inf")):
                async for message in subscription:
                    print_message(message)
                    seen += 1
                    if args.count and seen >= args.count:
                        break

    run_trio(main)
    return 0


def print_message(message: Message) -> None:
    """``message`` as ``sub``'s JSON line on stdout, flushed."""
    line = json.dumps({"publisher": message.publisher, "id": message.id,
                       "data": jsonform.to_json(message.data)},
                      separators=(",", ":"), allow_nan=False)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def pub_command(args: argparse.Namespace) -> int:
    documents: list[Any] = []
    if args.document != "-":
        documents.append(_checked(parse_json(args.document, "DOC_JSON")))
    identity = setup(args)
    links = links_option(args)
    ssl_context = tls.client_tls(args)

    async def main() -> int:
        async with open_node(args.signaller, identity, links=links, config=node_config(args),
                             ssl_context=ssl_context) as node:
            with trio.move_on_after(args.join_timeout):
                await node.wait_neighbors(max(args.neighbors, 0))
            if len(node.neighbors) < args.neighbors:
                raise NodeError(f"only {len(node.neighbors)} overlay neighbours after "
                                f"{args.join_timeout} s (wanted {args.neighbors})")
            await trio.sleep(args.wait)
            if args.neighbors > 0 and not node.neighbors:
                raise NodeError("no live overlay neighbour left to publish to")
            ids: list[str] = []
            for document in documents:
                ids.append(await _publish(node, document))
            if args.document == "-":
                number = 0
                while line := await _read_stdin_line():
                    number += 1
                    if line.strip():
                        ids.append(await _publish(
                            node, _checked(parse_json(line, f"stdin line {number}"))))
            with trio.move_on_after(args.join_timeout):
                for message_id in ids:
                    await node.hand_off(message_id)
                return 0
            raise NodeError(f"documents not handed to a neighbour within "
                            f"{args.join_timeout} s (no neighbour reachable, or no parent "
                            "in the routing tree)")

    return run_trio(main)


async def _read_stdin_line() -> str:
    """One line of stdin ('' at its end), read in a thread a Ctrl-C abandons.

    A blocking read cannot be interrupted; without abandoning it, ``pub -``
    would hang on SIGINT until the next line arrived.
    """
    return await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)


async def _publish(node: Node, document: Any) -> str:
    """Publish ``document``, print its id and the neighbours it went to; return the id."""
    message_id = await node.publish(document)
    print(json.dumps({"id": message_id, "neighbors": len(node.neighbors)}), flush=True)
    return message_id


def _checked(document: Any) -> Any:
    document_to_value(document)  # raises InvalidDocument, before joining
    return document
