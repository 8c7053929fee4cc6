# taiinet: sans-io core
"""Outputs of the overlay cores, carried out by a runner (trio or simulator).

Every core input returns a list of these, in the order they must be carried
out: the shared actions of ``taiinet.core.actions`` (``Send``, ``SetTimer``,
``CloseLink``, ``ProbeLink``, ``NeighborUp``, ``NeighborDown``, re-exported
here), the overlay's timers, and its output event ``Deliver``.  Timers are
values, not handles: a core asks to be woken with ``SetTimer(at, timer)``
and ignores a timer that no longer matters when it fires.

HyParView asks ``ProbeLink`` for neighbours it has not heard from for a
while, so a node whose neighbours all crashed notices it without sending
anything, and treats one still silent ``probe_timeout`` after the probe as
failed (a hung peer whose link stays open).  Plumtree paces its routine
``IHave``s itself (``taiinet.overlay.lazy``).
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.core.actions import CloseLink, NeighborDown, NeighborUp, ProbeLink, Send, SetTimer
from taiinet.overlay.messages import OverlayMessage
from taiinet.wire.peer_id import PeerId

__all__ = [
    "Action",
    "CloseLink",
    "Deliver",
    "KeepaliveTimer",
    "LazyFlushTimer",
    "MissingTimer",
    "NeighborDown",
    "NeighborUp",
    "ProbeLink",
    "Send",
    "SetTimer",
    "ShuffleTimer",
    "Timer",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    """Hand a broadcast to the application; happens at most once per message id.

    ``sender`` is the neighbour it came from (``None`` for a local broadcast);
    ``hops`` is the number of links it crossed (0 for a local broadcast).
    """

    message_id: bytes
    payload: bytes
    sender: PeerId | None
    hops: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ShuffleTimer:
    """HyParView's periodic shuffle."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepaliveTimer:
    """HyParView's short tick: probe idle neighbours, refill a short active view."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MissingTimer:
    """Plumtree: an announced message has not arrived in time; graft it."""

    message_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class LazyFlushTimer:
    """Plumtree: send the ``IHave``s held for ``peer`` (``taiinet.overlay.lazy``)."""

    peer: PeerId


Timer = ShuffleTimer | KeepaliveTimer | MissingTimer | LazyFlushTimer


Action = (Send[OverlayMessage] | CloseLink | ProbeLink | NeighborUp | NeighborDown | Deliver
          | SetTimer[Timer])
