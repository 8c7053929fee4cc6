"""``taiinet seed`` and ``taiinet find``: keep documents for the mesh; read them back.

``seed`` runs a seeder (``taiinet.node.seeder``): it keeps every document
matching its ``--query`` options (all documents without one) in the SQLite
file ``--db``, as the signed envelopes it received, and answers history
requests from it.  On stderr it says ``seeding <peer-id> <db>: N documents
held`` once it has joined, then every ``--report`` seconds how many it holds,
has stored and has served.  Killed and started again on the same ``--db``
(and ``--key``), it goes on with what it held.  ``--key PATH`` names a key
file as for ``sub``; for ``seed`` a missing file is created, so a seeder
keeps its peer id from the first start.

``find`` prints the stored documents matching QUERY_JSON, from the mesh's
seeders, in publication order, as ``sub``'s JSON lines, and exits; with no
seeder in reach it says so on stderr (as ``sub --history`` does) and prints
nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import trio

from taiinet.cli import tls
from taiinet.cli.args import int_at_least, non_negative_float, positive_float
from taiinet.cli.node import (
    common_options,
    links_option,
    node_config,
    parse_json,
    print_message,
    setup,
)
from taiinet.cli.run import run_trio
from taiinet.history.store import Retention, SeedStore
from taiinet.node.node import open_node
from taiinet.node.seeder import Seeder, open_seeder
from taiinet.pubsub.query import Query
from taiinet.wire.identity import Identity

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    seed = subparsers.add_parser(
        "seed", help="keep the documents matching queries in SQLite and serve them",
        description="Join the mesh, store every document matching a --query (every document "
                    "without one) in the SQLite file --db, and answer the history requests of "
                    "subscribers ('sub --history', 'find').")
    common_options(seed)
    seed.add_argument("--db", required=True, metavar="PATH",
                      help="the SQLite file to keep documents in (created if missing)")
    seed.add_argument("--query", action="append", default=[], metavar="JSON",
                      help="keep documents matching this query (repeatable; default: all)")
    seed.add_argument("--max-docs", type=int_at_least(1), default=1_000_000, metavar="N",
                      help="keep at most N documents, the oldest out first (default 1000000)")
    seed.add_argument("--max-bytes", type=int_at_least(1), default=1 << 30, metavar="N",
                      help="keep at most N bytes of documents (default 1 GiB)")
    seed.add_argument("--max-age", type=positive_float, metavar="S",
                      help="keep a document at most S seconds after storing it "
                           "(default: no limit)")
    seed.add_argument("--report", type=positive_float, default=10.0, metavar="S",
                      help="say on stderr what is held and served every S seconds "
                           "(default 10)")
    seed.set_defaults(handler=seed_command)
    find = subparsers.add_parser(
        "find", help="print the stored documents matching a query, and exit",
        description="Ask the mesh's seeders for the stored documents matching QUERY_JSON and "
                    "print them in publication order, one JSON line each (as 'sub').")
    common_options(find)
    find.add_argument("--limit", type=int_at_least(0), metavar="N",
                      help="print at most the first N documents")
    find.add_argument("--since", type=non_negative_float, metavar="UNIX_S",
                      help="only documents published at or after this time (seconds since "
                           "the epoch)")
    find.add_argument("query", metavar="QUERY_JSON", help="a Mongo-like query, as JSON")
    find.set_defaults(handler=find_command)


def seed_command(args: argparse.Namespace) -> int:
    queries = [Query(parse_json(q, "--query")) for q in args.query]
    if args.key and not Path(args.key).exists():
        Identity.generate().save(args.key)
        print(f"taiinet seed: created key file {args.key}", file=sys.stderr, flush=True)
    identity = setup(args)
    links = links_option(args)
    ssl_context = tls.client_tls(args)
    retention = Retention(max_docs=args.max_docs, max_bytes=args.max_bytes,
                          max_age=args.max_age if args.max_age is not None else float("inf"))
    store = SeedStore.open(args.db, retention)

    async def main() -> None:
        async with open_seeder(args.signaller, store, queries, identity, links=links,
                               config=node_config(args), ssl_context=ssl_context) as seeder:
            print(f"seeding {seeder.node.peer_id} {args.db}: {store.count} documents held",
                  file=sys.stderr, flush=True)
            while True:
                await trio.sleep(args.report)
                _report(seeder)

    try:
        run_trio(main)
    finally:
        store.close()
    return 0


def _report(seeder: Seeder) -> None:
    s = seeder.stats()
    print(f"seed: {s.held} documents held ({s.held_bytes} bytes), {s.stored} stored, "
          f"{s.evicted} evicted, {s.documents_served} served in {s.pages_served} pages, "
          f"{s.refused} requests refused, {s.store_failures} store failures "
          f"({s.lost} documents not stored)", file=sys.stderr, flush=True)


def find_command(args: argparse.Namespace) -> int:
    query = Query(parse_json(args.query, "QUERY_JSON"))
    identity = setup(args)
    links = links_option(args)
    ssl_context = tls.client_tls(args)

    async def main() -> None:
        async with open_node(args.signaller, identity, links=links, config=node_config(args),
                             ssl_context=ssl_context) as node, \
                node.find(query, since=args.since, limit=args.limit) as found:
            async for message in found:
                print_message(message)

    run_trio(main)
    return 0
