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
active view makes room by dropping a random neighbour (``Disconnect``; the
dropped peer goes to the passive view).  When a neighbour fails (the driver
reports ``handle_link_down``) the node asks random passive peers, one per
free slot, to become neighbours (``Neighbor``, high priority if it has no
neighbour left, which cannot be refused).  Every ``shuffle_interval`` a node
sends a ``Shuffle`` walk with a sample of its views; the node where the walk
ends answers with as many of its passive peers (``ShuffleReply``) and both
merge the samples into their passive views.

Every ``keepalive_interval`` a node probes (``ProbeLink``) the neighbours it
has not heard from for that long; a live peer answers the link-level ``Ping``
and the driver reports any frame from a peer with ``heard_from``.  A
neighbour still silent ``probe_timeout`` after the first unanswered probe is
treated as failed at that tick, exactly as if its link had gone down (its
link closed with ``CloseLink(failed=True)``): a hung peer whose link stays
open is noticed even though no send ever fails.

Inputs: ``start``, ``join``, ``handle_message``, ``heard_from``,
``handle_link_down``, ``handle_timer`` (all take ``now``).  Outputs: ``Send``, ``CloseLink``,
``NeighborUp``, ``NeighborDown``, ``SetTimer``.

Departures from the paper
-------------------------
* The joiner takes its contact as a neighbour when it sends ``Join``, and a
  walk's end tells the newcomer with a high-priority ``Neighbor`` (answered
  with a ``NeighborReply``), so active views are symmetric without relying on
  the transport's connection events.
* A ``NeighborReply`` is only acted on if a request to that peer is pending;
  this keeps views symmetric when a request crosses a ``Disconnect``.
* A node below its active size also refills from the passive view after a
  ``Disconnect`` and on each shuffle tick (the paper refills only on failure),
  with at most ``rejections_per_interval`` refused requests per tick.
* Several ``Neighbor`` requests may be pending at once (one per free slot),
  which repairs faster after massive failures.
* Failure detection does not rely on the transport alone: a neighbour that
  leaves a probe unanswered for ``probe_timeout`` is failed by the core.
