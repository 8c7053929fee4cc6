# taiinet: sans-io core
"""Outputs of the pubsub router, on top of the overlay's actions.

The routers (``TreeRouter``, ``BroadcastRouter``) return the overlay's
``Send``, ``SetTimer``, ``CloseLink``, ``ProbeLink``, ``NeighborUp`` and
``NeighborDown`` unchanged (the overlay's own ``Deliver`` is replaced by the
pubsub ``Deliver`` below), plus
``SendInterest`` and ``SetInterestTimer``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from taiinet.overlay.actions import (
    CloseLink,
    NeighborDown,
    NeighborUp,
    ProbeLink,
    Send,
    SetTimer,
    Timer,
)
from taiinet.overlay.messages import OverlayMessage
from taiinet.pubsub.messages import InterestAdvert
from taiinet.wire.peer_id import PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    """Hand a verified document to the application's matching subscriptions.

    Happens at most once per message id (so once per subscription); only
    subscriptions whose query matches ``document`` are listed, never empty.
    ``publisher`` is the peer id that signed it, ``published_unix_ms`` its
    (signed) claim of when it published, ``hops`` the links the document
    crossed to get here (0 for a local publication).
    """

    subscription_ids: tuple[Hashable, ...]
    document: Any
    publisher: str
    message_id: bytes
    published_unix_ms: int
    hops: int
    #: What the decoded document is counted as holding in memory: its encoded
    #: size plus ``DECODED_VALUE_BYTES`` per value (and a record's overhead);
    #: delivery queues are bounded in these bytes.
    cost: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    """``publish`` sealed a document under ``message_id`` (always its first action)."""

    message_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SendInterest:
    """Send the ``PubsubMessage`` ``advert`` to the overlay neighbour ``peer`` (at once)."""

    peer: PeerId
    advert: InterestAdvert


@dataclass(frozen=True, slots=True, kw_only=True)
class InterestTimer:
    """Recompute the interest adverts and send those that changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentTimer:
    """Check whether this node's component is cut off from the overlay (healing)."""


PubsubTimer = InterestTimer | ComponentTimer


@dataclass(frozen=True, slots=True, kw_only=True)
class SetInterestTimer:
    """Call the router's ``handle_timer(timer, now)`` at time ``at``."""

    at: float
    timer: PubsubTimer


Action = (Send[OverlayMessage] | CloseLink | ProbeLink | NeighborUp | NeighborDown
          | SetTimer[Timer] | Deliver | Published | SendInterest | SetInterestTimer)
