"""The core contract: the inputs every sans-I/O protocol core takes and the
actions it returns, shared by every protocol, the trio runner and the
simulation harness (``docs/cores.md``)."""

from taiinet.core.actions import (
    CloseLink,
    Dial,
    LinkAction,
    LinkId,
    NeighborDown,
    NeighborEvent,
    NeighborUp,
    ProbeLink,
    Send,
    SetTimer,
    Started,
)
from taiinet.core.contract import Core, FrameAdmission, LinkObserver
from taiinet.core.links import LinkCore

__all__ = [
    "CloseLink",
    "Core",
    "Dial",
    "FrameAdmission",
    "LinkAction",
    "LinkCore",
    "LinkId",
    "LinkObserver",
    "NeighborDown",
    "NeighborEvent",
    "NeighborUp",
    "ProbeLink",
    "Send",
    "SetTimer",
    "Started",
]
