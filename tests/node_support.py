"""Helpers for the node tests: meshes of signallers and nodes in one process.

The mesh harness itself ships in ``taiinet.testing.mesh``; ``ident`` is its
``numbered_identity``.
"""

from __future__ import annotations

from typing import Any

from taiinet.node import Subscription
from taiinet.testing.mesh import numbered_identity as ident
from taiinet.testing.mesh import start_cm, start_nodes, start_signallers

__all__ = ["collect", "ident", "start_cm", "start_nodes", "start_signallers"]


async def collect(subscription: Subscription, expected: int, marker_key: str = "marker",
                  ) -> list[Any]:
    """Read until ``expected`` non-marker messages and one marker arrived; return them."""
    documents: list[Any] = []
    marker = False
    while not marker or len(documents) < expected:
        message = await subscription.receive()
        if isinstance(message.data, dict) and message.data.get(marker_key):
            marker = True
        else:
            documents.append(message.data)
    return documents
