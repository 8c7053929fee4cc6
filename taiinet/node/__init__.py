"""The node: composes signal client, links, overlay and subscriptions (see docs/node.md)."""

from taiinet.node.errors import (
    LinkKindMismatch,
    NodeClosed,
    NodeError,
    SubscriptionClosed,
    SubscriptionInUse,
    SubscriptionNotOpen,
)
from taiinet.node.links import (
    LinkFactory,
    Links,
    memory_links,
    webrtc_links,
    websocket_links,
)
from taiinet.node.node import Node, NodeConfig, NodeStats, open_node
from taiinet.node.subscription import Message, Subscription

__all__ = [
    "LinkFactory",
    "LinkKindMismatch",
    "Links",
    "Message",
    "Node",
    "NodeClosed",
    "NodeConfig",
    "NodeError",
    "NodeStats",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionInUse",
    "SubscriptionNotOpen",
    "memory_links",
    "open_node",
    "webrtc_links",
    "websocket_links",
]
