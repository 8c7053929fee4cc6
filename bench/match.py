"""Documents matched per second against many subscriptions: TaiiNet's index vs mongoquery.

Run: ``.venv/bin/python bench/match.py`` (about two minutes on 2 cores).
Options: ``--sizes 1000,10000,100000 --docs 2000 --budget 6 --seed 1``.

The workload mixes equality, ``$in``, ranges, ``$or`` and some ``$regex``
subscriptions over documents with a dozen fields.  For each number of
subscriptions it times (1) ``SubscriptionIndex.match`` over ``--docs``
documents, (2) a loop of ``Query.matches`` over all subscriptions, and (3) a
loop of ``mongoquery.Query.match`` over all subscriptions; each for up to
``--budget`` seconds (so slow loops see fewer documents), and all three must
return the same ids on the documents they share.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

import mongoquery

from taiinet import SubscriptionIndex

KINDS = [f"kind{i}" for i in range(50)]
REGIONS = [f"region{i}" for i in range(20)]
TAGS = [f"tag{i}" for i in range(30)]
LETTERS = "abcdefghij"


def make_document(rng: random.Random) -> dict[str, Any]:
    return {
        "kind": rng.choice(KINDS),
        "region": rng.choice(REGIONS),
        "price": round(rng.uniform(0, 1000), 2),
        "age": rng.randrange(100),
        "name": "".join(rng.choice(LETTERS) for _ in range(6)),
        "tags": rng.sample(TAGS, rng.randint(1, 3)),
        "user": {"id": rng.randrange(10_000), "level": rng.randrange(10)},
        "active": rng.random() < 0.5,
        "body": "x" * rng.randrange(10, 50),
    }


def make_subscription(rng: random.Random) -> dict[str, Any]:
    r = rng.random()
    if r < 0.30:  # equality
        choice = rng.randrange(3)
        if choice == 0:
            return {"kind": rng.choice(KINDS), "region": rng.choice(REGIONS)}
        if choice == 1:
            return {"user.id": rng.randrange(10_000)}
        return {"tags": rng.choice(TAGS), "kind": rng.choice(KINDS)}
    if r < 0.50:  # $in
        return {"kind": {"$in": rng.sample(KINDS, 3)},
                "region": {"$in": rng.sample(REGIONS, 2)}}
    if r < 0.70:  # ranges
        if rng.random() < 0.5:
            low = rng.uniform(0, 990)
            return {"price": {"$gte": low, "$lt": low + rng.uniform(1, 10)}}
        return {"age": {"$gt": rng.randrange(100)}, "kind": rng.choice(KINDS)}
    if r < 0.90:  # $or
        return {"$or": [{"kind": rng.choice(KINDS), "user.level": {"$gte": rng.randrange(10)}},
                        {"region": rng.choice(REGIONS), "age": {"$lt": rng.randrange(100)}}]}
    prefix = "".join(rng.choice(LETTERS) for _ in range(2))
    if r < 0.98:  # regex with an equality
        return {"name": {"$regex": f"^{prefix}"}, "region": rng.choice(REGIONS)}
    return {"name": {"$regex": f"{prefix}[a-c]$"}}  # regex alone


def rate(fn: Callable[[dict[str, Any]], set[int]], docs: list[dict[str, Any]], budget: float
         ) -> tuple[float, list[set[int]]]:
    """Documents per CPU second of ``fn``, over ``docs`` or as many as fit in ``budget``.

    CPU time of this process (not wall time), so other load on the machine
    does not skew the comparison.
    """
    results: list[set[int]] = []
    start = time.process_time()
    elapsed = 0.0
    for doc in docs:
        results.append(fn(doc))
        elapsed = time.process_time() - start
        if elapsed > budget and len(results) >= 3:
            break
    return len(results) / elapsed, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--docs", type=int, default=2000, help="documents to match, at most")
    parser.add_argument("--budget", type=float, default=6.0,
                        help="seconds per engine and size, after at least 3 documents")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    docs = [make_document(rng) for _ in range(args.docs)]
    print("(docs/s and build time are per CPU second of this process)")
    print("subs     index docs/s  Query loop docs/s  mongoquery docs/s  index/mongoquery"
          "  matches/doc  build s")
    for size in (int(s) for s in args.sizes.split(",")):
        subs = [make_subscription(rng) for _ in range(size)]
        start = time.process_time()
        index = SubscriptionIndex()
        for i, sub in enumerate(subs):
            index.add(i, sub)
        build = time.process_time() - start
        compiled = [index.get(i) for i in range(size)]  # the same compiled queries
        references = [mongoquery.Query(s) for s in subs]

        index_rate, index_results = rate(index.match, docs, args.budget)
        loop_rate, loop_results = rate(
            lambda d, qs=compiled: {i for i, q in enumerate(qs) if q and q.matches(d)}, docs,
            args.budget)
        mongo_rate, mongo_results = rate(
            lambda d, qs=references: {i for i, q in enumerate(qs) if q.match(d)}, docs,
            args.budget)
        n = min(len(loop_results), len(mongo_results), len(index_results))
        assert index_results[:n] == loop_results[:n] == mongo_results[:n], "engines disagree"
        per_doc = sum(map(len, index_results)) / len(index_results)
        print(f"{size:>7}  {index_rate:>12,.0f}  {loop_rate:>17,.1f}  {mongo_rate:>17,.1f}"
              f"  {index_rate / mongo_rate:>15,.0f}x  {per_doc:>11.1f}  {build:>7.1f}")


if __name__ == "__main__":
    main()
