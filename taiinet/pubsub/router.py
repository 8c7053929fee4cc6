# taiinet: sans-io core
"""Content-based routing of signed documents over HyParView + Plumtree, pure.

Theory of operation
-------------------
A ``PubsubRouter`` owns one node's ``Overlay`` and plugs into Plumtree's
``forward_filter``: a document is pushed (``Gossip``) or announced
(``IHave``) to a neighbour only when the neighbour's advertised interest
matches it.  Interest is a list of at most ``max_advert_filters`` queries,
built with the query engine's ``summarize`` (a widening whose union covers
every input; the match-all query ``{}`` is the widest).

What a node advertises to neighbour ``p`` depends on the link:

* ``p`` is an **eager** (tree) link: the summary of its own subscriptions and
  of the interest advertised to it by its *other* eager neighbours (split
  horizon over the Plumtree tree).  On a tree this is exactly the interest of
  the subtree behind the link, so a document follows the tree only towards
  subscribers.
* ``p`` is a **lazy** link: the summary of its own subscriptions only.  Lazy
  links carry ``IHave`` for repair; announcing to ``p`` what only ``p``'s
  subtree wants would make ``p`` graft payloads it does not need whenever the
  tree path to that subtree does not pass through ``p``.

Split horizon over *every* active link (``tree_interest=False``) converges to
"everything is wanted through every link" on the cyclic active-view graph
(and keeps ghost interest after unsubscriptions, counting to infinity); the
measurements in ``docs/pubsub.md`` compare both.

A neighbour whose interest is not known yet (no advert since it came up) is
treated as wanting everything, and a node with such an eager neighbour
advertises match-all to its other eager neighbours: the router falls back to
Plumtree broadcast until interest is known.

Interest arrives hop by hop, and a tree reshaped by prunes can narrow one
link's advert before the new path advertises what it dropped: a document
pushed in that gap stops short of subscribers, and nodes that never get it
send no ``IHave``.  Two rules cover it.  A neighbour keeps getting everything
for ``first_advert_grace`` seconds after its first advert (fewer gaps while
links come up).  And *catch-up on interest widening*: a node remembers the
gaps it saw (interest a neighbour dropped that no other link carried, until
an advert carries it again) and, when a neighbour's advert widens, announces
to it with ``IHave`` the recent documents that the new interest matches, that
it was never sent, and that arrived in a gap or less than ``catch_up_recent``
seconds ago.  The neighbour grafts what it lacks and pushes it on, so the
document follows the wider interest back, hop by hop: a loss becomes a delay.

Adverts are recomputed when the subscriptions, the neighbours, the eager set
or a neighbour's advert change;
changes are coalesced for ``advert_delay`` seconds and an advert is sent
only to the neighbours whose summary changed, with a growing version.

Documents arrive as ``Gossip`` payloads.  Each first takes its place in
its sender's budget (``PeerBudgets``: documents/s and bytes/s token buckets);
one over budget is dropped unverified and is an offence, an invalid one ten,
and a sender out of offence tokens is disconnected (reported down to the
overlay, ``CloseLink(failed=True)``).  Adverts take their place in the same
budgets (``admit_advert``, which the driver asks before decoding one), and
``Graft``s, ``IHave``s and link frames in the overlay's (``LinkBudgets``).
Before Plumtree sees a new document,
the router checks its size, that the message id is SHA-256 of the payload,
and opens it with the ``DocumentCodec`` (signature, payload type, ``Value``
decoding); a failure drops it (it is neither delivered, forwarded nor
remembered, so a valid copy still gets through) and counts it in
``stats.rejected``.  Plumtree's seen-cache delivers each message id once; the
router then hands it to the local subscriptions that match (through the
query engine's ``SubscriptionIndex``), never to others - the publisher's own
subscriptions included.

A verified document that no local subscription, no neighbour but its sender
and no interest gap wants is forwarded nowhere: the router keeps only its
record (``_NOT_KEPT`` in place of the document) and has Plumtree drop its
payload, so a stranger pushing valid documents that match nothing leaves
no memory behind.  Kept documents are bounded in bytes
(``document_cache_bytes``: envelope size + ``DECODED_VALUE_BYTES`` per value).

Departures from the suggested design: none in substance; interest on lazy
links being the node's own subscriptions only is the refinement above.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import Any

from taiinet.overlay.actions import CloseLink, NeighborDown, NeighborUp, Send, Timer
from taiinet.overlay.actions import Deliver as OverlayDeliver
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.messages import MAX_HOPS, Gossip, Graft, IHave, OverlayMessage
from taiinet.pubsub.actions import (
    Action,
    Deliver,
    HealTimer,
    InterestTimer,
    Published,
    PubsubTimer,
    SendInterest,
    SetInterestTimer,
)
from taiinet.pubsub.budget import INVALID_DOCUMENT_OFFENCES, PeerBudgets, Verdict
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import REJECT_REASONS, DocumentCodec
from taiinet.pubsub.errors import PubsubUsageError, RejectedDocument
from taiinet.pubsub.messages import (
    MAX_ROOT_DISTANCE,
    MAX_VERSION,
    InterestAdvert,
    PubsubMessage,
)
from taiinet.pubsub.query import IndexFull, InvalidQuery, Query, SubscriptionIndex
from taiinet.pubsub.query.cover import query_covers, summarize
from taiinet.pubsub.query.limits import DECODED_VALUE_BYTES
from taiinet.pubsub.query.nodes import MATCH_ALL, node_key
from taiinet.pubsub.summary import merge_equalities as _merge_equalities
from taiinet.wire.peer_id import PeerId

_INTEREST_TIMER = InterestTimer()
_ROOT_ADVERT_TIMER = InterestTimer(root_only=True)
_MATCH_ALL_QUERY = Query.from_ast(MATCH_ALL)
_MATCH_ALL_KEY = node_key(MATCH_ALL)
#: A Graft that asks for no message: it only makes the link eager (Plumtree's own).
_TREE_GRAFT = Graft(message_id=b"")
#: Summaries memoised by their inputs (they are recomputed on every change).
_SUMMARY_CACHE_SIZE = 256
#: Recent narrowings of neighbours' interest remembered for the catch-up.
_NARROWINGS_KEPT = 64
#: What a document kept undecoded (wanted by no one) counts toward
#: ``document_cache_bytes``: its id, record and a small holders set.
UNWANTED_DOCUMENT_BYTES = 512
#: Stands for the document of a record kept without it (wanted by no one).
_NOT_KEPT = object()


class _Narrowing:
    """Interest a neighbour dropped that no other link carried: a gap in forwarding.

    Documents arriving between ``at`` and ``until`` (when the dropped
    interest is carried again, or ``catch_up_window`` later) may have
    stopped here; ``dropped`` None means everything.
    """

    __slots__ = ("at", "dropped", "until")

    def __init__(self, at: float, dropped: tuple[Query, ...] | None, until: float) -> None:
        self.at = at
        self.dropped = dropped
        self.until = until


@dataclass(slots=True)
class RouterStats:
    """Counters of one router (they only grow)."""

    published: int = 0
    #: Documents handed to the application (one per message, any number of subscriptions).
    delivered: int = 0
    #: Documents verified and relayed or delivered, received from peers.
    accepted: int = 0
    #: Documents from peers dropped by verification, by reason.
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    adverts_sent: int = 0
    adverts_received: int = 0
    #: Adverts ignored: stale version, or from a non-neighbour with a full pending table.
    adverts_ignored: int = 0
    #: Duplicates dropped before Plumtree because they came too late (see ``_verify``).
    late_duplicates: int = 0
    #: Lazy links grafted because they joined two parts of a split tree.
    heals: int = 0
    #: Verified documents that no local subscription and no other neighbour
    #: wanted: not kept decoded, their payload not kept to answer grafts.
    unwanted: int = 0
    #: Documents dropped because their sender was over its budget.
    over_budget: int = 0
    #: Adverts dropped undecoded because their sender was over its budget.
    adverts_over_budget: int = 0
    #: Neighbours disconnected for offences (over budget, invalid documents).
    disconnected: int = 0
    #: ``IHave`` sent by catch-ups (a neighbour's interest widened).
    caught_up: int = 0


class _Interest:
    """A neighbour's advertised interest, compiled for matching."""

    __slots__ = ("filters", "keyed", "match_all", "root", "root_distance", "tree_link",
                 "version")

    def __init__(self, advert: InterestAdvert) -> None:
        #: (``node_key``, query) pairs: keys are costly, so computed once.
        self.keyed = tuple((q.key, q) for q in advert.filters)
        self.version = advert.version
        self.tree_link = advert.tree_link
        self.root = advert.root
        self.root_distance = advert.root_distance
        self.filters = advert.filters
        self.match_all = any(q.ast == MATCH_ALL for q in advert.filters)

    def matches(self, document: Any) -> bool:
        if self.match_all:
            return True
        return any(q.matches(document) for q in self.filters)


