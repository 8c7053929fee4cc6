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
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.driver import OverlayDriver
from taiinet.pubsub import PubsubConfig, PubsubRouter, SignedDocuments
from taiinet.pubsub.query import InvalidQuery, Query, SubscriptionIndex
from taiinet.signal.api import open_signaller
from taiinet.signal.client import IncomingOffer, SignalClient, open_signal_client
from taiinet.signal.errors import NoSignallerAvailable, PeerUnreachable, SignalError
from taiinet.signal.records import PeerRecord
from taiinet.sim.overlay import OverlaySimConfig, simulate_overlay
from taiinet.transport.webrtc import InvalidSdp, open_webrtc
from taiinet.transport.websocket import connect_websocket, open_websocket_listener
from taiinet.wire.envelope import Envelope, InvalidEnvelope
from taiinet.wire.errors import InvalidPeerId
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

__all__ = [
    "ConnectionClosed",
    "Envelope",
    "Identity",
    "IncomingOffer",
    "InvalidEnvelope",
    "InvalidPeerId",
    "InvalidQuery",
    "InvalidSdp",
    "LocalProtocolError",
    "Message",
    "NoSignallerAvailable",
    "Node",
    "NodeConfig",
    "NodeError",
    "NodeStats",
    "Overlay",
    "OverlayConfig",
    "OverlayDriver",
    "OverlaySimConfig",
    "PeerId",
    "PeerRecord",
    "PeerUnreachable",
    "PubsubConfig",
    "PubsubRouter",
    "Query",
    "RemoteProtocolError",
    "SignalClient",
    "SignalError",
    "SignedDocuments",
    "Subscription",
    "SubscriptionIndex",
    "TaiiNetError",
    "connect_websocket",
    "open_node",
    "open_signal_client",
    "open_signaller",
    "open_webrtc",
    "open_websocket_listener",
    "simulate_overlay",
]
