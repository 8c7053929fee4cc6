"""TaiiNet: decentralized peer-to-peer mesh messaging.

The public surface is re-exported here; everything else is internal.
"""

from taiinet.errors import (
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
    TaiiNetError,
)
from taiinet.pubsub import PubsubConfig, PubsubRouter, SignedDocuments
from taiinet.pubsub.query import InvalidQuery, Query, SubscriptionIndex
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
    "PubsubConfig",
    "PubsubRouter",
    "Query",
    "RemoteProtocolError",
    "SignedDocuments",
    "SubscriptionIndex",
    "TaiiNetError",
    "connect_websocket",
    "open_webrtc",
    "open_websocket_listener",
]
