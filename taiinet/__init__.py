"""TaiiNet: decentralized peer-to-peer mesh messaging.

The public surface is re-exported here; everything else is internal.
"""

from taiinet.errors import (
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
    TaiiNetError,
)
from taiinet.node import (
    Message,
    Node,
    NodeConfig,
    NodeError,
    NodeStats,
    Subscription,
    open_node,
)
from taiinet.pubsub.query import InvalidQuery, Query, SubscriptionIndex
from taiinet.signal.api import open_signaller
from taiinet.transport.webrtc import InvalidSdp, open_webrtc
from taiinet.transport.websocket import connect_websocket, open_websocket_listener
from taiinet.wire.envelope import Envelope, InvalidEnvelope
from taiinet.wire.identity import Identity

__all__ = [
    "ConnectionClosed",
    "Envelope",
    "Identity",
    "InvalidEnvelope",
    "InvalidQuery",
    "InvalidSdp",
    "LocalProtocolError",
    "Message",
    "Node",
    "NodeConfig",
    "NodeError",
    "NodeStats",
    "Query",
    "RemoteProtocolError",
    "Subscription",
    "SubscriptionIndex",
    "TaiiNetError",
    "connect_websocket",
    "open_node",
    "open_signaller",
    "open_webrtc",
    "open_websocket_listener",
]
