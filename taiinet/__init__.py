"""TaiiNet: decentralized peer-to-peer mesh messaging.

The public surface is re-exported here, with every error it raises (each a
``TaiiNetError``); everything else is internal.
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
from taiinet.node.errors import (
    InvalidInput,
    LinkKindMismatch,
    NodeClosed,
    SubscriptionClosed,
    SubscriptionInUse,
    SubscriptionNotOpen,
)
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.driver import OverlayDriver
from taiinet.overlay.errors import OverlayDecodeError, OverlayUsageError
from taiinet.pubsub import PubsubConfig, PubsubRouter, SignedDocuments
from taiinet.pubsub.errors import PubsubDecodeError, PubsubUsageError, RejectedDocument
from taiinet.pubsub.query import InvalidQuery, Query, SubscriptionIndex
from taiinet.pubsub.query.errors import InvalidDocument, MalformedFilter, MalformedValue
from taiinet.pubsub.query.index import IndexFull
from taiinet.signal.api import open_signaller
from taiinet.signal.client import IncomingOffer, SignalClient, open_signal_client
from taiinet.signal.errors import (
    InvalidSignallerUrl,
    MalformedSignalMessage,
    NoSignallerAvailable,
    PeerUnreachable,
    RecordRejected,
    SignalError,
    SignalUsageError,
)
from taiinet.signal.records import PeerRecord
from taiinet.signal.server import ProtocolViolation, SignallerClaimRejected
from taiinet.sim.overlay import OverlaySimConfig, simulate_overlay
from taiinet.transport.errors import (
    DecryptionError,
    DialError,
    FrameTimeout,
    HandshakeError,
    HandshakeTimeout,
    IdleTimeout,
    LinkTimeout,
    PartialFrameBudgetExceeded,
    PeerIdMismatch,
)
from taiinet.transport.limits import LinkDeadlines, ListenerLimits
from taiinet.transport.webrtc import InvalidSdp, open_webrtc
from taiinet.transport.websocket import (
    WebSocketProtocolError,
    connect_websocket,
    open_websocket_listener,
)
from taiinet.wire.envelope import Envelope, InvalidEnvelope
from taiinet.wire.errors import (
    FrameTooLarge,
    InvalidPeerId,
    InvalidPublicKey,
    KeyFileError,
    MalformedFrame,
    OversizedFrame,
    TruncatedFrame,
)
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

__all__ = [
    "ConnectionClosed",
    "DecryptionError",
    "DialError",
    "Envelope",
    "FrameTimeout",
    "FrameTooLarge",
    "HandshakeError",
    "HandshakeTimeout",
    "Identity",
    "IdleTimeout",
    "IncomingOffer",
    "IndexFull",
    "InvalidDocument",
    "InvalidEnvelope",
    "InvalidInput",
    "InvalidPeerId",
    "InvalidPublicKey",
    "InvalidQuery",
    "InvalidSdp",
    "InvalidSignallerUrl",
    "KeyFileError",
    "LinkDeadlines",
    "LinkKindMismatch",
    "LinkTimeout",
    "ListenerLimits",
    "LocalProtocolError",
    "MalformedFilter",
    "MalformedFrame",
    "MalformedSignalMessage",
    "MalformedValue",
    "Message",
    "NoSignallerAvailable",
    "Node",
    "NodeClosed",
    "NodeConfig",
    "NodeError",
    "NodeStats",
    "Overlay",
    "OverlayConfig",
    "OverlayDecodeError",
    "OverlayDriver",
    "OverlaySimConfig",
    "OverlayUsageError",
    "OversizedFrame",
    "PartialFrameBudgetExceeded",
    "PeerId",
    "PeerIdMismatch",
    "PeerRecord",
    "PeerUnreachable",
    "ProtocolViolation",
    "PubsubConfig",
    "PubsubDecodeError",
    "PubsubRouter",
    "PubsubUsageError",
    "Query",
    "RecordRejected",
    "RejectedDocument",
    "RemoteProtocolError",
    "SignalClient",
    "SignalError",
    "SignalUsageError",
    "SignallerClaimRejected",
    "SignedDocuments",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionInUse",
    "SubscriptionIndex",
    "SubscriptionNotOpen",
    "TaiiNetError",
    "TruncatedFrame",
    "WebSocketProtocolError",
    "connect_websocket",
    "open_node",
    "open_signal_client",
    "open_signaller",
    "open_webrtc",
    "open_websocket_listener",
    "simulate_overlay",
]
