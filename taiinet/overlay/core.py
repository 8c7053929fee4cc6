# taiinet: sans-io core
"""The overlay core: HyParView membership and Plumtree broadcast, composed.

``Overlay`` is the one object a driver (trio, or the simulator) feeds.  It
routes each input to the right protocol, feeds HyParView's ``NeighborUp`` /
``NeighborDown`` into Plumtree, and returns all actions in order (the
neighbour events are returned too, for the layers above).

It also keeps each neighbour's budget (``LinkBudgets``, see
``taiinet.overlay.budget``): the driver asks ``admit_frame`` before it
processes a link frame, and ``handle_message`` charges every ``Graft`` and
``IHave``.  Over budget, the input is dropped (counted in
``budget_stats``); a neighbour that keeps exceeding its budget is taken out
of the views and its link closed (``CloseLink(failed=True)``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from taiinet.overlay.actions import (
    Action,
    CloseLink,
    LazyFlushTimer,
    MissingTimer,
    NeighborDown,
    NeighborUp,
    Timer,
)
from taiinet.overlay.budget import LinkBudgetConfig, LinkBudgets, LinkBudgetStats, Verdict
from taiinet.overlay.config import HyParViewConfig, PlumtreeConfig
from taiinet.overlay.hyparview import HyParView
from taiinet.overlay.messages import (
    Gossip,
    Graft,
    IHave,
    OverlayMessage,
    Prune,
)
from taiinet.overlay.plumtree import ForwardFilter, Plumtree
from taiinet.wire.peer_id import PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlayConfig:
    membership: HyParViewConfig = field(default_factory=HyParViewConfig)
    broadcast: PlumtreeConfig = field(default_factory=PlumtreeConfig)
    #: What each neighbour may send (``taiinet.overlay.budget``).
    budget: LinkBudgetConfig = field(default_factory=LinkBudgetConfig)



class Overlay:
    """One node's overlay: ``membership`` (HyParView) + ``broadcast`` (Plumtree)."""

    __slots__ = ("broadcast_core", "budgets", "membership", "peer_id")

    def __init__(self, peer_id: PeerId, rng: random.Random, config: OverlayConfig | None = None,
                 forward_filter: ForwardFilter | None = None) -> None:
        config = config or OverlayConfig()
        self.peer_id = peer_id
        self.membership = HyParView(peer_id, rng, config.membership)
        self.broadcast_core = Plumtree(peer_id, rng, config.broadcast, forward_filter)
        self.budgets = LinkBudgets(config.budget)

    def start(self, now: float) -> list[Action]:
        """Arm the periodic timers; call once, before or after ``join``."""
        return self.membership.start(now)

    def join(self, contact: PeerId, now: float, known: Iterable[PeerId] = ()) -> list[Action]:
        """Enter the overlay through ``contact``; ``known``: other peers heard of
        outside the overlay (``HyParView.join``)."""
        return self._wire(self.membership.join(contact, now, known), now)

    def broadcast(self, message_id: bytes, payload: bytes, now: float) -> list[Action]:
        """Broadcast ``payload`` under ``message_id``; includes its local ``Deliver``."""
        return self.broadcast_core.broadcast(message_id, payload, now)

    def handle_message(self, peer: PeerId, message: OverlayMessage, now: float) -> list[Action]:
        """Process one message received from ``peer``."""
        self.membership.heard_from(peer, now)
        if isinstance(message, Graft | IHave):
            tree = self.broadcast_core
            answer = tree.payload_size(message.message_id) if isinstance(message, Graft) else 0
            verdict = self.budgets.admit_control(peer, message, answer, now)
            if verdict is not Verdict.ADMIT:
                return [] if verdict is Verdict.DROP else self.disconnect(peer, now)
            return tree.handle_message(peer, message, now)
        if isinstance(message, Gossip | Prune):
            return self.broadcast_core.handle_message(peer, message, now)
        return self._wire(self.membership.handle_message(peer, message, now), now)

    def admit_frame(self, peer: PeerId, size: int, messages: int,
                    now: float) -> list[Action] | None:
        """A link frame of ``size`` bytes with ``messages`` messages came from ``peer``.

        ``None``: within its budget, process it.  A list: drop the frame and
        carry out these actions (empty, or ``peer``'s disconnection when it
        keeps exceeding its budget).
        """
        verdict = self.budgets.admit_frame(peer, size, messages, now)
        if verdict is Verdict.ADMIT:
            return None
        return [] if verdict is Verdict.DROP else self.disconnect(peer, now)

    def disconnect(self, peer: PeerId, now: float) -> list[Action]:
        """Drop a neighbour that broke its budget: out of the views, link closed at once."""
        self.budgets.stats.disconnected += 1
        actions = self.handle_link_down(peer, now)
        actions.append(CloseLink(peer=peer, failed=True))
        return actions

    @property
    def budget_stats(self) -> LinkBudgetStats:
        return self.budgets.stats

    def heard_from(self, peer: PeerId, now: float) -> None:
        """A frame of any layer (a ``Pong`` too) came from ``peer``: its link is alive."""
        self.membership.heard_from(peer, now)

    def handle_link_down(self, peer: PeerId, now: float) -> list[Action]:
        """The link to ``peer`` failed, closed, or could not be opened."""
        return self._wire(self.membership.handle_link_down(peer, now), now)

    def handle_link_address(self, peer: PeerId, address: str, now: float) -> list[Action]:
        """The link to ``peer`` comes from network ``address`` (HyParView's address limits)."""
        return self._wire(self.membership.handle_link_address(peer, address, now), now)

    def handle_link_up(self, peer: PeerId, address: str | None, now: float) -> list[Action]:
        """A link to ``peer`` is open (``LinkObserver``): it is alive; its address
        counts towards HyParView's per-address limits."""
        self.membership.heard_from(peer, now)
        return [] if address is None else self.handle_link_address(peer, address, now)

    def handle_timer(self, timer: Timer, now: float) -> list[Action]:
        """A timer set with ``SetTimer`` is due."""
        if isinstance(timer, MissingTimer | LazyFlushTimer):
            return self.broadcast_core.handle_timer(timer, now)
        return self._wire(self.membership.handle_timer(timer, now), now)

    def reach_out(self, peer: PeerId, now: float) -> list[Action]:
        """Ask passive peer ``peer`` to be a neighbour (``HyParView.reach_out``)."""
        return self._wire(self.membership.reach_out(peer, now), now)

    @property
    def active_view(self) -> list[PeerId]:
        return self.membership.active

    @property
    def passive_view(self) -> list[PeerId]:
        return self.membership.passive

    def _wire(self, actions: list[Action], now: float) -> list[Action]:
        tree = self.broadcast_core
        extra: list[Action] = []
        for action in actions:
            if isinstance(action, NeighborUp):
                extra += tree.neighbor_up(action.peer, now)
            elif isinstance(action, NeighborDown):
                extra += tree.neighbor_down(action.peer)
        if extra:
            actions += extra
        return actions
