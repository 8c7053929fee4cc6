"""TaiiNet: decentralized peer-to-peer mesh messaging.

The application API is re-exported here, with every error it raises (each a
``TaiiNetError``).  The sans-I/O cores live under their layers
(``taiinet.overlay``, ``taiinet.pubsub``, ``taiinet.signal``), the simulator in
``taiinet.sim`` and the test harnesses in ``taiinet.testing``; everything else
is internal.

Names are imported on first use (PEP 562), so ``import taiinet`` loads no
layer, and a program that never opens a WebRTC link never loads aiortc.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taiinet._lazy import lazy_exports
from taiinet.errors import (
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
    TaiiNetError,
)

if TYPE_CHECKING:
    from taiinet.history.errors import HistoryDecodeError, HistoryUsageError, StoreError
    from taiinet.history.store import SeedStore, StoreFull
    from taiinet.node.errors import (
        InvalidInput,
        LinkKindMismatch,
        NodeClosed,
        NodeError,
        SubscriptionClosed,
        SubscriptionInUse,
        SubscriptionNotOpen,
    )
    from taiinet.node.history import HistoryBusy, HistoryConfig
    from taiinet.node.links import LinkFactory, webrtc_links, websocket_links
    from taiinet.node.node import Node, NodeConfig, NodeStats, open_node
    from taiinet.node.seeder import Seeder, open_seeder
    from taiinet.node.subscription import Message, Subscription
    from taiinet.overlay.core import OverlayConfig
    from taiinet.overlay.errors import OverlayDecodeError, OverlayUsageError
    from taiinet.pubsub.config import PubsubConfig
    from taiinet.pubsub.errors import PubsubDecodeError, PubsubUsageError, RejectedDocument
    from taiinet.pubsub.query.errors import (
        InvalidDocument,
        InvalidQuery,
        MalformedFilter,
        MalformedValue,
    )
    from taiinet.pubsub.query.index import IndexFull, SubscriptionIndex
    from taiinet.pubsub.query.query import Query
    from taiinet.signal.api import open_signaller
    from taiinet.signal.client import (
        IncomingOffer,
        SignalClient,
        SignalClientConfig,
        open_signal_client,
    )
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
    from taiinet.stream.errors import (
        BadMedia,
        StreamDecodeError,
        StreamNotFound,
        StreamUsageError,
    )
    from taiinet.transport.errors import (
        CertificateUntrusted,
        DecryptionError,
        DialError,
        FrameTimeout,
        HandshakeError,
        HandshakeTimeout,
        IdleTimeout,
        InvalidSdp,
        LinkTimeout,
        PartialFrameBudgetExceeded,
        PeerIdMismatch,
        TlsConfigError,
    )
    from taiinet.transport.limits import LinkDeadlines, ListenerLimits
    from taiinet.transport.webrtc import IceServer, open_webrtc
    from taiinet.transport.websocket import (
        WebSocketMessageTooLarge,
        WebSocketProtocolError,
        WebSocketUpgradeError,
        connect_websocket,
        open_websocket_listener,
    )
    from taiinet.wire.envelope import Envelope
    from taiinet.wire.errors import (
        FrameTooLarge,
        InvalidEnvelope,
        InvalidPeerId,
        InvalidPublicKey,
        KeyFileError,
        MalformedFrame,
        OversizedFrame,
        TruncatedFrame,
    )
    from taiinet.wire.identity import Identity
    from taiinet.wire.peer_id import PeerId

#: Each lazily re-exported name and the module it is imported from.
_EXPORTS: dict[str, str] = {
    "CertificateUntrusted": "taiinet.transport.errors",
    "BadMedia": "taiinet.stream.errors",
    "DecryptionError": "taiinet.transport.errors",
    "DialError": "taiinet.transport.errors",
    "Envelope": "taiinet.wire.envelope",
    "FrameTimeout": "taiinet.transport.errors",
    "FrameTooLarge": "taiinet.wire.errors",
    "HandshakeError": "taiinet.transport.errors",
    "HandshakeTimeout": "taiinet.transport.errors",
    "HistoryBusy": "taiinet.node.history",
    "HistoryConfig": "taiinet.node.history",
    "HistoryDecodeError": "taiinet.history.errors",
    "HistoryUsageError": "taiinet.history.errors",
    "IceServer": "taiinet.transport.webrtc",
    "Identity": "taiinet.wire.identity",
    "IdleTimeout": "taiinet.transport.errors",
    "IncomingOffer": "taiinet.signal.client",
    "IndexFull": "taiinet.pubsub.query.index",
    "InvalidDocument": "taiinet.pubsub.query.errors",
    "InvalidEnvelope": "taiinet.wire.errors",
    "InvalidInput": "taiinet.node.errors",
    "InvalidPeerId": "taiinet.wire.errors",
    "InvalidPublicKey": "taiinet.wire.errors",
    "InvalidQuery": "taiinet.pubsub.query.errors",
    "InvalidSdp": "taiinet.transport.errors",
    "InvalidSignallerUrl": "taiinet.signal.errors",
    "KeyFileError": "taiinet.wire.errors",
    "LinkDeadlines": "taiinet.transport.limits",
    "LinkFactory": "taiinet.node.links",
    "LinkKindMismatch": "taiinet.node.errors",
    "LinkTimeout": "taiinet.transport.errors",
    "ListenerLimits": "taiinet.transport.limits",
    "MalformedFilter": "taiinet.pubsub.query.errors",
    "MalformedFrame": "taiinet.wire.errors",
    "MalformedSignalMessage": "taiinet.signal.errors",
    "MalformedValue": "taiinet.pubsub.query.errors",
    "Message": "taiinet.node.subscription",
    "NoSignallerAvailable": "taiinet.signal.errors",
    "Node": "taiinet.node.node",
    "NodeClosed": "taiinet.node.errors",
    "NodeConfig": "taiinet.node.node",
    "NodeError": "taiinet.node.errors",
    "NodeStats": "taiinet.node.node",
    "OverlayConfig": "taiinet.overlay.core",
    "OverlayDecodeError": "taiinet.overlay.errors",
    "OverlayUsageError": "taiinet.overlay.errors",
    "OversizedFrame": "taiinet.wire.errors",
    "PartialFrameBudgetExceeded": "taiinet.transport.errors",
    "PeerId": "taiinet.wire.peer_id",
    "PeerIdMismatch": "taiinet.transport.errors",
    "PeerRecord": "taiinet.signal.records",
    "PeerUnreachable": "taiinet.signal.errors",
    "ProtocolViolation": "taiinet.signal.server",
    "PubsubConfig": "taiinet.pubsub.config",
    "PubsubDecodeError": "taiinet.pubsub.errors",
    "PubsubUsageError": "taiinet.pubsub.errors",
    "Query": "taiinet.pubsub.query.query",
    "RecordRejected": "taiinet.signal.errors",
    "RejectedDocument": "taiinet.pubsub.errors",
    "SeedStore": "taiinet.history.store",
    "Seeder": "taiinet.node.seeder",
    "SignalClient": "taiinet.signal.client",
    "SignalClientConfig": "taiinet.signal.client",
    "SignalError": "taiinet.signal.errors",
    "SignalUsageError": "taiinet.signal.errors",
    "SignallerClaimRejected": "taiinet.signal.server",
    "StoreError": "taiinet.history.errors",
    "StoreFull": "taiinet.history.store",
    "StreamDecodeError": "taiinet.stream.errors",
    "StreamNotFound": "taiinet.stream.errors",
    "StreamUsageError": "taiinet.stream.errors",
    "Subscription": "taiinet.node.subscription",
    "SubscriptionClosed": "taiinet.node.errors",
    "SubscriptionInUse": "taiinet.node.errors",
    "SubscriptionIndex": "taiinet.pubsub.query.index",
    "SubscriptionNotOpen": "taiinet.node.errors",
    "TlsConfigError": "taiinet.transport.errors",
    "TruncatedFrame": "taiinet.wire.errors",
    "WebSocketMessageTooLarge": "taiinet.transport.websocket",
    "WebSocketProtocolError": "taiinet.transport.websocket",
    "WebSocketUpgradeError": "taiinet.transport.websocket",
    "connect_websocket": "taiinet.transport.websocket",
    "open_node": "taiinet.node.node",
    "open_seeder": "taiinet.node.seeder",
    "open_signal_client": "taiinet.signal.client",
    "open_signaller": "taiinet.signal.api",
    "open_webrtc": "taiinet.transport.webrtc",
    "open_websocket_listener": "taiinet.transport.websocket",
    "webrtc_links": "taiinet.node.links",
    "websocket_links": "taiinet.node.links",
}

if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt name stays an error
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "BadMedia",
    "CertificateUntrusted",
    "ConnectionClosed",
    "DecryptionError",
    "DialError",
    "Envelope",
    "FrameTimeout",
    "FrameTooLarge",
    "HandshakeError",
    "HandshakeTimeout",
    "HistoryBusy",
    "HistoryConfig",
    "HistoryDecodeError",
    "HistoryUsageError",
    "IceServer",
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
    "LinkFactory",
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
    "OverlayConfig",
    "OverlayDecodeError",
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
    "PubsubUsageError",
    "Query",
    "RecordRejected",
    "RejectedDocument",
    "RemoteProtocolError",
    "SeedStore",
    "Seeder",
    "SignalClient",
    "SignalClientConfig",
    "SignalError",
    "SignalUsageError",
    "SignallerClaimRejected",
    "StoreError",
    "StoreFull",
    "StreamDecodeError",
    "StreamNotFound",
    "StreamUsageError",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionInUse",
    "SubscriptionIndex",
    "SubscriptionNotOpen",
    "TaiiNetError",
    "TlsConfigError",
    "TruncatedFrame",
    "WebSocketMessageTooLarge",
    "WebSocketProtocolError",
    "WebSocketUpgradeError",
    "connect_websocket",
    "open_node",
    "open_seeder",
    "open_signal_client",
    "open_signaller",
    "open_webrtc",
    "open_websocket_listener",
    "webrtc_links",
    "websocket_links",
]
