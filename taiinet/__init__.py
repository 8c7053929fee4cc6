"""TaiiNet: decentralized peer-to-peer mesh messaging.

The public surface is re-exported here; everything else is internal.
"""

from taiinet.errors import (
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
    TaiiNetError,
)
from taiinet.pubsub.query import InvalidQuery, Query, SubscriptionIndex

__all__ = [
    "ConnectionClosed",
    "InvalidQuery",
    "LocalProtocolError",
    "Query",
    "RemoteProtocolError",
    "SubscriptionIndex",
    "TaiiNetError",
]
