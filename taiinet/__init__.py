"""TaiiNet: decentralized peer-to-peer mesh messaging.

The public surface is re-exported here; everything else is internal.
"""

from taiinet.errors import (
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
    TaiiNetError,
)

__all__ = [
    "ConnectionClosed",
    "LocalProtocolError",
    "RemoteProtocolError",
    "TaiiNetError",
]
