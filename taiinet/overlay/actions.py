# taiinet: sans-io core
"""Outputs of the overlay cores, carried out by a driver (trio or simulator).

Every core input returns a list of these, in the order they must be carried
out.  Timers are values, not handles: a core asks to be woken with
``SetTimer(at, timer)`` and ignores a timer that no longer matters when it
fires, so drivers never cancel anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.overlay.messages import OverlayMessage
from taiinet.wire.peer_id import PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Send ``message`` to ``peer``, opening a link first if there is none.

    If the peer cannot be reached, or the link fails later, the driver calls
    the core's ``handle_link_down(peer, now)``.  ``lazy``: the message may wait
    to share a link message with later ones (Plumtree's routine ``IHave``s);
    delivery never waits on it.
    """

    peer: PeerId
    message: OverlayMessage
    lazy: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseLink:
    """Close the link to ``peer`` once the messages already sent on it are out.

    With ``failed`` the peer is dead or hung: close at once, without waiting
    for a flush that may never end (the core already counts the link down).
    """

    peer: PeerId
    failed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeLink:
    """Check that the link to ``peer`` is alive (a link-level ``Ping``).

    A live peer answers (a ``Pong``), and the driver reports that it heard
    from it (``heard_from``, or any message from it); a link found dead is
    reported with ``handle_link_down(peer, now)``.  HyParView asks this for
    neighbours it has not heard from for a while, so a node whose neighbours
    all crashed notices it without having to send anything (a TCP
    keep-alive), and treats one still silent ``probe_timeout`` after the
    probe as failed (a hung peer whose link stays open).
    """

    peer: PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighborUp:
    """``peer`` entered the active view: it is now an overlay neighbour."""

    peer: PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighborDown:
    """``peer`` left the active view (dropped, disconnected or failed)."""

    peer: PeerId


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


Timer = ShuffleTimer | KeepaliveTimer | MissingTimer


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTimer:
    """Call the core's ``handle_timer(timer, now)`` at time ``at``."""

    at: float
    timer: Timer


Action = Send | CloseLink | ProbeLink | NeighborUp | NeighborDown | Deliver | SetTimer