"""

from __future__ import annotations

import random

from taiinet.overlay.actions import (
    Action,
    CloseLink,
    KeepaliveTimer,
    NeighborDown,
    NeighborUp,
    ProbeLink,
    Send,
    SetTimer,
    ShuffleTimer,
)
from taiinet.overlay.config import HyParViewConfig
from taiinet.overlay.errors import OverlayUsageError
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
from taiinet.wire.peer_id import PeerId

_SHUFFLE_TIMER = ShuffleTimer()
_KEEPALIVE_TIMER = KeepaliveTimer()
_DISCONNECT = Disconnect()
_JOIN = Join()
_ACCEPT = NeighborReply(accepted=True)
_SLACK = 1e-6
_REJECT = NeighborReply(accepted=False)


class HyParView:
    """Membership state of one node; every input returns the actions to carry out."""

    __slots__ = (
        "_handlers",
        "_last_heard",
        "_last_shuffle_sample",
        "_now",
        "_pending",
        "_probed",
        "_rejections",
        "active",
        "config",
        "passive",
        "peer_id",
        "rng",
    )

    def __init__(self, peer_id: PeerId, rng: random.Random,
                 config: HyParViewConfig | None = None) -> None:
        self.peer_id = peer_id
        self.rng = rng
        self.config = config or HyParViewConfig()
        #: Active view, in the order peers were added (lists keep runs
        #: reproducible: set order would depend on string hashing).
        self.active: list[PeerId] = []
        #: Passive view.
        self.passive: list[PeerId] = []
        self._pending: list[PeerId] = []  # peers we sent a Neighbor request to
        self._last_heard: dict[PeerId, float] = {}  # active peer -> last message time
        #: Active peer -> time of its first probe not answered yet (cleared
        #: lazily, at the tick that sees the peer heard from since).
        self._probed: dict[PeerId, float] = {}
        self._now = 0.0  # time of the input being processed
        self._rejections = 0
        self._last_shuffle_sample: tuple[PeerId, ...] = ()
        self._handlers = {
            Join: self._on_join,
            ForwardJoin: self._on_forward_join,
            Neighbor: self._on_neighbor,
            NeighborReply: self._on_neighbor_reply,
            Disconnect: self._on_disconnect,
            Shuffle: self._on_shuffle,
            ShuffleReply: self._on_shuffle_reply,
        }

    # --- inputs ----------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Arm the periodic timers; the first ticks are at random offsets."""
        cfg = self.config
        return [
            SetTimer(at=now + self.rng.random() * cfg.shuffle_interval, timer=_SHUFFLE_TIMER),
            SetTimer(at=now + self.rng.random() * cfg.keepalive_interval, timer=_KEEPALIVE_TIMER),
        ]

    def heard_from(self, peer: PeerId, now: float) -> None:
        """Note that a frame (of any layer, a ``Pong`` too) came from ``peer``: it is alive.

        Membership messages count by themselves; a driver calls this for the
        rest, or for every frame.
        """
        if peer in self._last_heard:
            self._last_heard[peer] = now

    def join(self, contact: PeerId, now: float) -> list[Action]:
        """Enter the overlay through ``contact`` (a live member)."""
        self._now = now
        if contact == self.peer_id:
            raise OverlayUsageError("a node cannot join through itself")
        out: list[Action] = []
        self._add_active(contact, out)
        out.append(Send(peer=contact, message=_JOIN))
        return out

    def handle_message(self, peer: PeerId, message: MembershipMessage, now: float) -> list[Action]:
        """Process a membership message that came from ``peer``."""
        self._now = now
        out: list[Action] = []
        if peer != self.peer_id:
            self._handlers[type(message)](peer, message, out)  # type: ignore[operator]
            if peer in self._last_heard:
                self._last_heard[peer] = now
        return out

    def handle_link_down(self, peer: PeerId, now: float) -> list[Action]:
        """The link to ``peer`` failed or could not be opened.

        A failed neighbour is forgotten (not moved to the passive view) and
        replaced from the passive view; an unreachable candidate is forgotten.
        """
        self._now = now
        out: list[Action] = []
        if peer in self.active:
            self._remove_active(peer, out)
            self._refill(out)
        elif peer in self._pending:
            self._pending.remove(peer)
            if peer in self.passive:
                self.passive.remove(peer)
            self._refill(out)
        return out

    def handle_timer(self, timer: ShuffleTimer | KeepaliveTimer, now: float) -> list[Action]:
        """Periodic ticks: shuffle; or fail silent probed neighbours, probe idle ones, refill."""
        self._now = now
        cfg = self.config
        if type(timer) is ShuffleTimer:
            out: list[Action] = [SetTimer(at=now + cfg.shuffle_interval, timer=_SHUFFLE_TIMER)]
            if self.active:
                self._send_shuffle(out)
            return out
        out = [SetTimer(at=now + cfg.keepalive_interval, timer=_KEEPALIVE_TIMER)]
        idle_since = now - cfg.keepalive_interval
        # (A microsecond of slack: tick times are sums of floats.)
        expired = now - cfg.probe_deadline + _SLACK
        heard = self._last_heard
        probed = self._probed
        failed: list[PeerId] = []
        for peer in self.active:
            last = heard[peer]
            probe = probed.get(peer)
            if probe is not None:
                # A peer is idle for a whole interval when probed, so anything
                # heard at or after the probe time came after it.
                if last >= probe:
                    del probed[peer]
                elif probe <= expired:
                    failed.append(peer)
                    continue
            if last <= idle_since:
                probed.setdefault(peer, now)
                out.append(ProbeLink(peer=peer))
        for peer in failed:
            # As ``handle_link_down``: forgotten, not kept as a passive peer.
            self._remove_active(peer, out)
            out.append(CloseLink(peer=peer, failed=True))
        self._rejections = 0
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
        if peer in self.passive and peer not in self._pending:
            self._pending.append(peer)
            out.append(Send(peer=peer, message=Neighbor(high_priority=True)))
        return out

    def is_neighbor(self, peer: PeerId) -> bool:
        return peer in self.active

    # --- message handlers ---------------------------------------------------

    def _on_join(self, peer: PeerId, message: Join, out: list[Action]) -> None:
        self._add_active(peer, out)
        walk = ForwardJoin(peer=peer, ttl=self.config.arwl)
        for neighbour in self.active:
            if neighbour != peer:
                out.append(Send(peer=neighbour, message=walk))

    def _on_forward_join(self, peer: PeerId, message: ForwardJoin, out: list[Action]) -> None:
        new = message.peer
        if new == self.peer_id:
            return
        if message.ttl <= 0 or len(self.active) <= 1:
            self._accept_newcomer(new, out)
            return
        if message.ttl == self.config.prwl:
            self._add_passive(new)
        candidates = [n for n in self.active if n != peer and n != new]
        if candidates:
            nxt = candidates[self.rng.randrange(len(candidates))]
            out.append(Send(peer=nxt, message=ForwardJoin(peer=new, ttl=message.ttl - 1)))
        else:
            self._accept_newcomer(new, out)

    def _accept_newcomer(self, new: PeerId, out: list[Action]) -> None:
        if new not in self.active:
            self._add_active(new, out)
            out.append(Send(peer=new, message=Neighbor(high_priority=True)))

    def _on_neighbor(self, peer: PeerId, message: Neighbor, out: list[Action]) -> None:
        if peer in self.active:
            out.append(Send(peer=peer, message=_ACCEPT))
        elif message.high_priority or len(self.active) < self.config.active_size:
            self._add_active(peer, out)
            out.append(Send(peer=peer, message=_ACCEPT))
        else:
            out.append(Send(peer=peer, message=_REJECT))
            if peer not in self._pending:
                # (With a request of ours in flight the link must stay up: the
                # peer may accept it, and a closed link would make it drop us.)
                out.append(CloseLink(peer=peer))

    def _on_neighbor_reply(self, peer: PeerId, message: NeighborReply, out: list[Action]) -> None:
        if peer not in self._pending:
            return
        self._pending.remove(peer)
        if message.accepted:
            self._add_active(peer, out)
        else:
            self._rejections += 1
            out.append(CloseLink(peer=peer))
            self._refill(out)

    def _on_disconnect(self, peer: PeerId, message: Disconnect, out: list[Action]) -> None:
        if peer in self.active:
            self._remove_active(peer, out)
            out.append(CloseLink(peer=peer))
            self._add_passive(peer)
            self._refill(out)

    def _on_shuffle(self, peer: PeerId, message: Shuffle, out: list[Action]) -> None:
        origin = message.origin
        if origin == self.peer_id:
            return
        ttl = message.ttl - 1
        if ttl > 0 and len(self.active) > 1:
            candidates = [n for n in self.active if n != peer and n != origin]
            if candidates:
                nxt = candidates[self.rng.randrange(len(candidates))]
                out.append(Send(peer=nxt, message=Shuffle(origin=origin, ttl=ttl,
                                                          peers=message.peers)))
                return
        count = min(len(message.peers) + 1, len(self.passive), MAX_SHUFFLE_PEERS)
        reply = tuple(self.rng.sample(self.passive, count))
        out.append(Send(peer=origin, message=ShuffleReply(peers=reply)))
        if origin not in self.active and origin not in self._pending:
            out.append(CloseLink(peer=origin))
        self._integrate((origin, *message.peers), reply)

    def _on_shuffle_reply(self, peer: PeerId, message: ShuffleReply, out: list[Action]) -> None:
        self._integrate(message.peers, self._last_shuffle_sample)
        self._last_shuffle_sample = ()

    # --- view management ------------------------------------------------------

    def _add_active(self, peer: PeerId, out: list[Action]) -> None:
        if peer == self.peer_id or peer in self.active:
            return
        if peer in self.passive:
            self.passive.remove(peer)
        if peer in self._pending:
            self._pending.remove(peer)
        if len(self.active) >= self.config.active_size:
            victim = self.active[self.rng.randrange(len(self.active))]
            self._remove_active(victim, out)
            out.append(Send(peer=victim, message=_DISCONNECT))
            out.append(CloseLink(peer=victim))
            self._add_passive(victim)
        self.active.append(peer)
        self._last_heard[peer] = self._now
        out.append(NeighborUp(peer=peer))

    def _remove_active(self, peer: PeerId, out: list[Action]) -> None:
        self.active.remove(peer)
        del self._last_heard[peer]
        self._probed.pop(peer, None)
        out.append(NeighborDown(peer=peer))

    def _add_passive(self, peer: PeerId) -> None:
        if peer == self.peer_id or peer in self.active or peer in self.passive:
            return
        if len(self.passive) >= self.config.passive_size:
            self.passive.pop(self.rng.randrange(len(self.passive)))
        self.passive.append(peer)

    def _integrate(self, peers: tuple[PeerId, ...], evict_first: tuple[PeerId, ...]) -> None:
        """Merge a shuffle sample into the passive view, evicting ``evict_first`` first."""
        evictable = [p for p in evict_first if p in self.passive]
        for peer in peers:
            if peer == self.peer_id or peer in self.active or peer in self.passive:
                continue
            if len(self.passive) >= self.config.passive_size:
                if evictable:
                    self.passive.remove(evictable.pop())
                else:
                    self.passive.pop(self.rng.randrange(len(self.passive)))
            self.passive.append(peer)

    def _refill(self, out: list[Action]) -> None:
        """Ask passive peers to fill the free active slots (one request per slot)."""
        free = self.config.active_size - len(self.active) - len(self._pending)
        if free <= 0 or self._rejections >= self.config.rejections_per_interval:
            return
        candidates = [p for p in self.passive if p not in self._pending]
        while free > 0 and candidates:
            peer = candidates.pop(self.rng.randrange(len(candidates)))
            high = not self.active and not self._pending
            self._pending.append(peer)
            out.append(Send(peer=peer, message=Neighbor(high_priority=high)))
            free -= 1

    def _send_shuffle(self, out: list[Action]) -> None:
        cfg = self.config
        target = self.active[self.rng.randrange(len(self.active))]
        others = [n for n in self.active if n != target]
        sample = self.rng.sample(others, min(cfg.shuffle_active, len(others)))
        sample += self.rng.sample(self.passive, min(cfg.shuffle_passive, len(self.passive)))
        self._last_shuffle_sample = tuple(sample)
        out.append(Send(peer=target, message=Shuffle(origin=self.peer_id, ttl=cfg.arwl,
                                                     peers=self._last_shuffle_sample)))
