"""Helpers for running many nodes in one process (tests, the demo, benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence

import trio

from taiinet.node.node import Node

#: How often ``wait_interest_settled`` looks again.
SETTLE_POLL = 0.05


def interest_settled(nodes: Sequence[Node]) -> bool:
    """Whether every node knows the interest its neighbours currently advertise to it.

    Only meaningful when every node of the mesh is in ``nodes`` (one process).
    """
    by_id = {node.peer_id: node for node in nodes}
    for node in nodes:
        router = node.driver.router
        for peer in router.active_view:
            other = by_id.get(peer)
            if other is None:
                continue
            known = router.interest_of(peer)
            if known is None or set(known) != set(other.driver.router.advert_for(node.peer_id)):
                return False
    return True


async def wait_interest_settled(nodes: Sequence[Node]) -> None:
    """Wait until ``interest_settled(nodes)`` (adverts are coalesced on a timer)."""
    while not interest_settled(nodes):
        await trio.sleep(SETTLE_POLL)