@dataclass(frozen=True, slots=True)
class _Document:
    publisher: str
    document: Any
    #: The publisher's wall clock when it published (its claim, signed), Unix ms.
    published_unix_ms: int
    #: When this node first had it.
    at: float
    #: Hops it had travelled here (0 at the publisher), for the ``IHave`` of a catch-up.
    hops: int
    #: Neighbours known to have it or to have been sent it (pushed or announced):
    #: the peer it came from, those that announced or pushed it to us, and those
    #: we forwarded it to.  A catch-up announces it only to the others.
    holders: set[str] = field(default_factory=set)
    #: What it counts toward ``document_cache_bytes``.
    cost: int = UNWANTED_DOCUMENT_BYTES

    @property
    def kept(self) -> bool:
        """Kept decoded (someone wanted it when it arrived)."""
        return self.document is not _NOT_KEPT


def _one_shared_tree(config: OverlayConfig | None) -> OverlayConfig:
    """Turn off Plumtree's per-origin trees and flood prefix: interest flows
    along the shared tree.

    Adverts follow the default eager links, so a document pushed along an
    origin's own tree, or past the tree by a flood prefix, would meet
    neighbours whose interest was never advertised on that link and stop
    short of its subscribers.
    """
    config = config or OverlayConfig()
    if config.broadcast.origin_trees == 0 and config.broadcast.flood_prefix == 0:
        return config
    return replace(config, broadcast=replace(config.broadcast, origin_trees=0, flood_prefix=0))


