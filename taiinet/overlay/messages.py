# taiinet: sans-io core
"""Validated domain types of the overlay's wire messages.

The codec (``taiinet.overlay.codec``) turns ``OverlayMessage`` protobufs into
these and back; the cores and the simulator only ever see these.  The sender
of a message is the peer at the other end of the link it came on, so no
message names its sender.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.core.frozen import quick_init
from taiinet.wire.peer_id import MAX_PEER_ID_TEXT, PeerId

#: Longest peer id accepted from the wire (libp2p Ed25519 ids are 52 chars); every
#: peer id field must also be a valid ``PeerId`` (an ``origin`` may be empty).
MAX_PEER_ID_LENGTH = MAX_PEER_ID_TEXT
#: Most peers in one Shuffle or ShuffleReply.
MAX_SHUFFLE_PEERS = 64
#: Longest broadcast message id (the pubsub layer uses a 32-byte hash).
MAX_MESSAGE_ID_LENGTH = 64
#: Largest broadcast payload (a frame must fit a 64 KiB transport message).
MAX_PAYLOAD_SIZE = 60 * 1024
#: Largest hop count or TTL accepted from the wire.
MAX_HOPS = 255


# --- HyParView ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Join:
    """The sender asks the receiver, its contact, to bring it into the overlay."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardJoin:
    """Random walk announcing ``peer``, a newly joined node."""

    peer: PeerId
    ttl: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Neighbor:
    """Request to become an active neighbour; high priority must be accepted."""

    high_priority: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighborReply:
    accepted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect:
    """The sender dropped the receiver from its active view."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Shuffle:
    """Random walk with a sample of ``origin``'s views."""

    origin: PeerId
    ttl: int
    peers: tuple[PeerId, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShuffleReply:
    peers: tuple[PeerId, ...]


# --- Plumtree -------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Gossip:
    """A broadcast payload; ``hops`` counts the links it crossed, 1 from the origin.

    ``origin`` is the peer id of the node that broadcast it ("" if unknown): it
    selects the per-origin tree the payload travels on.  ``entry`` tells the
    copies of one broadcast that entered the shared tree at different places
    apart, so that their meeting does not prune the tree.
    """

    message_id: bytes
    hops: int
    payload: bytes
    origin: str = ""
    #: Tag of the node where the message left the flood prefix and entered the
    #: shared tree (0: in the prefix, or no prefix in use); see ``Plumtree``.
    entry: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class IHave:
    """Lazy announcement: the sender has ``message_id`` (at ``hops`` if pulled)."""

    message_id: bytes
    hops: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Graft:
    """Pull ``message_id`` and make the link eager again (in ``origin``'s tree)."""

    message_id: bytes
    origin: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Prune:
    """Stop eagerly pushing to the sender (the link becomes lazy in ``origin``'s tree)."""

    origin: str = ""


MembershipMessage = (
    Join | ForwardJoin | Neighbor | NeighborReply | Disconnect | Shuffle | ShuffleReply
)
BroadcastMessage = Gossip | IHave | Graft | Prune
OverlayMessage = MembershipMessage | BroadcastMessage

MEMBERSHIP_TYPES: tuple[type, ...] = (
    Join, ForwardJoin, Neighbor, NeighborReply, Disconnect, Shuffle, ShuffleReply,
)
BROADCAST_TYPES: tuple[type, ...] = (Gossip, IHave, Graft, Prune)
