# taiinet: sans-io core
"""Plain Plumtree broadcast of documents: the baseline routing is measured against.

``PubsubConfig(routing=False)``.  Every document goes to every node over the
overlay's Plumtree (one shared tree, as in the paper: the overlay's
per-origin trees and flood prefix are turned off, so the baseline is the
textbook protocol); each node hands it to its own matching subscriptions
only.  No interest adverts are sent and those received are ignored.  The
document checks are the stable tree's (budget, size, id = SHA-256, envelope),
made before Plumtree sees a new document, so an invalid one is neither
delivered nor relayed and a valid copy still gets through.  Not for
deployments: it is what ``taiinet sim pubsub`` compares the stable tree with.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import replace
from typing import Any

from taiinet.core.actions import CloseLink, Send, Started
from taiinet.overlay.actions import Deliver as OverlayDeliver
from taiinet.overlay.actions import Timer
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.messages import Gossip, OverlayMessage
from taiinet.pubsub.actions import Action, Deliver, PubsubTimer
from taiinet.pubsub.budget import INVALID_DOCUMENT_OFFENCES, PeerBudgets, Verdict
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import DocumentCodec, OpenedDocument, seal_publication
from taiinet.pubsub.errors import PubsubUsageError, RejectedDocument
from taiinet.pubsub.messages import InterestAdvert, PubsubMessage
from taiinet.pubsub.query import IndexFull, InvalidQuery, Query, SubscriptionIndex
from taiinet.pubsub.stats import RouterStats
from taiinet.pubsub.tree.retention import retained_cost
from taiinet.wire.peer_id import PeerId


def _one_shared_tree(config: OverlayConfig | None) -> OverlayConfig:
    config = config or OverlayConfig()
    return replace(config, broadcast=replace(config.broadcast, origin_trees=0, flood_prefix=0))


class BroadcastRouter:
    """One node on plain Plumtree broadcast; same inputs and actions as ``TreeRouter``."""

    __slots__ = ("_budgets", "_opened", "_pushed", "config", "documents", "overlay", "peer_id",
                 "rng", "stats", "subscriptions")

    def __init__(self, peer_id: PeerId, rng: random.Random, documents: DocumentCodec,
                 config: PubsubConfig | None = None,
                 overlay_config: OverlayConfig | None = None) -> None:
        self.peer_id = peer_id
        self.rng = rng
        self.config = config or PubsubConfig(routing=False)
        self.documents = documents
        self.overlay = Overlay(peer_id, rng, _one_shared_tree(overlay_config))
        self.subscriptions = SubscriptionIndex(self.config.max_subscriptions)
        self.stats = RouterStats()
        self._budgets = PeerBudgets(self.config.budget)
        #: Documents opened in the current input, until Plumtree delivers them.
        self._opened: dict[bytes, tuple[OpenedDocument, int]] = {}
        #: Message id -> neighbours it was pushed to (``seen_size`` ids, oldest dropped).
        self._pushed: OrderedDict[bytes, set[PeerId]] = OrderedDict()

    def start(self, now: float, started_unix_ms: int | None = None) -> list[Action]:
        """Arm the overlay's timers; ``started_unix_ms`` is unused (no root here)."""
        return self._from_overlay(self.overlay.start(now))

    def join(self, contact: PeerId, now: float, known: Iterable[PeerId] = ()) -> list[Action]:
        return self._from_overlay(self.overlay.join(contact, now, known))

    def subscribe(self, subscription_id: Hashable, query: Query | Any, now: float) -> list[Action]:
        try:
            self.subscriptions.add(subscription_id, query)
        except (InvalidQuery, IndexFull) as exc:
            raise PubsubUsageError(str(exc)) from None
        return []

    def unsubscribe(self, subscription_id: Hashable, now: float) -> list[Action]:
        if subscription_id in self.subscriptions:
            self.subscriptions.remove(subscription_id)
        return []

    def publish(self, document: Any, now: float, *, published_unix_ms: int | None = None,
                nonce: int | None = None) -> Started[bytes, Action]:
        """Seal and broadcast ``document``: ``Started(message_id, actions)``."""
        mid, payload, opened = seal_publication(
            self.documents, document, self.config.max_document_bytes, now, self.rng,
            published_unix_ms=published_unix_ms, nonce=nonce)
        self._opened[mid] = (opened, len(payload))
        self.stats.published += 1
        return Started(mid, self._from_overlay(self.overlay.broadcast(mid, payload, now)))

    def handle_message(self, peer: PeerId, message: OverlayMessage | PubsubMessage,
                       now: float) -> list[Action]:
        if isinstance(message, InterestAdvert):
            self.stats.adverts_received += 1
            self.stats.adverts_ignored += 1
            return []
        if isinstance(message, Gossip):
            refused = self._check(peer, message, now)
            if refused is not None:
                return refused
        return self._from_overlay(self.overlay.handle_message(peer, message, now))

    def _check(self, peer: PeerId, message: Gossip, now: float) -> list[Action] | None:
        """Budget and verify a pushed document Plumtree has not seen; ``None``: go on."""
        verdict = self._budgets.admit(peer, len(message.payload), now)
        if verdict is not Verdict.ADMIT:
            self.stats.over_budget += 1
            return self._disconnect(peer, now) if verdict is Verdict.DISCONNECT else []
        mid, payload = message.message_id, message.payload
        try:
            if len(payload) > self.config.max_document_bytes:
                raise RejectedDocument("oversized", f"document of {len(payload)} bytes")
            if hashlib.sha256(payload).digest() != mid:
                raise RejectedDocument("id_mismatch", "message id is not SHA-256 of the document")
            if self.overlay.broadcast_core.has_seen(mid):
                # The same bytes as the copy verified before: Plumtree prunes its link.
                self.stats.duplicates += 1
                return None
            self._opened[mid] = (self.documents.open(payload), len(payload))
        except RejectedDocument as exc:
            self.stats.rejected[exc.reason] += 1
            if self._budgets.offend(peer, INVALID_DOCUMENT_OFFENCES, now) is Verdict.DROP:
                return []
            return self._disconnect(peer, now)
        self.stats.accepted += 1
        return None

    def admit_frame(self, peer: PeerId, size: int, messages: int,
                    now: float) -> list[Action] | None:
        refused = self.overlay.admit_frame(peer, size, messages, now)
        return None if refused is None else self._from_overlay(refused)

    def admit_advert(self, peer: PeerId, now: float) -> list[Action] | None:
        verdict = self._budgets.admit_advert(peer, now)
        if verdict is Verdict.ADMIT:
            return None
        self.stats.adverts_over_budget += 1
        return [] if verdict is Verdict.DROP else self._disconnect(peer, now)

    def handle_link_up(self, peer: PeerId, address: str | None, now: float) -> list[Action]:
        return self._from_overlay(self.overlay.handle_link_up(peer, address, now))

    def heard_from(self, peer: PeerId, now: float) -> None:
        self.overlay.heard_from(peer, now)

    def handle_link_down(self, peer: PeerId, now: float) -> list[Action]:
        return self._from_overlay(self.overlay.handle_link_down(peer, now))

    def handle_timer(self, timer: Timer | PubsubTimer, now: float) -> list[Action]:
        return self._from_overlay(self.overlay.handle_timer(timer, now))  # type: ignore[arg-type]

    @property
    def active_view(self) -> list[PeerId]:
        return self.overlay.active_view

    def handed_to(self, message_id: bytes) -> list[PeerId]:
        """The current neighbours this document was pushed to."""
        active = self.overlay.membership.active
        return sorted(p for p in self._pushed.get(message_id, ()) if p in active)

    def _disconnect(self, peer: PeerId, now: float) -> list[Action]:
        self.stats.disconnected += 1
        out = self._from_overlay(self.overlay.handle_link_down(peer, now))
        out.append(CloseLink(peer=peer, failed=True))
        return out

    def _from_overlay(self, actions: list[Any]) -> list[Action]:
        out: list[Action] = []
        for action in actions:
            kind = type(action)
            if kind is OverlayDeliver:
                self._deliver(action, out)
                continue
            if kind is Send and type(action.message) is Gossip:
                self._record_push(action.message.message_id, action.peer)
            out.append(action)
        self._opened.clear()
        return out

    def _record_push(self, mid: bytes, peer: PeerId) -> None:
        pushed = self._pushed.get(mid)
        if pushed is None:
            pushed = self._pushed[mid] = set()
            while len(self._pushed) > self.config.seen_size:
                self._pushed.popitem(last=False)
        pushed.add(peer)

    def _deliver(self, action: OverlayDeliver, out: list[Action]) -> None:
        opened = self._opened.get(action.message_id)
        if opened is None:
            return
        doc, size = opened
        matched = self.subscriptions.match(doc.document)
        if not matched:
            self.stats.unwanted += 1
            return
        self.stats.delivered += 1
        out.append(Deliver(subscription_ids=tuple(sorted(matched, key=repr)),
                           document=doc.document, publisher=doc.publisher,
                           message_id=action.message_id,
                           published_unix_ms=doc.published_unix_ms, hops=action.hops,
                           cost=retained_cost(size, doc.values)))
