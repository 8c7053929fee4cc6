"""``taiinet sub`` and ``taiinet pub``: a node that prints or publishes documents.

``sub`` prints one JSON line per matching document,
``{"publisher": ..., "id": ..., "data": ...}``, flushed at once; once it has
joined the overlay and subscribed it prints ``subscribed <peer-id>`` on stderr.

``pub`` publishes only after it has joined: it waits until it has
``--neighbors`` overlay neighbours (default 1; up to ``--join-timeout``), then
``--wait`` seconds (default 1.0) so that the overlay and the subscribers'
interest settle, publishes, and lingers ``--linger`` seconds (default 0.5) so
that the documents leave its links and repair requests (Plumtree grafts) are
answered before it exits.  A subscriber that joins after that misses the
documents: start subscribers first.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from taiinet.errors import TaiiNetError
from taiinet.node.errors import InvalidInput, NodeError
from taiinet.node.node import NodeConfig, open_node
from taiinet.pubsub.query import Query, document_to_value
from taiinet.wire.identity import Identity

T = TypeVar("T")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--signaller", action="append", required=True, metavar="URL",
                        help="ws:// URL of a signaller (repeat to fail over among several)")
    parser.add_argument("--links", choices=["webrtc", "websocket"], default="webrtc",
                        help="how to link to peers (default webrtc)")
    parser.add_argument("--key", metavar="PATH",
                        help="key file (from 'taiinet keygen'); default: a fresh identity")
    parser.add_argument("--join-timeout", type=float, default=15.0, metavar="S",
                        help="seconds to wait for a first overlay neighbour (default 15)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")


def register(subparsers: Any) -> None:
    sub = subparsers.add_parser(
        "sub", help="print the documents matching a query, one JSON line each",
        description="Join the mesh and print each document matching QUERY_JSON as one JSON "
                    "line {\"publisher\", \"id\", \"data\"}.")
    _common(sub)
    sub.add_argument("--count", type=int, default=0, metavar="N",
                     help="exit after N documents (default: run until interrupted)")
    sub.add_argument("--duration", type=float, default=0.0, metavar="S",
                     help="exit after S seconds (default: run until interrupted)")
    sub.add_argument("query", metavar="QUERY_JSON", help="a Mongo-like query, as JSON")
    sub.set_defaults(handler=sub_command)
    pub = subparsers.add_parser(
        "pub", help="publish JSON documents once joined",
        description="Join the mesh, wait for the overlay to settle, publish DOC_JSON (or one "
                    "document per line of stdin with '-') and exit.")
    _common(pub)
    pub.add_argument("--neighbors", type=int, default=1, metavar="N",
                     help="overlay neighbours to wait for before publishing (default 1)")
    pub.add_argument("--wait", type=float, default=1.0, metavar="S",
                     help="seconds to let the overlay and interest settle once joined "
                          "(default 1.0)")
    pub.add_argument("--linger", type=float, default=0.5, metavar="S",
                     help="seconds to stay after the last document (default 0.5)")
    pub.add_argument("document", metavar="DOC_JSON",
                     help="a JSON document, or '-' for one document per line of stdin")
    pub.set_defaults(handler=pub_command)


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None


def _config(args: argparse.Namespace) -> NodeConfig:
    return NodeConfig(join_timeout=args.join_timeout)


def _setup(args: argparse.Namespace) -> Identity:
    if args.verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    return Identity.load(args.key) if args.key else Identity.generate()


def sub_command(args: argparse.Namespace) -> int:
    query = Query(parse_json(args.query, "QUERY_JSON"))
    identity = _setup(args)

    async def main() -> None:
        async with open_node(args.signaller, identity, links=args.links,
                             config=_config(args)) as node, node.subscribe(query) as subscription:
            print(f"subscribed {node.peer_id}", file=sys.stderr, flush=True)
            seen = 0
            with trio.move_on_after(args.duration if args.duration > 0 else float("inf")):
                async for message in subscription:
                    line = json.dumps({"publisher": message.publisher, "id": message.id,
                                       "data": message.data}, separators=(",", ":"))
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
                    seen += 1
                    if args.count and seen >= args.count:
                        break

    run_trio(main)
    return 0


def pub_command(args: argparse.Namespace) -> int:
    documents: list[Any] = []
    if args.document != "-":
        documents.append(_checked(parse_json(args.document, "DOC_JSON")))
    identity = _setup(args)

    async def main() -> int:
        async with open_node(args.signaller, identity, links=args.links,
                             config=_config(args)) as node:
            with trio.move_on_after(args.join_timeout):
                await node.wait_neighbors(max(args.neighbors, 0))
            if len(node.neighbors) < args.neighbors:
                raise NodeError(f"only {len(node.neighbors)} overlay neighbours after "
                                f"{args.join_timeout} s (wanted {args.neighbors})")
            await trio.sleep(args.wait)
            if args.neighbors > 0 and not node.neighbors:
                raise NodeError("no live overlay neighbour left to publish to")
            for document in documents:
                await node.publish(document)
            if args.document == "-":
                stdin = trio.wrap_file(sys.stdin)
                number = 0
                async for line in stdin:
                    number += 1
                    if line.strip():
                        await node.publish(_checked(parse_json(line, f"stdin line {number}")))
            await trio.sleep(args.linger)
        return 0

    return run_trio(main)


def _checked(document: Any) -> Any:
    document_to_value(document)  # raises InvalidDocument, before joining
    return document


def run_trio(main: Callable[[], Awaitable[T]]) -> T:
    """``trio.run(main)``, re-raising a ``TaiiNetError`` out of exception groups.

    Errors raised inside nurseries arrive wrapped; the CLI prints a
    ``TaiiNetError`` as one line, so unwrap the first one found.
    """
    try:
        return trio.run(main)
    except BaseExceptionGroup as group:
        found = _first_taiinet_error(group)
        if found is None:
            raise
        raise found from None


def _first_taiinet_error(group: BaseExceptionGroup[BaseException]) -> TaiiNetError | None:
    for exc in group.exceptions:
        if isinstance(exc, TaiiNetError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_taiinet_error(exc)
            if found is not None:
                return found
    return None
