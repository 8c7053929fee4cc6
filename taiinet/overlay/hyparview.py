# taiinet: sans-io core
"""HyParView membership (Leitao, Pereira, Rodrigues, DSN 2007) as a pure state machine.

Theory of operation
-------------------
Each node keeps a small *active view* (its overlay neighbours, one open link
each, kept symmetric) and a larger *passive view* (known peers kept as
backups).  A new node sends ``Join`` to a contact, which takes it as a
neighbour and starts one ``ForwardJoin`` random walk per other neighbour;
where a walk ends (TTL 0, or a node with a single neighbour) the node takes
the newcomer as neighbour and tells it with a high-priority ``Neighbor``; the
walk drops the newcomer into passive views where its TTL equals PRWL.  A full
active view makes room by dropping a neighbour (``Disconnect``; the dropped
peer goes to the passive view): a random one of those not protected, which
by default is the youngest once the others have been neighbours for
``protect_after`` seconds.  When a neighbour fails (the driver
reports ``handle_link_down``) the node asks random passive peers, one per
free slot, to become neighbours (``Neighbor``, high priority if it has no
neighbour left, which cannot be refused).  Every ``shuffle_interval`` a node
sends a ``Shuffle`` walk with a sample of its views; the node where the walk
ends merges the sample and, if linked to the origin, answers with as many
of its passive peers (``ShuffleReply``), which the origin merges.

Every ``keepalive_interval`` a node probes (``ProbeLink``) the neighbours it
has not heard from for that long (any frame counts, ``heard_from``); one
still silent ``probe_timeout`` after the first unanswered probe, not counting
the lateness of late ticks, is failed as if its link had gone down
(``CloseLink(failed=True)``); each tick also asks one neighbour to confirm
that it still holds us (``taiinet.overlay.liveness``; docs/overlay.md).

Inputs and outputs are those of the core contract (docs/cores.md), plus
``join``, ``reach_out`` and ``handle_link_address``.

Departures from the paper
-------------------------
* The joiner takes its contact as a neighbour when it sends ``Join``, and a
  walk's end tells the newcomer with a high-priority ``Neighbor`` (answered
  with a ``NeighborReply``), so active views are symmetric without relying on
  the transport's connection events.
* A ``NeighborReply`` adds a neighbour only if a request to that peer is
  pending (views stay symmetric when a request crosses a ``Disconnect``);
  without one it only makes the views agree (confirmations).
* A short view also refills after ``Disconnect`` and at keep-alive ticks
  (paced: ``taiinet.overlay.refill``), with several requests out at once
  (one per free slot: faster repair after massive failures).
* Failure detection does not rely on the transport alone: a neighbour that
  leaves a probe unanswered for ``probe_timeout`` is failed by the core, and
  so is a peer that leaves a ``Neighbor`` request unanswered that long.
* A shuffle's end replies only over a link it has (``exchange_reply_burst``).
* Neighbours are confirmed, one per keep-alive tick, and a ``NeighborReply``
  with no request out is acted on (see above): the paper assumes both ends
  see the same link events.

Defences against strangers (every peer may lie; identities are free; see
docs/overlay.md, "Defences"), none of them in the paper:

* Walks (``ForwardJoin``, ``Shuffle``) are taken only from an active
  neighbour, or one dropped less than ``walk_grace`` ago (its walks were in
  flight); their TTL is capped at ARWL.  A ``ShuffleReply`` is taken only
  as the first answer to our last shuffle, and only as long as an honest
  one; a ``Shuffle`` is read up to ka + kp entries.
* The paper evicts a random neighbour for every newcomer.  Here the
  ``protected_neighbors`` oldest neighbours, once neighbours for
  ``protect_after``, are never displaced by a newcomer (``Join``,
  high-priority ``Neighbor``, a walk's end), as Bitcoin protects its
  long-lived peers; a ``Join`` or walk end that must displace someone takes
  a token from an eviction budget, and a peer whose ``Join`` was taken
  cannot join again for ``join_repeat_interval``.  A refused ``Join`` gets
  ``Disconnect`` and starts no walk.  High-priority ``Neighbor`` stays
  outside the budget (it comes from a node with no neighbour left).
* Passive entries heard from a neighbour (walks, shuffles) are untrusted
  until we had a link with them: they make room first, and one neighbour
  holds at most ``passive_per_source`` of them.
* Per network address (``handle_link_address``; ``taiinet.overlay.addresses``):
  at most ``max_neighbors_per_address`` neighbours come from one address (a
  newcomer past it is refused, a neighbour found past it is dropped), and an
  address displaces at most one neighbour per ``address_eviction_interval``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from taiinet.overlay.actions import (
    Action,
    CloseLink,
    KeepaliveTimer,
    NeighborDown,
    NeighborUp,
    Send,
    SetTimer,
    ShuffleTimer,
)
from taiinet.overlay.addresses import AddressBook
from taiinet.overlay.budget import TokenBucket
from taiinet.overlay.config import HyParViewConfig
from taiinet.overlay.errors import OverlayUsageError
from taiinet.overlay.liveness import SLACK, Neighbour, TickClock, confirm_one, probe_idle
from taiinet.overlay.messages import (
    MAX_SHUFFLE_PEERS,
    Disconnect,
    ForwardJoin,
    Join,
    MembershipMessage,
    Neighbor,
    NeighborReply,
    Shuffle,
    ShuffleReply,
)
from taiinet.overlay.passive import PassiveView
from taiinet.overlay.refill import RefillPacing
from taiinet.wire.peer_id import PeerId

_SHUFFLE_TIMER = ShuffleTimer()
_KEEPALIVE_TIMER = KeepaliveTimer()
_DISCONNECT = Disconnect()
_JOIN = Join()
_ACCEPT = NeighborReply(accepted=True)
_REJECT = NeighborReply(accepted=False)
_CONFIRM = Neighbor(high_priority=False)


class HyParView:
    """Membership state of one node; every input returns the actions to carry out."""

    __slots__ = (
        "_addresses",
        "_awaiting_shuffle_reply",
        "_born",
        "_eviction_tokens",
        "_exchanges",
        "_last_shuffle_sample",
        "_neighbours",
        "_now",
        "_passive",
        "_pending",
        "_recent_joins",
        "_recently_dropped",
        "_refill_pacing",
        "_ticks",
        "_tokens_at",
        "config",
        "exchange_replies_refused",
        "peer_id",
        "rng",
    )

    def __init__(self, peer_id: PeerId, rng: random.Random,
                 config: HyParViewConfig | None = None) -> None:
        self.peer_id = peer_id
        self.rng = rng
        self.config = config or HyParViewConfig()
        #: Active view: each neighbour's record, in the order they were added
        #: (insertion order keeps runs reproducible; set order would not be).
        self._neighbours: dict[PeerId, Neighbour] = {}
        self._passive = PassiveView(peer_id, rng, self.config)
        cfg = self.config
        self._exchanges = TokenBucket(1 / cfg.exchange_reply_interval, cfg.exchange_reply_burst, 0)
        #: Shuffles ended here unanswered (origin not linked; ``exchange_reply_burst``).
        self.exchange_replies_refused = 0
        #: Peers we sent a Neighbor request to -> when (time order).
        self._pending: dict[PeerId, float] = {}
        self._now = 0.0  # time of the input being processed
        self._refill_pacing = RefillPacing()
        self._last_shuffle_sample: tuple[PeerId, ...] = ()
        self._awaiting_shuffle_reply = False  # a shuffle of ours is out, unanswered
        #: Former neighbour -> when it left the active view (time order), for
        #: ``walk_grace``: walks it sent before it knew may still come.
        self._recently_dropped: dict[PeerId, float] = {}
        #: Peer -> when its Join was taken (insertion order is time order).
        self._recent_joins: dict[PeerId, float] = {}
        self._eviction_tokens = float(self.config.eviction_burst)
        self._tokens_at = 0.0
        self._born = 0.0  # when ``start`` was called
        self._ticks = TickClock()  # when the next keep-alive tick is due
        self._addresses = AddressBook(self.config)  # linked peers' addresses

    # --- inputs ----------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Arm the periodic timers; the first ticks are at random offsets."""
        cfg = self.config
        self._born = now
        shuffle = SetTimer(at=now + self.rng.random() * cfg.shuffle_interval, timer=_SHUFFLE_TIMER)
        self._ticks.due = now + self.rng.random() * cfg.keepalive_interval
        return [shuffle, SetTimer(at=self._ticks.due, timer=_KEEPALIVE_TIMER)]

    def heard_from(self, peer: PeerId, now: float) -> None:
        """Note that a frame (of any layer, a ``Pong`` too) came from ``peer``: it is alive.

        Membership messages count by themselves; a driver calls this for the
        rest, or for every frame.
        """
        neighbour = self._neighbours.get(peer)
        if neighbour is not None:
            neighbour.last_heard = now

    @property
    def passive(self) -> list[PeerId]:
        """The passive view (backup peers), oldest first."""
        return self._passive.peers

    @property
    def active(self) -> list[PeerId]:
        """The active view (the neighbours), oldest first."""
        return list(self._neighbours)

    def join(self, contact: PeerId, now: float, known: Iterable[PeerId] = ()) -> list[Action]:
        """Enter the overlay through ``contact`` (a live member); ``known``: the other
        contacts, kept as passive entries (``PassiveView.add_contacts`` says why)."""
        self._now = now
        if contact == self.peer_id:
            raise OverlayUsageError("a node cannot join through itself")
        out: list[Action] = []
        self._add_active(contact, out)
        self._passive.add_contacts(known, self._neighbours)
        out.append(Send(peer=contact, message=_JOIN))
        return out

    def handle_message(self, peer: PeerId, message: MembershipMessage, now: float) -> list[Action]:
        """Process a membership message that came from ``peer``."""
        self._now = now
        out: list[Action] = []
        if peer == self.peer_id:
            return out
        match message:
            case Join():
                self._on_join(peer, out)
            case ForwardJoin():
                self._on_forward_join(peer, message, out)
            case Neighbor():
                self._on_neighbor(peer, message, out)
            case NeighborReply():
                self._on_neighbor_reply(peer, message, out)
            case Disconnect():
                self._on_disconnect(peer, out)
            case Shuffle():
                self._on_shuffle(peer, message, out)
            case ShuffleReply():
                self._on_shuffle_reply(peer, message, out)
        self.heard_from(peer, now)
        return out

    def handle_link_down(self, peer: PeerId, now: float) -> list[Action]:
        """The link to ``peer`` failed or could not be opened.

        A failed neighbour is forgotten (not moved to the passive view) and
        replaced from the passive view; an unreachable candidate is forgotten.
        """
        self._now = now
        out: list[Action] = []
        self._addresses.forget(peer)
        if peer in self._neighbours:
            self._remove_active(peer, out)
            self._refill(out)
        elif peer in self._pending:
            del self._pending[peer]
            self._passive.drop(peer)
            self._refill(out)
        return out

    def handle_link_address(self, peer: PeerId, address: str, now: float) -> list[Action]:
        """The link to ``peer`` comes from network ``address`` (normalised).

        Reported by the driver when a link opens, before its first message.
        A neighbour whose address already holds ``max_neighbors_per_address``
        other neighbours (it came in by a walk or a reply, address unknown)
        is dropped.
        """
        self._now = now
        out: list[Action] = []
        self._addresses.note(peer, address)
        if peer in self._neighbours and self._addresses.over_cap(peer, self._neighbours):
            self._remove_active(peer, out)
            out.append(Send(peer=peer, message=_DISCONNECT))
            out.append(CloseLink(peer=peer))
            self._refill(out)
        return out

    def handle_timer(self, timer: ShuffleTimer | KeepaliveTimer, now: float) -> list[Action]:
        """Periodic ticks: shuffle; or fail silent probed neighbours, probe idle ones, refill."""
        self._now = now
        cfg = self.config
        if type(timer) is ShuffleTimer:
            out: list[Action] = [SetTimer(at=now + cfg.shuffle_interval, timer=_SHUFFLE_TIMER)]
            self._awaiting_shuffle_reply = False  # a reply later than a period is stale
            if self._neighbours:
                self._send_shuffle(out)
            return out
        out = [SetTimer(at=now + cfg.keepalive_interval, timer=_KEEPALIVE_TIMER)]
        expired = now - cfg.probe_deadline + SLACK
        late = self._ticks.tick(now, cfg.keepalive_interval)
        failed = probe_idle(self._neighbours, now, cfg.keepalive_interval, cfg.probe_deadline,
                            out, late)
        for peer in failed:
            # As ``handle_link_down``: forgotten, not kept as a passive peer.
            self._remove_active(peer, out)
            out.append(CloseLink(peer=peer, failed=True))
        # A Neighbor request unanswered for as long is failed the same way
        # (a hung or made-up peer never answers, and no send to it fails).
        for peer in [p for p, sent in self._pending.items() if sent <= expired]:
            del self._pending[peer]
            self._passive.drop(peer)
            out.append(CloseLink(peer=peer, failed=True))
        # Does it still hold us?  (``_on_unasked_reply`` acts on the answer.)
        confirm = confirm_one(self._neighbours, now)
        if confirm is not None:
            out.append(Send(peer=confirm, message=_CONFIRM))
        if self._refill_pacing.tick(now, cfg.keepalive_interval, cfg.rejections_per_interval,
                                    cfg.refill_backoff) or not self._neighbours:
            self._refill(out)
        return out

    # --- queries -----------------------------------------------------------

    def reach_out(self, peer: PeerId, now: float) -> list[Action]:
        """Ask passive peer ``peer`` to be a neighbour, with high priority.

        For the layer above when it finds this node's component cut off from
        ``peer`` (a group whose views are full of each other): the request
        cannot be refused, and taking it makes room by dropping a random
        neighbour.  Ignored unless ``peer`` is in the passive view.
        """
        self._now = now
        out: list[Action] = []
        if peer in self._passive.peers and peer not in self._pending:
            self._pending[peer] = now
            out.append(Send(peer=peer, message=Neighbor(high_priority=True)))
        return out

    def is_neighbor(self, peer: PeerId) -> bool:
        return peer in self._neighbours

    # --- message handlers ---------------------------------------------------

    def _on_join(self, peer: PeerId, out: list[Action]) -> None:
        cfg = self.config
        joins = self._recent_joins
        now = self._now
        # Forget joins older than the repeat interval (the dict is in time order).
        while joins:
            first = next(iter(joins))
            if joins[first] > now - cfg.join_repeat_interval:
                break
            del joins[first]
        if peer in joins and peer in self._neighbours:
            return  # a neighbour repeating its Join: no more walks for it
        if peer in joins or not self._admit(peer, out):
            # A repeated join, or no room without displacing a protected
            # neighbour or going over the eviction budget: not taken, and
            # nothing is forwarded on its behalf.
            out.append(Send(peer=peer, message=_DISCONNECT))
            out.append(CloseLink(peer=peer))
            return
        if cfg.join_memory:
            joins[peer] = now
            if len(joins) > cfg.join_memory:
                del joins[next(iter(joins))]
        walk = ForwardJoin(peer=peer, ttl=cfg.arwl)
        for neighbour in self._neighbours:
            if neighbour != peer:
                out.append(Send(peer=neighbour, message=walk))

    def _on_forward_join(self, peer: PeerId, message: ForwardJoin, out: list[Action]) -> None:
        new = message.peer
        if new == self.peer_id or not self._may_walk(peer):
            return  # walks only travel between neighbours
        ttl = min(message.ttl, self.config.arwl)
        if ttl <= 0 or len(self._neighbours) <= 1:
            self._accept_newcomer(new, peer, out)
            return
        if ttl == self.config.prwl:
            self._passive.add_heard(new, peer, [], self._neighbours)
        candidates = [n for n in self._neighbours if n != peer and n != new]
        if candidates:
            nxt = candidates[self.rng.randrange(len(candidates))]
            out.append(Send(peer=nxt, message=ForwardJoin(peer=new, ttl=ttl - 1)))
        else:
            self._accept_newcomer(new, peer, out)

    def _accept_newcomer(self, new: PeerId, source: PeerId, out: list[Action]) -> None:
        if new in self._neighbours:
            return
        if self._admit(new, out):
            out.append(Send(peer=new, message=Neighbor(high_priority=True)))
        else:
            self._passive.add_heard(new, source, [], self._neighbours)

    def _on_neighbor(self, peer: PeerId, message: Neighbor, out: list[Action]) -> None:
        # A low-priority request only takes a free slot; a high-priority one
        # (from a node with no neighbour left) may displace an unprotected
        # neighbour, outside the eviction budget: refusing it could isolate
        # an honest node, and it starts no walk.
        may_take = message.high_priority or len(self._neighbours) < self.config.active_size
        if peer in self._neighbours or (may_take and self._admit(peer, out, budget=False)):
            out.append(Send(peer=peer, message=_ACCEPT))
        else:
            out.append(Send(peer=peer, message=_REJECT))
            if peer not in self._pending:
                # (With a request of ours in flight the link must stay up: the
                # peer may accept it, and a closed link would make it drop us.)
                out.append(CloseLink(peer=peer))

    def _on_neighbor_reply(self, peer: PeerId, message: NeighborReply, out: list[Action]) -> None:
        if peer not in self._pending:
            self._on_unasked_reply(peer, message.accepted, out)
            return
        del self._pending[peer]
        # It answered: it exists and is reachable, so it is trusted from now on.
        self._passive.trust(peer)
        if message.accepted and self._addresses.over_cap(peer, self._neighbours):
            out.append(Send(peer=peer, message=_DISCONNECT))  # its address is full
            out.append(CloseLink(peer=peer))
        elif message.accepted:
            self._add_active(peer, out)
        else:
            self._refill_pacing.refused()
            out.append(CloseLink(peer=peer))
            self._refill(out)

    def _on_unasked_reply(self, peer: PeerId, accepted: bool, out: list[Action]) -> None:
        """A ``NeighborReply`` with no request of ours out: the answer to a
        confirmation (``liveness.confirm_one``), or to a request that timed out.

        Either way it says whether ``peer`` holds us now; the views are made
        to agree.  A neighbour that refused does not hold us: it leaves the
        active view (to the passive view, it is alive).  A non-neighbour that
        accepted holds us, and we do not want it: it is told ``Disconnect``.
        """
        if not accepted and peer in self._neighbours:
            self._remove_active(peer, out)
            out.append(CloseLink(peer=peer))
            self._passive.add_trusted(peer, self._neighbours)
            self._refill(out)
        elif accepted and peer not in self._neighbours:
            out.append(Send(peer=peer, message=_DISCONNECT))
            out.append(CloseLink(peer=peer))

    def _on_disconnect(self, peer: PeerId, out: list[Action]) -> None:
        if peer in self._neighbours:
            self._remove_active(peer, out)
            out.append(CloseLink(peer=peer))
            self._passive.add_trusted(peer, self._neighbours)
            self._refill(out)

    def _on_shuffle(self, peer: PeerId, message: Shuffle, out: list[Action]) -> None:
        origin = message.origin
        if origin == self.peer_id or not self._may_walk(peer):
            return  # walks only travel between neighbours
        cfg = self.config
        ttl = min(message.ttl, cfg.arwl) - 1
        # No more entries than an honest sample holds (ka + kp).
        sample = message.peers[:cfg.shuffle_active + cfg.shuffle_passive]
        if ttl > 0 and len(self._neighbours) > 1:
            candidates = [n for n in self._neighbours if n != peer and n != origin]
            if candidates:
                nxt = candidates[self.rng.randrange(len(candidates))]
                out.append(Send(peer=nxt, message=Shuffle(origin=origin, ttl=ttl,
                                                          peers=sample)))
                return
        count = min(len(sample) + 1, len(self._passive.peers), MAX_SHUFFLE_PEERS)
        reply = tuple(self.rng.sample(self._passive.peers, count))
        # Over a link we have; one of its own only within ``exchange_reply_burst``.
        linked = origin in self._neighbours or origin in self._pending
        if linked or self._exchanges.take(1.0, self._now):
            out.append(Send(peer=origin, message=ShuffleReply(peers=reply)))
            if not linked:
                out.append(CloseLink(peer=origin))
        else:  # and a burst of shuffles naming many origins cannot make us dial them all
            self.exchange_replies_refused += 1
            reply = ()
        self._passive.integrate((origin, *sample), reply, peer, self._neighbours)

    def _on_shuffle_reply(self, peer: PeerId, message: ShuffleReply, out: list[Action]) -> None:
        if not self._awaiting_shuffle_reply:
            return  # only the one answer to a shuffle of ours is taken
        self._awaiting_shuffle_reply = False
        sample = self._last_shuffle_sample
        self._passive.integrate(message.peers[:len(sample) + 1], sample, peer,
                                self._neighbours)
        self._last_shuffle_sample = ()

    # --- view management ------------------------------------------------------

    def _admit(self, peer: PeerId, out: list[Action], budget: bool = True) -> bool:
        """Take ``peer``, a newcomer that asked (or was walked) here, into the active view.

        A full view makes room by displacing one of its unprotected (younger)
        neighbours, within the eviction budget if ``budget``; ``False`` if it
        cannot.
        """
        if peer in self._neighbours:
            return True
        addresses = self._addresses
        if addresses.over_cap(peer, self._neighbours):
            return False
        cfg = self.config
        if len(self._neighbours) >= cfg.active_size:
            if not addresses.may_evict(peer, self._now):
                return False
            tokens = min(float(cfg.eviction_burst),
                         self._eviction_tokens
                         + (self._now - self._tokens_at) / cfg.eviction_interval)
            self._tokens_at = self._now
            # The budget starts with protection, ``protect_after`` into the
            # node's life: a young overlay forms as the paper's.
            budget = budget and self._now - self._born >= cfg.protect_after
            if (budget and tokens < 1.0) or self._protected() >= len(self._neighbours):
                self._eviction_tokens = tokens
                return False
            if budget:
                tokens -= 1.0
            self._eviction_tokens = tokens
            addresses.evicted(peer, self._now)
        self._add_active(peer, out)
        return True

    def _add_active(self, peer: PeerId, out: list[Action]) -> None:
        if peer == self.peer_id or peer in self._neighbours:
            return
        self._passive.drop(peer)
        self._pending.pop(peer, None)
        if len(self._neighbours) >= self.config.active_size:
            protected = min(self._protected(), len(self._neighbours) - 1)
            victim = list(self._neighbours)[
                protected + self.rng.randrange(len(self._neighbours) - protected)]
            self._remove_active(victim, out)
            out.append(Send(peer=victim, message=_DISCONNECT))
            out.append(CloseLink(peer=victim))
            self._passive.add_trusted(victim, self._neighbours)
        self._neighbours[peer] = Neighbour(since=self._now, last_heard=self._now,
                                           confirmed_at=self._now)
        self._refill_pacing.view_changed()
        out.append(NeighborUp(peer=peer))

    def _protected(self) -> int:
        """How many neighbours, the oldest ones, a newcomer cannot displace.

        The view is in age order; a neighbour is protected once it has been one
        for ``protect_after`` seconds, and at most ``protected_count`` are.
        """
        cfg = self.config
        settled = self._now - cfg.protect_after
        count = 0
        for neighbour in self._neighbours.values():
            if count >= cfg.protected_count or neighbour.since > settled:
                break
            count += 1
        return count

    def _may_walk(self, peer: PeerId) -> bool:
        """Whether a walk (ForwardJoin, Shuffle) from ``peer`` is taken: from a
        neighbour, or one that left the view less than ``walk_grace`` ago."""
        if peer in self._neighbours:
            return True
        dropped = self._recently_dropped.get(peer)
        return dropped is not None and self._now - dropped < self.config.walk_grace

    def _remove_active(self, peer: PeerId, out: list[Action]) -> None:
        dropped = self._recently_dropped
        dropped.pop(peer, None)
        dropped[peer] = self._now
        horizon = self._now - self.config.walk_grace
        while dropped:
            oldest = next(iter(dropped))
            if len(dropped) <= 2 * self.config.active_size and dropped[oldest] > horizon:
                break
            del dropped[oldest]
        del self._neighbours[peer]
        self._refill_pacing.view_changed()
        out.append(NeighborDown(peer=peer))

    def _refill(self, out: list[Action]) -> None:
        """Ask passive peers to fill the free active slots (one request per slot)."""
        free = self.config.active_size - len(self._neighbours) - len(self._pending)
        if free <= 0 or self._refill_pacing.spent(self.config.rejections_per_interval):
            return
        # (Asking trusted entries first would keep asking the same few full
        # former neighbours: the request itself is the probe of an entry.)
        candidates = [p for p in self._passive.peers if p not in self._pending]
        while free > 0 and candidates:
            peer = candidates.pop(self.rng.randrange(len(candidates)))
            high = not self._neighbours and not self._pending
            self._pending[peer] = self._now
            out.append(Send(peer=peer, message=Neighbor(high_priority=high)))
            free -= 1

    def _send_shuffle(self, out: list[Action]) -> None:
        cfg = self.config
        active = list(self._neighbours)
        target = active[self.rng.randrange(len(active))]
        others = [n for n in active if n != target]
        sample = self.rng.sample(others, min(cfg.shuffle_active, len(others)))
        passive = self._passive.peers
        sample += self.rng.sample(passive, min(cfg.shuffle_passive, len(passive)))
        self._last_shuffle_sample = tuple(sample)
        self._awaiting_shuffle_reply = True
        out.append(Send(peer=target, message=Shuffle(origin=self.peer_id, ttl=cfg.arwl,
                                                     peers=self._last_shuffle_sample)))
