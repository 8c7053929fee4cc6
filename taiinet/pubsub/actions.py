# taiinet: sans-io core
"""Outputs of the pubsub routers: the core contract's actions, and ``Deliver``.

The routers (``TreeRouter``, ``BroadcastRouter``) return only the shared
actions of ``taiinet.core`` (docs/cores.md): ``Send`` (an overlay message,
or an ``InterestAdvert`` to a neighbour: the runner finds the codec by the
message's type), ``SetTimer`` (the overlay's timers and the router's own,
``InterestTimer``, ``ComponentTimer`` and ``RestoreTimer``), ``CloseLink``, ``ProbeLink``,
``NeighborUp`` and ``NeighborDown``; and one output event of their own, the
pubsub ``Deliver`` (the overlay's ``Deliver`` never leaves a router).
``publish`` returns ``Started(message_id, actions)``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from taiinet.core.actions import CloseLink, NeighborDown, NeighborUp, ProbeLink, Send, SetTimer
from taiinet.core.frozen import quick_init
from taiinet.overlay.actions import Timer
from taiinet.overlay.messages import OverlayMessage
from taiinet.pubsub.messages import PubsubMessage


@quick_init
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
class InterestTimer:
    """Recompute the interest adverts and send those that changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentTimer:
    """Check whether this node's component is cut off from the overlay (healing)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreTimer:
    """Push neighbours more of the documents a widening owes them (paced repair)."""


PubsubTimer = InterestTimer | ComponentTimer | RestoreTimer

#: What a router sends: the overlay's messages and the interest advert.
RouterMessage = OverlayMessage | PubsubMessage

Action = (Send[RouterMessage] | SetTimer[Timer | PubsubTimer] | CloseLink | ProbeLink
          | NeighborUp | NeighborDown | Deliver)