class PubsubRouter:
    """One node's content-based router; every input returns the actions to carry out.

    ``documents`` seals local documents and verifies those of peers
    (``SignedDocuments(identity)`` for real nodes).  The driver feeds overlay
    messages *and* ``InterestAdvert`` messages to ``handle_message``, all
    timers (``SetTimer`` and ``SetInterestTimer``) to ``handle_timer``.
    """

    __slots__ = (
        "_budgets",
        "_document_bytes",
        "_documents",
        "_eager_seen",
        "_flag_version",
        "_force",
        "_healing",
        "_narrowed",
        "_now",
        "_own",
        "_pending",
        "_previous",
        "_remote",
        "_root_sent_at",
        "_root_timer_at",
        "_sent",
        "_summaries",
        "_timer_armed",
        "_version",
        "config",
        "documents",
        "overlay",
        "peer_id",
        "rng",
        "stats",
        "subscriptions",
    )

    def __init__(self, peer_id: PeerId, rng: random.Random, documents: DocumentCodec,
                 config: PubsubConfig | None = None,
                 overlay_config: OverlayConfig | None = None) -> None:
        self.peer_id = peer_id
        self.rng = rng
        self.config = config or PubsubConfig()
        self.documents = documents
        self.overlay = Overlay(peer_id, rng, _one_shared_tree(overlay_config),
                               self._forward if self.config.routing else None)
        self.subscriptions = SubscriptionIndex(self.config.max_subscriptions)
        self.stats = RouterStats()
        #: Neighbour -> its latest advert (absent: unknown, treated as match-all).
        self._remote: dict[str, _Interest] = {}
        #: Adverts from peers that are not neighbours yet (bounded, oldest dropped).
        self._pending: OrderedDict[str, _Interest] = OrderedDict()
        #: Neighbour -> (filter keys, tree link, root, distance) last advertised to it.
        self._sent: dict[str, tuple[frozenset[Any], bool, str, int]] = {}
        #: Lazy neighbours with a pending ``HealTimer``.
        self._healing: set[PeerId] = set()
        #: Neighbour -> version of the first advert sent with the link's current state.
        self._flag_version: dict[str, int] = {}
        #: Neighbours to send the advert to again even if it did not change.
        self._force: set[str] = set()
        self._documents: OrderedDict[bytes, _Document] = OrderedDict()
        #: Sum of the ``cost`` of ``_documents``.
        self._document_bytes = 0
        self._budgets = PeerBudgets(self.config.budget)
        #: Recent gaps: interest a neighbour dropped (advert dropping filters,
        #: first advert, neighbour down) that no other link carried.
        self._narrowed: deque[_Narrowing] = deque(maxlen=_NARROWINGS_KEPT)
        self._summaries: OrderedDict[frozenset[Any], tuple[tuple[Any, Query], ...]] = (
            OrderedDict())
        #: Local subscriptions' (``node_key``, query), by subscription id.
        self._own: dict[Hashable, tuple[Any, Query]] = {}
        self._eager_seen: frozenset[str] = frozenset()
        #: Neighbour -> time until which everything still matches it (its first
        #: advert narrowed "unknown"; see ``_hold_first_advert``).
        self._previous: dict[str, float] = {}
        #: Time of the input being processed (the forward filter has no ``now``).
        self._now = 0.0
        self._timer_armed = False
        #: Neighbour -> when it was last sent an advert (paces root-only ones).
        self._root_sent_at: dict[str, float] = {}
        #: When the pending root-only advert timer fires (``None``: none pending).
        self._root_timer_at: float | None = None
        self._version = 0

    # --- inputs ------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Arm the overlay's periodic timers; call once."""
        return self._from_overlay(self.overlay.start(now), now)

    def join(self, contact: PeerId, now: float) -> list[Action]:
        """Enter the overlay through ``contact``."""
        return self._from_overlay(self.overlay.join(contact, now), now)

    def subscribe(self, subscription_id: Hashable, query: Query | Any, now: float) -> list[Action]:
        """Add (or replace) a local subscription; later matching documents are delivered to it.

        ``query`` is a ``Query`` or its JSON-like form; ``PubsubUsageError`` if
        it is invalid or the subscription table is full.
        """
        try:
            self.subscriptions.add(subscription_id, query)
        except (InvalidQuery, IndexFull) as exc:
            raise PubsubUsageError(str(exc)) from None
        added = self.subscriptions.get(subscription_id)
        assert added is not None
        self._own[subscription_id] = (added.key, added)
        out: list[Action] = []
        self._interest_changed(now, out)
        return out

    def unsubscribe(self, subscription_id: Hashable, now: float) -> list[Action]:
        """Remove a local subscription (unknown ids are ignored)."""
        out: list[Action] = []
        if subscription_id in self.subscriptions:
            self.subscriptions.remove(subscription_id)
            del self._own[subscription_id]
            self._interest_changed(now, out)
        return out

    def publish(self, document: Any, now: float, *, published_unix_ms: int | None = None,
                nonce: int | None = None) -> list[Action]:
        """Seal, sign and broadcast ``document``; local matching subscriptions get it too.

        The first action is ``Published(message_id)``.  ``published_unix_ms``
        is the publisher's wall clock (default: ``now`` in milliseconds, for
        drivers whose clock is the wall clock or a simulation's); ``nonce``
        makes the publication unique, so an equal document published again is
        a new message (default: drawn from the router's seeded ``rng``; a node
        passes one from the system's random source).
        ``PubsubUsageError`` if the document is invalid or too large.
        """
        self._now = now
        if published_unix_ms is None:
            published_unix_ms = max(0, int(now * 1000))
        if nonce is None:
            nonce = self.rng.getrandbits(64)
        payload = self.documents.seal(document, self.config.max_document_bytes,
                                      published_unix_ms=published_unix_ms, nonce=nonce)
        mid = hashlib.sha256(payload).digest()
        # Decode our own payload, so local subscribers see what peers will see.
        opened = self.documents.open(payload)
        self._remember(mid, _Document(opened.publisher, opened.document,
                                      opened.published_unix_ms, now, 0,
                                      cost=_decoded_cost(len(payload), opened.values)))
        self.stats.published += 1
        out: list[Action] = [Published(message_id=mid)]
        out += self._from_overlay(self.overlay.broadcast(mid, payload, now), now)
        return out

    def handle_message(self, peer: PeerId, message: OverlayMessage | PubsubMessage,
                       now: float) -> list[Action]:
        """Process a message (overlay or pubsub) received from ``peer``."""
        self._now = now
        if type(message) is InterestAdvert:
            return self._on_advert(peer, message, now)
        if type(message) is IHave:
            self._holds(message.message_id, peer)
        elif type(message) is Gossip:
            verdict = self._budgets.admit(peer, len(message.payload), now)
            if verdict is not Verdict.ADMIT:
                self.stats.over_budget += 1
                return self._disconnect(peer, now) if verdict is Verdict.DISCONNECT else []
            try:
                fresh = self._verify(peer, message, now)
            except RejectedDocument as exc:
                self.stats.rejected[exc.reason] += 1
                if self._budgets.offend(peer, INVALID_DOCUMENT_OFFENCES, now) is Verdict.DROP:
                    return []
                return self._disconnect(peer, now)
            if not fresh:
                self.stats.late_duplicates += 1
                return []
            out = self._from_overlay(
                self.overlay.handle_message(peer, message, now), now)
            doc = self._documents.get(message.message_id)
            if doc is not None and not doc.kept:
                # Forwarded to nobody: no graft will ask for it.
                self.overlay.broadcast_core.drop_payload(message.message_id)
            return out
        return self._from_overlay(
            self.overlay.handle_message(peer, message, now), now)  # type: ignore[arg-type]

    def admit_frame(self, peer: PeerId, size: int, messages: int,
                    now: float) -> list[Action] | None:
        """The overlay's link frame budget (``Overlay.admit_frame``)."""
        refused = self.overlay.admit_frame(peer, size, messages, now)
        return None if refused is None else self._from_overlay(refused, now)

    def admit_advert(self, peer: PeerId, now: float) -> list[Action] | None:
        """A pubsub frame (an advert) from ``peer``, before it is decoded: ``None`` to
        decode and handle it; else drop it and carry out these actions (empty, or
        the peer's disconnection when it keeps exceeding its advert budget)."""
        verdict = self._budgets.admit_advert(peer, now)
        if verdict is Verdict.ADMIT:
            return None
        self.stats.adverts_over_budget += 1
        return [] if verdict is Verdict.DROP else self._disconnect(peer, now)

    def _disconnect(self, peer: PeerId, now: float) -> list[Action]:
        """Drop a neighbour that broke its budget: down for the overlay, link closed."""
        self.stats.disconnected += 1
        out = self._from_overlay(self.overlay.handle_link_down(peer, now), now)
        out.append(CloseLink(peer=peer, failed=True))
        return out

    def handle_link_down(self, peer: PeerId, now: float) -> list[Action]:
        """The link to ``peer`` failed, closed, or could not be opened."""
        self._now = now
        return self._from_overlay(self.overlay.handle_link_down(peer, now), now)

    def handle_link_address(self, peer: PeerId, address: str, now: float) -> list[Action]:
        """The link to ``peer`` comes from network ``address`` (the overlay's address limits)."""
        self._now = now
        return self._from_overlay(self.overlay.handle_link_address(peer, address, now), now)

    def handle_timer(self, timer: Timer | PubsubTimer, now: float) -> list[Action]:
        """A timer set with ``SetTimer`` or ``SetInterestTimer`` is due."""
        self._now = now
        if type(timer) is InterestTimer:
            if timer.root_only:
                self._root_timer_at = None
            else:
                self._timer_armed = False
            return self._send_adverts(now)
        if type(timer) is HealTimer:
            return self._heal(timer.peer, now)
        return self._from_overlay(self.overlay.handle_timer(timer, now), now)  # type: ignore[arg-type]

    # --- queries -------------------------------------------------------------

    @property
    def active_view(self) -> list[PeerId]:
        return self.overlay.active_view

    def interest_of(self, peer: PeerId) -> tuple[Query, ...] | None:
        """The interest ``peer`` advertised to us (``None``: not known yet)."""
        interest = self._remote.get(peer)
        return None if interest is None else interest.filters

    def advert_for(self, peer: PeerId) -> tuple[Query, ...]:
        """The interest this node advertises (or will advertise) to neighbour ``peer``."""
        return tuple(q for _key, q in self._advert_for(peer))

    def _advert_for(self, peer: PeerId) -> tuple[tuple[Any, Query], ...]:
        eager = self.overlay.broadcast_core.eager
        queries: dict[Any, Query] = dict(self._own.values())
        if peer in eager or not self.config.tree_interest:
            others = eager if self.config.tree_interest else self.overlay.active_view
            for other in others:
                if other == peer:
                    continue
                interest = self._remote.get(other)
                if interest is not None:
                    queries.update(interest.keyed)
        return self._summarize(queries)

    # --- forwarding ------------------------------------------------------------

    def _forward(self, message_id: bytes, payload: bytes, peer: PeerId) -> bool:
        """Plumtree's forward filter: does ``peer``'s advertised interest match?

        A yes is remembered (``peer`` then holds the document), so a later
        catch-up does not announce it to ``peer`` again.
        """
        doc = self._documents.get(message_id)
        if doc is None:
            return True  # evicted: let the receiver decide (it verifies anyway)
        if self._wants(doc, peer):
            doc.holders.add(peer)
            return True
        return False

    def _wants(self, doc: _Document, peer: PeerId) -> bool:
        interest = self._remote.get(peer)
        if interest is None or interest.match_all:
            return True
        if not doc.kept:
            return False  # no one's interest matched it when it arrived
        if (not interest.tree_link and self.config.tree_interest
                and peer in self.overlay.broadcast_core.eager):
            return True  # the peer's advert predates the link turning eager
        if interest.matches(doc.document):
            return True
        # The peer's first advert lately narrowed "unknown" (everything): interest
        # from further away is still on its way to it (see ``_hold_first_advert``).
        return self._now < self._previous.get(peer, self._now)

    def _holds(self, message_id: bytes, peer: PeerId) -> None:
        doc = self._documents.get(message_id)
        if doc is not None:
            doc.holders.add(peer)

    def _catch_up(self, peer: PeerId, interest: _Interest, now: float,
                  out: list[Action]) -> None:
        """Announce to ``peer`` the recent documents its wider interest now matches.

        A document pushed while ``peer``'s interest did not match it yet (an
        advert narrowed by a tree reshape, or the first advert before wider
        interest arrived hop by hop) stopped here.  When ``peer`` widens its
        interest, it gets an ``IHave`` (with the hop count, so it grafts only
        what it lacks; a pushed duplicate would make it prune the link) for
        each document of the last ``catch_up_window`` seconds (at most
        ``catch_up_limit``, newest first) that matches the new interest, that
        ``peer`` neither sent, announced, nor was sent, and that may have
        stopped here (``_may_have_stopped``, or younger than
        ``catch_up_recent``).  The next hop pushes it on along the wider
        interest, so a document that stopped short is pulled forward hop by
        hop: the loss becomes a delay.
        """
        config = self.config
        if config.catch_up_limit <= 0:
            return
        oldest = now - config.catch_up_window
        recent = now - config.catch_up_recent
        has_seen = self.overlay.broadcast_core.has_seen
        sent = 0
        for mid, doc in reversed(self._documents.items()):
            if doc.at < oldest or sent >= config.catch_up_limit:
                break
            if (peer in doc.holders or not doc.kept or not interest.matches(doc.document)
                    or not has_seen(mid)
                    or (doc.at < recent and not self._may_have_stopped(doc))):
                continue
            doc.holders.add(peer)
            sent += 1
            out.append(Send(peer=peer, message=IHave(message_id=mid,
                                                      hops=min(doc.hops + 1, MAX_HOPS))))
        self.stats.caught_up += sent

    def _verify(self, peer: PeerId, message: Gossip, now: float) -> bool:
        """Check a pushed document; False for a duplicate too late to say anything about the tree.

        A duplicate arriving ``late_duplicate`` seconds after the first copy
        was repaired into the sender's part of the tree (IHave/Graft), not
        pushed along a redundant tree link: Plumtree would prune the link it
        came on, which may be the only tree link joining that part, so it is
        dropped here instead.
        """
        mid = message.message_id
        payload = message.payload
        if len(payload) > self.config.max_document_bytes:
            raise RejectedDocument("oversized", f"document of {len(payload)} bytes")
        if hashlib.sha256(payload).digest() != mid:
            raise RejectedDocument("id_mismatch", "message id is not SHA-256 of the document")
        known = self._documents.get(mid)
        if known is not None:
            known.holders.add(peer)
            # A duplicate of a verified document: Plumtree prunes the link, if timely.
            return self.config.routing is False or now - known.at <= self.config.late_duplicate
        if self.overlay.broadcast_core.has_seen(mid):
            return True
        opened = self.documents.open(payload)
        self.stats.accepted += 1
        doc = _Document(opened.publisher, opened.document, opened.published_unix_ms, now,
                        message.hops, {peer}, _decoded_cost(len(payload), opened.values))
        if self.config.routing and not self._wanted(doc, peer):
            self.stats.unwanted += 1
            doc = _Document(opened.publisher, _NOT_KEPT, opened.published_unix_ms, now,
                            message.hops, {peer})
        self._remember(mid, doc)
        return True

    def _wanted(self, doc: _Document, sender: str) -> bool:
        """Does a local subscription, a neighbour but ``sender``, or a gap want ``doc``?

        A document wanted by none of them is forwarded nowhere and delivered
        to no one, so only its record is kept: not the decoded document, nor
        (see ``handle_message``) the payload.  Catch-ups skip it.
        """
        if self.subscriptions.match(doc.document):
            return True
        if any(peer != sender and self._wants(doc, peer) for peer in self.overlay.active_view):
            return True
        now = self._now
        return any(gap.until >= now and (gap.dropped is None or any(
            q.matches(doc.document) for q in gap.dropped)) for gap in self._narrowed)

    def _remember(self, mid: bytes, doc: _Document) -> None:
        """Keep ``doc``'s record, evicting the oldest past either cache bound."""
        docs = self._documents
        docs[mid] = doc
        self._document_bytes += doc.cost
        budget = self.config.document_cache_bytes
        while len(docs) > self.config.document_cache_size or self._document_bytes > budget:
            _mid, old = docs.popitem(last=False)
            self._document_bytes -= old.cost

    @property
    def document_bytes(self) -> int:
        """What the remembered documents count toward ``document_cache_bytes``."""
        return self._document_bytes

    def _may_have_stopped(self, doc: _Document) -> bool:
        """Whether ``doc`` may have stopped here for want of interest that has since moved.

        It arrived in a *gap*: after a neighbour dropped interest that matches
        it (an advert dropping filters, a first advert, a neighbour lost) and
        that no other link carried, and before a wider advert carried it again
        (at most ``catch_up_window`` later).  A document that arrived while
        interest was carried went wherever it was wanted: announcing it again
        along a reshaped tree would only make duplicates, whose prunes reshape
        the tree again (measured: a cascade, at 1 % interest, when every
        widening announced every recent document).  The next hops need no
        gap of their own: an advert covers what the sender's other tree
        links want, so the hop that pulled the document pushes it on.
        """
        for gap in self._narrowed:
            if doc.kept and gap.at <= doc.at <= gap.until and (
                    gap.dropped is None or any(q.matches(doc.document) for q in gap.dropped)):
                return True
        return False

    def _narrowing(self, dropped: tuple[Query, ...] | None) -> None:
        """Record interest dropped by a neighbour unless another link still carries it."""
        if dropped is None:
            if self._carried_everything():
                return
        else:
            dropped = tuple(q for q in dropped if not self._carried(q))
            if not dropped:
                return
        self._narrowed.append(_Narrowing(self._now, dropped,
                                         self._now + self.config.catch_up_window))

    def _close_gaps(self) -> None:
        """A wider advert arrived: gaps whose dropped interest is carried again end now."""
        now = self._now
        for gap in self._narrowed:
            if gap.until > now and (self._carried_everything() if gap.dropped is None
                                    else all(self._carried(q) for q in gap.dropped)):
                gap.until = now

    def _carried_everything(self) -> bool:
        remote = self._remote
        return any(peer not in remote or remote[peer].match_all
                   for peer in self.overlay.active_view)

    def _carried(self, query: Query) -> bool:
        """Whether some neighbour's interest covers ``query`` (unknown interest: all)."""
        remote = self._remote
        for peer in self.overlay.active_view:
            interest = remote.get(peer)
            if interest is None or interest.match_all or any(
                    query_covers(q, query) for q in interest.filters):
                return True
        return False

    # --- overlay actions ---------------------------------------------------------

    def _from_overlay(self, actions: list[Any], now: float) -> list[Action]:
        self._now = now
        out: list[Action] = []
        changed = False
        for action in actions:
            kind = type(action)
            if kind is OverlayDeliver:
                self._deliver(action, out)
                continue
            if kind is NeighborUp:
                changed = True
                self._neighbor_up(action.peer)
            elif kind is NeighborDown:
                changed = True
                self._forget(action.peer)
            out.append(action)
        eager = self.overlay.broadcast_core.eager
        if eager.keys() != self._eager_seen:
            self._eager_seen = frozenset(eager)
            changed = True
        if changed:
            self._interest_changed(now, out)
        return out

    def _deliver(self, action: OverlayDeliver, out: list[Action]) -> None:
        doc = self._documents.get(action.message_id)
        if doc is None or not doc.kept:
            return
        matched = self.subscriptions.match(doc.document)
        if matched:
            self.stats.delivered += 1
            out.append(Deliver(subscription_ids=tuple(sorted(matched, key=repr)),
                               document=doc.document, publisher=doc.publisher,
                               message_id=action.message_id,
                               published_unix_ms=doc.published_unix_ms, hops=doc.hops,
                               cost=doc.cost))

    def _forget(self, peer: PeerId) -> None:
        known = self._remote.pop(peer, None)
        self._narrowing(None if known is None else known.filters)
        self._previous.pop(peer, None)
        self._sent.pop(peer, None)
        self._root_sent_at.pop(peer, None)
        self._flag_version.pop(peer, None)
        self._force.discard(peer)
        self._healing.discard(peer)

    def _neighbor_up(self, peer: PeerId) -> None:
        pending = self._pending.pop(peer, None)
        if pending is not None:
            self._remote[peer] = pending
        self._close_gaps()

    # --- interest ------------------------------------------------------------------

    def _on_advert(self, peer: PeerId, advert: InterestAdvert, now: float) -> list[Action]:
        self.stats.adverts_received += 1
        out: list[Action] = []
        if not self.config.routing:
            return out
        if peer not in self.overlay.membership.active:
            known = self._pending.get(peer)
            if known is not None and advert.version <= known.version:
                self.stats.adverts_ignored += 1
            elif self.config.max_pending_adverts:
                self._pending[peer] = _Interest(advert)
                self._pending.move_to_end(peer)
                while len(self._pending) > self.config.max_pending_adverts:
                    self._pending.popitem(last=False)
            else:
                self.stats.adverts_ignored += 1
            return out
        known = self._remote.get(peer)
        if known is not None and advert.version <= known.version:
            self.stats.adverts_ignored += 1
            return out
        interest = _Interest(advert)
        self._remote[peer] = interest
        self._hold_first_advert(peer, known, interest, now)
        new_keys = {k for k, _q in interest.keyed}
        old_keys = {k for k, _q in known.keyed} if known is not None else None
        if old_keys is None or not new_keys <= old_keys:
            self._close_gaps()
            self._catch_up(peer, interest, now, out)
        if not interest.match_all:
            if old_keys is None:
                self._narrowing(None)  # "unknown" (everything) narrowed to this advert
            elif known is not None and not old_keys <= new_keys:
                self._narrowing(tuple(q for k, q in known.keyed if k not in new_keys))
        if self.config.tree_interest:
            self._reconcile(peer, advert)
        self._interest_changed(now, out)
        return out

    def _hold_first_advert(self, peer: PeerId, known: _Interest | None, new: _Interest,
                           now: float) -> None:
        """Keep forwarding everything to ``peer`` for a while after its first advert.

        The first advert narrows "unknown" (everything) and is followed by
        wider ones as interest from further away arrives hop by hop.  For
        ``first_advert_grace`` seconds everything still matches, so documents
        of that period do not stop short and need no catch-up; while held,
        every advert from the peer extends the period (the burst of adverts is
        not over).  An advert with ``{}`` ends it.
        """
        if new.match_all:
            self._previous.pop(peer, None)
            return
        grace = self.config.first_advert_grace
        held = self._previous.get(peer)
        if grace > 0 and ((held is not None and now < held) or known is None
                          or known.match_all):
            self._previous[peer] = now + grace

    def _reconcile(self, peer: PeerId, advert: InterestAdvert) -> None:
        """Make both ends agree that a link is eager when one end says it is.

        Plumtree leaves a link eager at one end and lazy at the other when a
        ``Prune`` crosses a ``Gossip``; the lazy end would then advertise only
        its own subscriptions over a link the other end pushes on.  An advert
        only counts once it acknowledges our advert of the link's current
        state (links are FIFO), so a stale advert never undoes a ``Prune``.
        """
        sent = self._sent.get(peer)
        if sent is None:
            return
        tree = self.overlay.broadcast_core
        ours = peer in tree.eager
        if sent[1] != ours or advert.ack < self._flag_version.get(peer, MAX_VERSION):
            return  # our side changed since our last advert: wait for it to be seen
        if advert.tree_link and not ours:
            del tree.lazy[peer]
            tree.eager[peer] = None
        elif not advert.tree_link and ours:
            # The peer has not seen our latest advert as current: send it again.
            self._force.add(peer)

    def _interest_changed(self, now: float, out: list[Action]) -> None:
        if self.config.routing and not self._timer_armed:
            self._timer_armed = True
            out.append(SetInterestTimer(at=now + self.config.advert_delay,
                                        timer=_INTEREST_TIMER))

    def _send_adverts(self, now: float) -> list[Action]:
        out: list[Action] = []
        if not self.config.routing:
            return out
        eager = self.overlay.broadcast_core.eager
        tree_interest = self.config.tree_interest
        held = math.inf  # earliest time a held root-only advert may go
        for peer in self.overlay.active_view:
            keyed = self._advert_for(peer)
            keys = frozenset(key for key, _q in keyed)
            tree_link = peer in eager or not tree_interest
            root, distance = self._root_for(peer)
            last = self._sent.get(peer)
            if (last is not None and last == (keys, tree_link, root, distance)
                    and peer not in self._force):
                continue
            lazy = (last is not None and last[0] == keys and last[1] == tree_link
                    and peer not in self._force)
            if lazy:
                due = self._root_sent_at.get(peer, -math.inf) + self.config.root_advert_interval
                if now < due:
                    held = min(held, due)
                    continue
            self._root_sent_at[peer] = now
            self._force.discard(peer)
            self._version = min(self._version + 1, MAX_VERSION)
            if last is None or last[1] != tree_link:
                self._flag_version[peer] = self._version
            self._sent[peer] = (keys, tree_link, root, distance)
            self.stats.adverts_sent += 1
            known = self._remote.get(peer)
            out.append(SendInterest(peer=peer, advert=InterestAdvert(
                version=self._version, filters=tuple(q for _k, q in keyed), tree_link=tree_link,
                ack=known.version if known is not None else 0, root=root,
                root_distance=distance), lazy=lazy))
        if held < math.inf and (self._root_timer_at is None or held < self._root_timer_at):
            self._root_timer_at = held
            out.append(SetInterestTimer(at=held, timer=_ROOT_ADVERT_TIMER))
        if tree_interest and self.config.heal_splits:
            self._arm_heal_timers(now, out)
        return out

    # --- healing a split tree -------------------------------------------------------

    def _root_for(self, peer: PeerId) -> tuple[str, int]:
        """Smallest peer id known on our side of the link to ``peer``, and its distance.

        Over an eager link, what is behind ``peer`` is left out (split horizon);
        over a lazy link, the whole part of the eager graph we are in counts.
        """
        if not self.config.heal_splits:
            return ("", 0)
        best: tuple[str, int] = (self.peer_id, 0)
        for other in self.overlay.broadcast_core.eager:
            if other == peer:
                continue
            interest = self._remote.get(other)
            if interest is None or not interest.root or not interest.tree_link:
                continue  # a lazy-link root may have been learned through us
            distance = interest.root_distance + 1
            if distance <= MAX_ROOT_DISTANCE and (interest.root, distance) < best:
                best = (interest.root, distance)
        return best

    def _split_from(self, peer: PeerId) -> bool:
        """Whether the lazy link to ``peer`` joins our part of a split tree to a better one.

        Both ends hold the link lazy and ``peer``'s part has a smaller root: the
        end in the part with the larger root grafts, so only one side acts.
        """
        tree = self.overlay.broadcast_core
        interest = self._remote.get(peer)
        if (peer not in tree.lazy or interest is None or interest.tree_link
                or not interest.root):
            return False
        return interest.root < self._root_for(peer)[0]

    def _arm_heal_timers(self, now: float, out: list[Action]) -> None:
        for peer in self.overlay.broadcast_core.lazy:
            if peer not in self._healing and self._split_from(peer):
                self._healing.add(peer)
                delay = self.config.heal_delay * (1.0 + self.rng.random())
                out.append(SetInterestTimer(at=now + delay, timer=HealTimer(peer=peer)))

    def _heal(self, peer: PeerId, now: float) -> list[Action]:
        """Graft a lazy link that still joins two parts of a split tree."""
        self._healing.discard(peer)
        out: list[Action] = []
        if self._split_from(peer):
            tree = self.overlay.broadcast_core
            del tree.lazy[peer]
            tree.eager[peer] = None
            self.stats.heals += 1
            out.append(Send(peer=peer, message=_TREE_GRAFT))
            self._eager_seen = frozenset(tree.eager)
            self._interest_changed(now, out)
        return out

    def _summarize(self, unique: dict[Any, Query]) -> tuple[tuple[Any, Query], ...]:
        """``summarize`` of distinct queries (by ``node_key``), memoised, with their keys."""
        if not unique:
            return ()
        if _MATCH_ALL_KEY in unique:
            return ((_MATCH_ALL_KEY, _MATCH_ALL_QUERY),)
        key = frozenset(unique)
        cached = self._summaries.get(key)
        if cached is not None:
            self._summaries.move_to_end(key)
            return cached
        merged = _merge_equalities(list(unique.values()))
        result = tuple((q.key, q) for q in summarize(merged, self.config.max_advert_filters))
        self._summaries[key] = result
        if len(self._summaries) > _SUMMARY_CACHE_SIZE:
            self._summaries.popitem(last=False)
        return result


def _decoded_cost(size: int, values: int) -> int:
    """What a decoded document counts toward ``document_cache_bytes``."""
    return UNWANTED_DOCUMENT_BYTES + size + values * DECODED_VALUE_BYTES
