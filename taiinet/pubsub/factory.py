# taiinet: sans-io core
"""The router a ``PubsubConfig`` asks for: the stable tree, or the broadcast baseline."""

from __future__ import annotations

import random

from taiinet.overlay.core import OverlayConfig
from taiinet.pubsub.broadcast import BroadcastRouter
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import DocumentCodec
from taiinet.pubsub.tree.router import TreeRouter
from taiinet.wire.peer_id import PeerId

Router = TreeRouter | BroadcastRouter


def make_router(peer_id: PeerId, rng: random.Random, documents: DocumentCodec,
                config: PubsubConfig | None = None,
                overlay_config: OverlayConfig | None = None) -> Router:
    """A ``TreeRouter``, or a ``BroadcastRouter`` for ``routing=False``."""
    config = config or PubsubConfig()
    if config.routing:
        return TreeRouter(peer_id, rng, documents, config, overlay_config)
    return BroadcastRouter(peer_id, rng, documents, config, overlay_config)
