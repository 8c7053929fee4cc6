# taiinet: sans-io core
"""Content-based routing on a stable spanning tree (docs/pubsub.md), pure.

Theory of operation
-------------------
``TreeRouter`` composes five parts, each in its own module:

* ``routes.SpanningTree``: a distance-vector spanning tree of the HyParView
  active views, rooted at the oldest node; it changes only when an active
  view changes;
* ``interest.InterestTable``: neighbours' adverts, and split-horizon
  summaries of interest over tree links;
* ``forwarding.Forwarding``: invariant (I), a retained document is held by
  every tree neighbour whose interest matches it (and by the parent, for
  the node's own publications); a new document is pushed to whoever must
  hold it;
* ``repair.Repair``: after every input, a neighbour whose side of (I)
  widened is owed the retained documents it now must hold, and pushed them
  at a bounded pace (``RestoreTimer`` ticks push the rest);
* ``healing.Healing``: a component cut off from the overlay reaches out.

Every input ends in ``_settle``: routes recomputed, (I) restored, adverts
scheduled.  Documents are checked before anything else (budget, size,
SHA-256 id, envelope); a document seen before changes only its holders.  The
overlay's Plumtree is not used: documents travel as ``Gossip`` that this
router sends and receives itself; ``IHave``, ``Graft`` and ``Prune`` are
ignored.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Hashable, Iterable
from typing import Any

from taiinet.core.actions import CloseLink, NeighborDown, NeighborUp, Send, SetTimer, Started
from taiinet.core.frozen import quick_new
from taiinet.overlay.actions import Deliver as OverlayDeliver
from taiinet.overlay.actions import Timer
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.messages import BROADCAST_TYPES, Gossip, OverlayMessage
from taiinet.pubsub.actions import (
    Action,
    ComponentTimer,
    Deliver,
    InterestTimer,
    PubsubTimer,
    RestoreTimer,
)
from taiinet.pubsub.budget import INVALID_DOCUMENT_OFFENCES, PeerBudgets, Verdict
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import DocumentCodec, seal_publication
from taiinet.pubsub.errors import PubsubUsageError, RejectedDocument
from taiinet.pubsub.messages import MAX_VERSION, TREE_SIZE_CAP, InterestAdvert, PubsubMessage
from taiinet.pubsub.query import IndexFull, InvalidQuery, Query, SubscriptionIndex
from taiinet.pubsub.stats import RouterStats
from taiinet.pubsub.summary import Keyed
from taiinet.pubsub.tree.forwarding import Forwarding
from taiinet.pubsub.tree.healing import Healing
from taiinet.pubsub.tree.interest import InterestTable
from taiinet.pubsub.tree.repair import Repair, RestorePace
from taiinet.pubsub.tree.retention import Retained, Retention, retained_cost
from taiinet.pubsub.tree.routes import SpanningTree
from taiinet.wire.peer_id import PeerId, plain_key

_INTEREST_TIMER = InterestTimer()
_COMPONENT_TIMER = ComponentTimer()
_RESTORE_TIMER = RestoreTimer()
#: ``Deliver(...)``, made once per document delivered (``quick_new``).
_new_deliver = quick_new(Deliver)


class TreeRouter:
    """One node's router on the stable tree; every input returns the actions to carry out."""

    __slots__ = ("_advertised", "_budgets", "_epoch", "_epochs", "_restore_armed", "_sent",
                 "_timer_armed", "_version", "config", "documents", "forwarding", "healing",
                 "interest", "overlay", "peer_id", "repair", "retention", "rng", "stats",
                 "subscriptions", "tree")

    def __init__(self, peer_id: PeerId, rng: random.Random, documents: DocumentCodec,
                 config: PubsubConfig | None = None,
                 overlay_config: OverlayConfig | None = None) -> None:
        self.peer_id = peer_id
        self.rng = rng
        self.config = config = config or PubsubConfig()
        self.documents = documents
        self.overlay = Overlay(peer_id, rng, overlay_config)
        self.subscriptions = SubscriptionIndex(config.max_subscriptions)
        self.stats = RouterStats()
        self.tree = SpanningTree(peer_id)
        self.interest = InterestTable(config.max_advert_filters, config.max_pending_adverts)
        self.retention = Retention(config.retention, config.retention_size,
                                   config.retention_bytes, config.seen_size)
        #: Active neighbour -> epoch of the current link (a new link, a new epoch).
        self._epochs: dict[PeerId, int] = {}
        self._epoch = 0
        self.forwarding = Forwarding(self.tree, self.interest, self.retention, self._epochs)
        self.repair = Repair(self.forwarding, RestorePace(
            rate=config.restore_rate, burst=config.restore_burst,
            max_repushes=config.max_repushes))
        self.healing = Healing()
        self._budgets = PeerBudgets(config.budget)
        #: Neighbour -> (filter keys, tree_link, root, distance) last advertised on this link.
        self._sent: dict[PeerId, tuple[frozenset[Any], bool, int, str, int, frozenset[str] | None,
                                       bool]] = {}
        #: Neighbour -> the filters last advertised to it on the current link.
        self._advertised: dict[PeerId, Keyed] = {}
        self._version = 0
        self._timer_armed = False
        self._restore_armed = False

    # --- inputs ----------------------------------------------------------------------

    def start(self, now: float, started_unix_ms: int | None = None) -> list[Action]:
        """Arm the overlay's timers; call once.

        ``started_unix_ms``: the wall clock now (default ``now`` in ms, for a
        simulation), this node's claim as a root: the oldest node is the root.
        """
        self.tree.since = max(0, int(now * 1000)) if started_unix_ms is None else started_unix_ms
        self.tree.recompute()
        out = self._from_overlay(self.overlay.start(now), now)
        out.append(self._component_timer(now))
        return out

    def _component_timer(self, now: float) -> SetTimer[ComponentTimer]:
        delay = self.config.component_check_interval * (1.0 + self.rng.random())
        return SetTimer(at=now + delay, timer=_COMPONENT_TIMER)

    def join(self, contact: PeerId, now: float, known: Iterable[PeerId] = ()) -> list[Action]:
        """Enter the overlay through ``contact``; ``known``: the other peers heard of
        outside it (``HyParView.join``: they let a component of nodes that joined
        each other find the rest)."""
        return self._from_overlay(self.overlay.join(contact, now, known), now)

    def subscribe(self, subscription_id: Hashable, query: Query | Any, now: float) -> list[Action]:
        """Add (or replace) a local subscription; ``PubsubUsageError`` if invalid or full."""
        try:
            self.subscriptions.add(subscription_id, query)
        except (InvalidQuery, IndexFull) as exc:
            raise PubsubUsageError(str(exc)) from None
        added = self.subscriptions.get(subscription_id)
        assert added is not None
        self.interest.own[subscription_id] = (added.key, added)
        out: list[Action] = []
        self._settle(now, out)
        return out

    def unsubscribe(self, subscription_id: Hashable, now: float) -> list[Action]:
        out: list[Action] = []
        if subscription_id in self.subscriptions:
            self.subscriptions.remove(subscription_id)
            del self.interest.own[subscription_id]
            self._settle(now, out)
        return out

    def publish(self, document: Any, now: float, *, published_unix_ms: int | None = None,
                nonce: int | None = None) -> Started[bytes, Action]:
        """Seal and route ``document``: ``Started(message_id, actions)``."""
        mid, payload, opened = seal_publication(
            self.documents, document, self.config.max_document_bytes, now, self.rng,
            published_unix_ms=published_unix_ms, nonce=nonce)
        doc = Retained(payload, opened.document, opened.publisher, opened.published_unix_ms,
                       now, 0, True, cost=retained_cost(len(payload), opened.values))
        self.stats.published += 1
        out: list[Action] = []
        self._accept(mid, doc, now, out)
        return Started(mid, out)

    def handle_message(self, peer: PeerId, message: OverlayMessage | PubsubMessage,
                       now: float) -> list[Action]:
        """Process a message (overlay or pubsub) received from ``peer``."""
        kind = type(message)
        if kind is InterestAdvert:
            return self._on_advert(peer, message, now)  # type: ignore[arg-type]
        if kind is Gossip:
            return self._on_gossip(peer, message, now)  # type: ignore[arg-type]
        if kind in BROADCAST_TYPES:
            return []  # IHave, Graft, Prune: not part of the stable tree
        return self._from_overlay(
            self.overlay.handle_message(peer, message, now), now)  # type: ignore[arg-type]

    def admit_frame(self, peer: PeerId, size: int, messages: int,
                    now: float) -> list[Action] | None:
        """The overlay's link frame budget (``Overlay.admit_frame``)."""
        refused = self.overlay.admit_frame(peer, size, messages, now)
        return None if refused is None else self._from_overlay(refused, now)

    def admit_advert(self, peer: PeerId, now: float) -> list[Action] | None:
        """A pubsub frame from ``peer``, before it is decoded: ``None`` to decode and
        handle it; else drop it and carry out these actions (empty, or the peer's
        disconnection when it keeps exceeding its advert budget)."""
        verdict = self._budgets.admit_advert(peer, now)
        if verdict is Verdict.ADMIT:
            return None
        self.stats.adverts_over_budget += 1
        return [] if verdict is Verdict.DROP else self._disconnect(peer, now)

    def handle_link_up(self, peer: PeerId, address: str | None, now: float) -> list[Action]:
        """A link to ``peer`` is open (``LinkObserver``; the overlay's address limits)."""
        return self._from_overlay(self.overlay.handle_link_up(peer, address, now), now)

    def heard_from(self, peer: PeerId, now: float) -> None:
        """A frame came from ``peer`` (``LinkObserver``): the overlay's keep-alive."""
        self.overlay.heard_from(peer, now)

    def handle_link_down(self, peer: PeerId, now: float) -> list[Action]:
        return self._from_overlay(self.overlay.handle_link_down(peer, now), now)

    def handle_timer(self, timer: Timer | PubsubTimer, now: float) -> list[Action]:
        kind = type(timer)
        if kind is InterestTimer:
            self._timer_armed = False
            return self._send_adverts(now)
        if kind is RestoreTimer:
            self._restore_armed = False
            out: list[Action] = []
            self._restore(now, out, drain=True)
            return out
        if kind is ComponentTimer:
            return self._check_component(now)
        return self._from_overlay(self.overlay.handle_timer(timer, now), now)  # type: ignore[arg-type]

    def _check_component(self, now: float) -> list[Action]:
        """Healing: reach out of a component cut off from the overlay (``healing``)."""
        out: list[Action] = []
        overlay = self.overlay
        full = len(overlay.active_view) >= overlay.membership.config.active_size
        outsider = self.healing.check(self.tree, overlay.passive_view, full)
        if outsider is not None:
            out += self._from_overlay(overlay.reach_out(outsider, now), now)
        out.append(self._component_timer(now))
        return out

    # --- queries ----------------------------------------------------------------------

    @property
    def active_view(self) -> list[PeerId]:
        return self.overlay.active_view

    def interest_of(self, peer: PeerId) -> tuple[Query, ...] | None:
        known = self.interest.remote.get(peer)
        return None if known is None else known.advert.filters

    def advert_for(self, peer: PeerId) -> tuple[Query, ...]:
        tree_link = self.tree.is_tree_link(peer)
        keyed = self.interest.filters_for(peer, tree_link, self.tree.links())
        return tuple(q for _k, q in keyed)

    def handed(self, message_id: bytes) -> bool:
        """Whether a neighbour holds this document (for a publisher about to leave)."""
        return bool(self.handed_to(message_id))

    def handed_to(self, message_id: bytes) -> list[PeerId]:
        """The neighbours this document was pushed to or came from, on their current links."""
        doc = self.retention.get(message_id)
        if doc is None:
            return []
        return sorted(peer for peer, epoch in self._epochs.items() if doc.held_by(peer, epoch))

    @property
    def document_bytes(self) -> int:
        return self.retention.bytes

    # --- documents --------------------------------------------------------------------

    def _on_gossip(self, peer: PeerId, message: Gossip, now: float) -> list[Action]:
        verdict = self._budgets.admit(peer, len(message.payload), now)
        if verdict is not Verdict.ADMIT:
            self.stats.over_budget += 1
            return self._disconnect(peer, now) if verdict is Verdict.DISCONNECT else []
        mid = message.message_id
        try:
            self._check(message)
            if self.retention.duplicate(mid):
                self._duplicate(peer, mid)
                return []
            # Seen before but not kept: verified then, and the id is its SHA-256.
            opened = (self.documents.reopen(message.payload) if self.retention.seen(mid)
                      else self.documents.open(message.payload))
        except RejectedDocument as exc:
            self.stats.rejected[exc.reason] += 1
            if self._budgets.offend(peer, INVALID_DOCUMENT_OFFENCES, now) is Verdict.DROP:
                return []
            return self._disconnect(peer, now)
        self.stats.accepted += 1
        publisher, document, published_unix_ms, values = opened
        doc = Retained(message.payload, document, publisher, published_unix_ms, now,
                       message.hops, False, {}, {}, retained_cost(len(message.payload), values))
        epoch = self._epochs.get(peer)
        if epoch is not None:
            doc.holders[plain_key(peer)] = epoch
        out: list[Action] = []
        self._accept(mid, doc, now, out, peer)
        return out

    def _check(self, message: Gossip) -> None:
        payload = message.payload
        if len(payload) > self.config.max_document_bytes:
            raise RejectedDocument("oversized", f"document of {len(payload)} bytes")
        if hashlib.sha256(payload).digest() != message.message_id:
            raise RejectedDocument("id_mismatch", "message id is not SHA-256 of the document")

    def _duplicate(self, peer: PeerId, mid: bytes) -> None:
        self.stats.duplicates += 1
        holders = self.retention.holders(mid)
        epoch = self._epochs.get(peer)
        if holders is not None and epoch is not None:
            holders[plain_key(peer)] = epoch

    def _accept(self, mid: bytes, doc: Retained, now: float, out: list[Action],
                sender: PeerId | None = None) -> None:
        """A document new here (or seen but not kept): deliver locally once, forward
        (I), and retain it if this node has a use for it (``_keeps``)."""
        matched = self.subscriptions.match(doc.document)
        if matched and not self.retention.delivered(mid):
            self.stats.delivered += 1
            ids = tuple(matched) if len(matched) == 1 else tuple(sorted(matched, key=repr))
            out.append(_new_deliver(subscription_ids=ids,
                               document=doc.document, publisher=doc.publisher,
                               message_id=mid, published_unix_ms=doc.published_unix_ms,
                               hops=doc.hops, cost=doc.cost))
        sends: list[Send[OverlayMessage]] = []
        self.forwarding.forward(mid, doc, sends)
        out.extend(sends)
        self.retention.see(mid, now, delivered=bool(matched))
        if matched or self._keeps(doc, sender):
            self.retention.add(mid, doc, now)
        else:
            self.stats.unwanted += 1

    def _keeps(self, doc: Retained, sender: PeerId | None) -> bool:
        """Whether to retain a document no local subscription wants.

        Its own publications; a document some other neighbour must hold; one
        the last advert sent to its sender matches (the sender counts this node a
        holder and will not push it again unless that advert narrows); one a
        child pushed as its own publication (to its parent, whatever the
        interest), or a neighbour that may have made this node its parent
        already (its advert saying so can be behind the push).  Anything else
        is dropped: the sender, once it has our narrower advert, no longer
        counts us a holder (``Forwarding.narrowed``).
        """
        if doc.own:
            return True
        must_hold = self.forwarding.must_hold
        if any(peer != sender and must_hold(doc, peer) for peer in self._epochs):
            return True
        if sender is None:
            return False
        if any(q.matches(doc.document) for _k, q in self._advertised.get(sender, ())):
            return True
        return doc.publisher == sender and self.tree.may_be_child(sender)

    def _disconnect(self, peer: PeerId, now: float) -> list[Action]:
        self.stats.disconnected += 1
        out = self._from_overlay(self.overlay.handle_link_down(peer, now), now)
        out.append(CloseLink(peer=peer, failed=True))
        return out

    # --- interest and the tree --------------------------------------------------------

    def _on_advert(self, peer: PeerId, advert: InterestAdvert, now: float) -> list[Action]:
        self.stats.adverts_received += 1
        neighbour = peer in self._epochs
        if not self.interest.accept(peer, advert, neighbour):
            self.stats.adverts_ignored += 1
            return []
        out: list[Action] = []
        if neighbour:
            self.tree.offer(peer, advert.root_since_ms, advert.root, advert.root_distance,
                            advert.tree_link, advert.tree_members)
            self._settle(now, out)
        return out

    def _from_overlay(self, actions: list[Any], now: float) -> list[Action]:
        out: list[Action] = []
        changed = False
        for action in actions:
            kind = type(action)
            if kind is OverlayDeliver:
                continue  # Plumtree is not used for documents
            if kind is Send and type(action.message) in BROADCAST_TYPES:
                continue
            if kind is NeighborUp:
                changed = True
                self._neighbour_up(action.peer)
            elif kind is NeighborDown:
                changed = True
                self._neighbour_down(action.peer)
            out.append(action)
        if changed:
            self._settle(now, out)
        return out

    def _neighbour_up(self, peer: PeerId) -> None:
        self._epoch += 1
        self._epochs[peer] = self._epoch
        self._sent.pop(peer, None)
        self._advertised.pop(peer, None)
        self.forwarding.told.discard(peer)
        self.tree.add(peer)
        pending = self.interest.neighbour_up(peer)
        if pending is not None:
            advert = pending.advert
            self.tree.offer(peer, advert.root_since_ms, advert.root, advert.root_distance,
                            advert.tree_link, advert.tree_members)

    def _neighbour_down(self, peer: PeerId) -> None:
        self._epochs.pop(peer, None)
        self._sent.pop(peer, None)
        self._advertised.pop(peer, None)
        self.forwarding.told.discard(peer)
        self.tree.remove(peer)
        self.interest.neighbour_down(peer)

    def _settle(self, now: float, out: list[Action]) -> None:
        """After any change: routes, then invariant (I), then adverts (coalesced)."""
        if self.tree.recompute():
            self.stats.route_changes += 1
        self.retention.expire(now)
        self._restore(now, out)
        if not self._timer_armed:
            self._timer_armed = True
            out.append(SetTimer(at=now + self.config.advert_delay, timer=_INTEREST_TIMER))

    def _restore(self, now: float, out: list[Action], drain: bool = False) -> None:
        """(I): owe widened neighbours their documents and push what their pace allows
        (with ``drain``, a ``RestoreTimer`` tick, also to those owed from before);
        tick again while some are owed."""
        sends: list[Send[OverlayMessage]] = []
        if drain:
            self.repair.drain(sends, now)
        self.repair.run(sends, now)
        out.extend(sends)
        if self.repair.pending and not self._restore_armed:
            self._restore_armed = True
            out.append(SetTimer(at=now + self.config.restore_interval, timer=_RESTORE_TIMER))

    def _send_adverts(self, now: float) -> list[Action]:
        out: list[Action] = []
        tree = self.tree
        links = tree.links()
        since, root, distance = tree.advertised()
        for peer in self._epochs:
            is_tree = tree.is_tree_link(peer)
            keyed = self.interest.filters_for(peer, is_tree, links)
            parent = peer == tree.parent
            members = tree.members_for(peer) if is_tree else None
            sent = (frozenset(k for k, _q in keyed), parent, since, root, distance, members,
                    is_tree)
            if self._sent.get(peer) == sent:
                continue
            self._sent[peer] = sent
            self._advertised[peer] = keyed
            if parent:
                self.forwarding.told.add(peer)
            else:
                self.forwarding.told.discard(peer)
            self._version = min(self._version + 1, MAX_VERSION)
            self.stats.adverts_sent += 1
            out.append(Send(peer=peer, message=InterestAdvert(
                version=self._version, filters=tuple(q for _k, q in keyed), tree_link=parent,
                root=root, root_distance=distance, root_since_ms=since,
                tree_size=(TREE_SIZE_CAP if members is None else len(members)) if is_tree else 0,
                tree_members=() if members is None else tuple(sorted(members)))))
        self._restore(now, out)  # after the adverts: a parent just told gets our documents
        return out
