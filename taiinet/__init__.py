"""TaiiNet: decentralized peer-to-peer mesh messaging.

The public surface is re-exported here; everything else is internal.
"""

from taiinet.errors import (
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
    TaiiNetError,
)
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.driver import OverlayDriver
from taiinet.sim.overlay import OverlaySimConfig, simulate_overlay
from taiinet.wire.envelope import Envelope, InvalidEnvelope
from taiinet.wire.identity import Identity

__all__ = [
    "ConnectionClosed",
    "Envelope",
    "Identity",
    "InvalidEnvelope",
    "LocalProtocolError",
    "Overlay",
    "OverlayConfig",
    "OverlayDriver",
    "OverlaySimConfig",
    "RemoteProtocolError",
    "TaiiNetError",
    "simulate_overlay",
]
