# taiinet: sans-io core
"""Validated domain types of the pubsub wire messages, and their limits.

``taiinet.pubsub.codec`` turns ``PubsubMessage`` protobufs into these and
back.  Documents themselves are not pubsub messages: they ride the overlay's
``Gossip.payload`` as signed envelopes (see ``taiinet.pubsub.documents``).
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.pubsub.query import Query

#: Most filters in one interest advert (a summary is widened to fit).
MAX_ADVERT_FILTERS = 16
#: Largest encoded ``PubsubMessage`` accepted or sent.
MAX_ADVERT_BYTES = 32 * 1024
#: Longest route a root id travels (bounds count-to-infinity on cycles).
MAX_ROOT_DISTANCE = 64
#: Stable tree: counts of nodes stop here (a saturated count stops changing,
#: so a join far away sends no advert); member lists are sent below it.
TREE_SIZE_CAP = 32
#: Longest root peer id.
MAX_ROOT_LENGTH = 128
#: Largest advert version (uint64).
MAX_VERSION = (1 << 64) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class InterestAdvert:
    """What the sender wants to receive on this link, and its route (docs/pubsub.md 3-5).

    A document is forwarded to the sender when it matches one of
    ``filters``; no filter means no interest, and the match-all query ``{}``
    means every document.  ``version`` grows with every advert a node sends.
    ``tree_link``: the sender has chosen the receiver as its parent.  ``root``,
    ``root_distance`` and ``root_since_ms`` are the sender's route to the
    oldest node; ``tree_size`` and ``tree_members`` list the sender's side
    of a tree link (for healing).  ``ack`` is unused (sent 0).
    """

    version: int
    filters: tuple[Query, ...]
    tree_link: bool = False
    ack: int = 0
    #: The sender's root (peer id, "" for none) and its distance in links
    #: (``MAX_ROOT_DISTANCE`` at most).
    root: str = ""
    root_distance: int = 0
    #: The root's claimed start, Unix ms (older roots win).
    root_since_ms: int = 0
    #: Nodes on the sender's side of a tree link (0 over others), at most
    #: ``TREE_SIZE_CAP``.
    tree_size: int = 0
    #: The ids ``tree_size`` counts, when below ``TREE_SIZE_CAP``.
    tree_members: tuple[str, ...] = ()


PubsubMessage = InterestAdvert
