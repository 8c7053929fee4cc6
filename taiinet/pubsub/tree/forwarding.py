# taiinet: sans-io core
"""The forwarding decision, which is also the repair: invariant (I).

For every retained document ``d`` and every neighbour ``q``: if the link to
``q`` is a tree link and ``q``'s filters match ``d``, or ``d`` is this node's
own publication and ``q`` its parent, told so by an advert already sent
(links are FIFO: the parent knows its child before the document arrives),
then ``q`` holds ``d`` (on the current link).  ``Forwarding`` pushes ``d``
to whoever breaks it: for a new document that is ordinary forwarding along
the tree; ``taiinet.pubsub.tree.repair`` asks what is ``owed`` when a
neighbour's side of the rule widened (``owed``).
"""

from __future__ import annotations

from taiinet.core.frozen import quick_new
from taiinet.overlay.actions import Send
from taiinet.overlay.messages import MAX_HOPS, Gossip, OverlayMessage
from taiinet.pubsub.tree.interest import InterestTable
from taiinet.pubsub.tree.retention import Retained, Retention
from taiinet.pubsub.tree.routes import SpanningTree
from taiinet.wire.peer_id import PeerId, plain_key

#: ``Gossip(...)`` and ``Send(...)``, made for every document pushed (``quick_new``).
_new_gossip = quick_new(Gossip)
_new_send = quick_new(Send)


class Forwarding:
    """Keeps invariant (I) by pushing retained documents."""

    __slots__ = ("epochs", "interest", "pushed", "retention", "told", "tree")

    def __init__(self, tree: SpanningTree, interest: InterestTable, retention: Retention,
                 epochs: dict[PeerId, int]) -> None:
        self.tree = tree
        self.interest = interest
        self.retention = retention
        #: Active neighbour -> epoch of the current link to it.
        self.epochs = epochs
        #: Pushes made (every ``Gossip`` sent).
        self.pushed = 0
        #: Neighbours whose last advert from us said "you are my parent".
        self.told: set[PeerId] = set()

    def must_hold(self, doc: Retained, peer: PeerId) -> bool:
        return self._must_hold(doc.own, doc.document, peer)

    def _must_hold(self, own: bool, document: object, peer: PeerId) -> bool:
        # The parent is a tree link: its case is the one of ``_tree_link_must_hold``.
        return self.tree.is_tree_link(peer) and self._tree_link_must_hold(own, document, peer)

    def _tree_link_must_hold(self, own: bool, document: object, peer: PeerId) -> bool:
        """``_must_hold`` of a peer over a tree link."""
        return (own and peer == self.tree.parent and peer in self.told) or self.interest.wants(
            peer, document)

    def push(self, mid: bytes, doc: Retained, peer: PeerId,
             out: list[Send[OverlayMessage]], message: Gossip | None = None) -> Gossip:
        """Push ``doc`` to ``peer``; returns the ``Gossip`` sent, which pushes of the
        same document may pass back as ``message`` (one object: the driver encodes
        it once for all of them)."""
        doc.pushed[plain_key(peer)] = self.epochs[peer]
        self.pushed += 1
        if message is None:
            message = _new_gossip(message_id=mid, hops=min(doc.hops + 1, MAX_HOPS),
                                  payload=doc.payload)
        out.append(_new_send(peer=peer, message=message))
        return message

    def forward(self, mid: bytes, doc: Retained, out: list[Send[OverlayMessage]]) -> int:
        """A new document: push it to every neighbour that must hold it and does not.

        Only a tree link can (the parent is one), so only those are asked
        (``_tree_link_must_hold``), in the neighbours' order.
        """
        sent = 0
        message: Gossip | None = None
        holders, pushed = doc.holders, doc.pushed  # ``doc.held_by``, inlined
        own, document = doc.own, doc.document
        epochs, rule = self.epochs, self._tree_link_must_hold
        for peer in self.tree.links():
            epoch = epochs.get(peer)
            if epoch is None or holders.get(peer) == epoch or pushed.get(peer) == epoch:
                continue
            if rule(own, document, peer):
                message = self.push(mid, doc, peer, out, message)
                sent += 1
        return sent

    def narrowed(self, peer: PeerId) -> None:
        """``peer``'s side of (I) narrowed: a document pushed to it that it no longer
        must hold may have been dropped there (it keeps only what its last advert to
        us matched), so it no longer counts as a holder: if it widens again, it is
        pushed again."""
        rule = self._must_hold
        for _mid, own, document, _holders, pushed in self.retention.entries():
            if peer in pushed and not rule(own, document, peer):
                del pushed[peer]

    def owed(self, peer: PeerId) -> list[bytes]:
        """``peer``'s side of (I) widened: the retained documents it now must hold and
        does not, in the order it took them (``taiinet.pubsub.tree.repair`` pushes
        them, paced, newest first)."""
        epoch = self.epochs.get(peer)
        if epoch is None:
            return []
        rule = self._must_hold
        return [mid for mid, own, document, holders, pushed in self.retention.entries()
                if holders.get(peer) != epoch and pushed.get(peer) != epoch
                and rule(own, document, peer)]
