"""Content-based routing on a stable spanning tree (docs/pubsub.md).

One concern per module, each readable alone: ``routes`` (the spanning
tree), ``interest`` (the interest table and split-horizon adverts),
``retention`` (documents kept for the repair, holders, seen ids),
``forwarding`` (the forwarding decision: invariant (I)), ``repair``
(restoring (I) when a neighbour widens), ``healing`` (rejoining a component
cut off from the overlay), ``router`` (composes them, sends the adverts,
checks documents).
"""

from taiinet.pubsub.tree.router import TreeRouter

__all__ = ["TreeRouter"]
