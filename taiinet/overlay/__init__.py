"""Overlay layer: HyParView membership and Plumtree broadcast.

``Overlay`` (in ``taiinet.overlay.core``) is the sans-I/O core the drivers
feed; ``taiinet.overlay.actions`` lists its outputs and
``taiinet.overlay.messages`` the domain messages; ``taiinet.overlay.codec``
converts those to and from the ``OverlayMessage`` protobuf.
"""

from taiinet.overlay.actions import (
    Action,
    CloseLink,
    Deliver,
    KeepaliveTimer,
    MissingTimer,
    NeighborDown,
    NeighborUp,
    ProbeLink,
    Send,
    SetTimer,
    ShuffleTimer,
    Timer,
)
from taiinet.overlay.config import HyParViewConfig, PlumtreeConfig
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.errors import OverlayDecodeError, OverlayUsageError
from taiinet.overlay.hyparview import HyParView
from taiinet.overlay.plumtree import ForwardFilter, Plumtree

__all__ = [
    "Action",
    "CloseLink",
    "Deliver",
    "ForwardFilter",
    "HyParView",
    "HyParViewConfig",
    "KeepaliveTimer",
    "MissingTimer",
    "NeighborDown",
    "NeighborUp",
    "Overlay",
    "OverlayConfig",
    "OverlayDecodeError",
    "OverlayUsageError",
    "Plumtree",
    "PlumtreeConfig",
    "ProbeLink",
    "Send",
    "SetTimer",
    "ShuffleTimer",
    "Timer",
]
