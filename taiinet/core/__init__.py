"""The core contract: the inputs every sans-I/O protocol core takes and the
actions it returns, shared by every protocol, the trio runner and the
simulation harness (``docs/cores.md``)."""

from taiinet.core.actions import (
    CloseLink,
    LinkAction,
    NeighborDown,
    NeighborEvent,
    NeighborUp,
    ProbeLink,
    Send,
    SetTimer,
    Started,
)
from taiinet.core.contract import Core, FrameAdmission, LinkObserver

__all__ = [
    "CloseLink",
    "Core",
    "FrameAdmission",
    "LinkAction",
    "LinkObserver",
    "NeighborDown",
    "NeighborEvent",
    "NeighborUp",
    "ProbeLink",
    "Send",
    "SetTimer",
    "Started",
]
