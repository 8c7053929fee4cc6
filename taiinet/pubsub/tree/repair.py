# taiinet: sans-io core
"""The repair: when a neighbour's side of invariant (I) widens, restore it at once.

A neighbour's side of (I) is its *signature*: the link's epoch, whether it
is a tree link, whether it is the parent, and its filter keys.  After every
input the router compares each neighbour's signature with the one (I) was
last restored for; if it widened (new link, link turned tree, neighbour
became parent, or a filter not in the old set), the retained documents it
now must hold are pushed to it (``Forwarding.restore``).  A narrowing
makes the documents pushed to the neighbour that it no longer must hold
count as not held (``Forwarding.narrowed``): it may have dropped them.
The repair never reshapes the tree and never waits.
"""

from __future__ import annotations

from typing import Any

from taiinet.overlay.actions import Send
from taiinet.overlay.messages import OverlayMessage
from taiinet.pubsub.tree.forwarding import Forwarding
from taiinet.wire.peer_id import PeerId

#: (link epoch, tree link, parent told so, filter keys).
Signature = tuple[int, bool, bool, frozenset[Any]]


def _widened(old: Signature | None, new: Signature) -> bool:
    if old is None or old[0] != new[0]:
        return True
    return (new[1] and not old[1]) or (new[2] and not old[2]) or not new[3] <= old[3]


def _narrowed(old: Signature, new: Signature) -> bool:
    return (old[1] and not new[1]) or (old[2] and not new[2]) or not old[3] <= new[3]


class Repair:
    """Signatures per neighbour, and the restores their widenings call for."""

    __slots__ = ("_signatures", "forwarding", "repaired")

    def __init__(self, forwarding: Forwarding) -> None:
        self.forwarding = forwarding
        self._signatures: dict[PeerId, Signature] = {}
        #: Documents pushed by restores (not by ordinary forwarding).
        self.repaired = 0

    def signature(self, peer: PeerId, epoch: int) -> Signature:
        fwd = self.forwarding
        return (epoch, fwd.tree.is_tree_link(peer),
                peer == fwd.tree.parent and peer in fwd.told, fwd.interest.keys_of(peer))

    def run(self, out: list[Send[OverlayMessage]]) -> None:
        """Restore (I) for every neighbour whose signature widened since last time."""
        signatures = self._signatures
        epochs = self.forwarding.epochs
        for peer in [p for p in signatures if p not in epochs]:
            del signatures[peer]
        for peer, epoch in epochs.items():
            new = self.signature(peer, epoch)
            old = signatures.get(peer)
            if old == new:
                continue
            signatures[peer] = new
            if old is not None and old[0] == new[0] and _narrowed(old, new):
                self.forwarding.narrowed(peer)
            if _widened(old, new):
                self.repaired += self.forwarding.restore(peer, out)
