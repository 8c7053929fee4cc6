# taiinet: sans-io core
"""The router a ``PubsubConfig`` asks for (``tree="plumtree"`` or ``"stable"``)."""

from __future__ import annotations

import random

from taiinet.overlay.core import OverlayConfig
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import DocumentCodec
from taiinet.pubsub.router import PubsubRouter
from taiinet.pubsub.tree.router import TreeRouter
from taiinet.wire.peer_id import PeerId

Router = PubsubRouter | TreeRouter


def make_router(peer_id: PeerId, rng: random.Random, documents: DocumentCodec,
                config: PubsubConfig | None = None,
                overlay_config: OverlayConfig | None = None) -> Router:
    """A ``TreeRouter`` for ``tree="stable"`` with routing on, else a ``PubsubRouter``."""
    config = config or PubsubConfig()
    if config.tree == "stable" and config.routing:
        return TreeRouter(peer_id, rng, documents, config, overlay_config)
    return PubsubRouter(peer_id, rng, documents, config, overlay_config)
