"""Routing on a stable spanning tree: the contract of docs/pubsub.md, section 0.

One concern per module: ``routes`` (the spanning tree), ``interest`` (the
interest table and split-horizon adverts), ``retention`` (documents kept
for the repair, holders, seen ids), ``forwarding`` (invariant (I)),
``repair`` (restoring (I) when a neighbour widens), ``router`` (composes
them behind the ``PubsubRouter`` interface).
"""

from taiinet.pubsub.tree.router import TreeRouter, TreeRouterStats

__all__ = ["TreeRouter", "TreeRouterStats"]
