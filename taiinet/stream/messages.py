# taiinet: sans-io core
"""Validated domain types of the relay tree's control messages.

The codec (``taiinet.stream.codec``) turns ``StreamMessage`` protobufs into
these and back; the tree core and the simulator only ever see these.  Every
message travels on an authenticated link, so none names its sender.  The
tree protocol is described in docs/stream.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.wire.peer_id import PeerId

#: Deepest tree position: a path (root .. parent) holds at most this many peers.
MAX_DEPTH = 64
#: Most upload slots a peer may declare (children it may adopt).
MAX_SLOTS = 64
#: Most peers in a redirect, standby or recommendation list.
MAX_CANDIDATES = 8
#: Largest chunk sequence number (chunks are numbered by the broadcaster from 0).
MAX_SEQ = (1 << 63) - 1
#: Cap of a subtree's free-slot count in a ``Status`` (larger counts are clipped).
MAX_FREE = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Join:
    """The sender asks to be adopted as a child; it can relay to ``slots`` children.

    ``have``: the highest chunk it holds (-1: none), so that a new parent can
    send it the chunks it missed while it had no parent (``Backfill``).
    ``free_slot_only``: adopt the sender only into a free slot (no ``Reparent``
    of a child for it): set on a Join sent while another of the same join
    round is in flight, so that a joiner that goes elsewhere displaced nobody.
    """

    slots: int
    have: int = -1
    free_slot_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Adopt:
    """The sender adopted the receiver; ``path`` runs from the broadcaster to the sender."""

    path: tuple[PeerId, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    """The sender has no free slot; the receiver should try these peers, best first.

    An empty list means "no room below me either": try elsewhere later.
    """

    candidates: tuple[PeerId, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Leave:
    """The sender ends the parent/child relation with the receiver.

    ``evicted``: sent by a parent that removed the receiver for stalling its
    children (the receiver is banned from that parent for a while).
    """

    evicted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Reparent:
    """The parent gave the receiver's slot to a stronger peer; join ``to`` (its new parent)."""

    to: PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """Parent to child, every tick and whenever its path changes.

    ``seq``: the highest chunk the parent holds; ``path``: broadcaster ..
    parent (empty while the parent is detached); ``standby``: peers to try,
    in order, if the parent is lost.
    """

    seq: int
    path: tuple[PeerId, ...]
    standby: tuple[PeerId, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """Child to parent, every tick.

    ``slots``: the child's declared capacity; ``children``: its children;
    ``free``: free slots in its whole subtree (clipped to ``MAX_FREE``);
    ``seq``: the highest chunk it holds; ``recommend``: its best children to
    adopt newcomers (free slots, most capacity first).
    """

    slots: int
    children: tuple[PeerId, ...]
    free: int
    seq: int
    recommend: tuple[PeerId, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StallReport:
    """Grandchild to grandparent: ``parent`` (the receiver's child) is not relaying.

    ``seq`` is the highest chunk the reporter holds.
    """

    parent: PeerId
    seq: int


TreeMessage = Join | Adopt | Redirect | Leave | Reparent | Heartbeat | Status | StallReport


# --- media (docs/stream.md, "Media") ------------------------------------------

#: Most chunk hashes one ``Seal`` covers.
MAX_SEAL_HASHES = 256
#: Length of a chunk hash (SHA-256).
HASH_SIZE = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """A piece of media numbered ``seq``; a ``Seal`` sent earlier vouches for it."""

    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Seal:
    """The broadcaster's signature over the hashes of chunks ``first`` .. ``first + n - 1``."""

    first: int
    hashes: tuple[bytes, ...]
    signature: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyframeRequest:
    """Child to parent (and up to the broadcaster): media was lost, send a keyframe soon."""


MediaMessage = Chunk | Seal | KeyframeRequest
StreamBody = TreeMessage | MediaMessage


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One message of the stream protocol (link protocol 14): ``body`` for ``stream_id``.

    The unit the link layer's registry sends and hands over (``stream.codec.CODEC``).
    """

    stream_id: bytes
    body: StreamBody
