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
from dataclasses import dataclass, field

from taiinet.overlay.actions import (
    Action,
    CloseLink,
    KeepaliveTimer,
    MissingTimer,
    NeighborDown,
    NeighborUp,
    ShuffleTimer,
    Timer,
)
from taiinet.overlay.budget import LinkBudgetConfig, LinkBudgets, LinkBudgetStats, Verdict
from taiinet.overlay.config import HyParViewConfig, PlumtreeConfig
from taiinet.overlay.hyparview import HyParView
from taiinet.overlay.messages import (
    Disconnect,
    ForwardJoin,
    Gossip,
    Graft,
    IHave,
    Join,
    Neighbor,
    NeighborReply,
    OverlayMessage,
    Prune,
    Shuffle,
    ShuffleReply,
)
from taiinet.overlay.plumtree import ForwardFilter, Plumtree
from taiinet.wire.peer_id import PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlayConfig:
    membership: HyParViewConfig = field(default_factory=HyParViewConfig)
    broadcast: PlumtreeConfig = field(default_factory=PlumtreeConfig)
    #: What each neighbour may send (``taiinet.overlay.budget``).
    budget: LinkBudgetConfig = field(default_factory=LinkBudgetConfig)


_MEMBERSHIP = frozenset({Join, ForwardJoin, Neighbor, NeighborReply, Disconnect, Shuffle,
                         ShuffleReply})
_BROADCAST = frozenset({Gossip, IHave, Graft, Prune})


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

    def join(self, contact: PeerId, now: float) -> list[Action]:
        """Enter the overlay through ``contact``."""
        return self._wire(self.membership.join(contact, now), now)

    def broadcast(self, message_id: bytes, payload: bytes, now: float) -> list[Action]:
        """Broadcast ``payload`` under ``message_id``; includes its local ``Deliver``."""
        return self.broadcast_core.broadcast(message_id, payload, now)

    def handle_message(self, peer: PeerId, message: OverlayMessage, now: float) -> list[Action]:
        """Process one message received from ``peer``."""
        heard = self.membership._last_heard  # inlined heard_from: the hottest path
        if peer in heard:
            heard[peer] = now
        kind = type(message)
        if kind is Graft or kind is IHave:
            tree = self.broadcast_core
            answer = tree.payload_size(message.message_id) if kind is Graft else 0  # type: ignore[union-attr]
            verdict = self.budgets.admit_control(peer, message, answer, now)  # type: ignore[arg-type]
            if verdict is not Verdict.ADMIT:
                return [] if verdict is Verdict.DROP else self.disconnect(peer, now)
            return tree.handle_message(peer, message, now)  # type: ignore[arg-type]
        if kind in _BROADCAST:
            return self.broadcast_core.handle_message(peer, message, now)  # type: ignore[arg-type]
        return self._wire(self.membership.handle_message(peer, message, now), now)  # type: ignore[arg-type]

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

    def handle_timer(self, timer: Timer, now: float) -> list[Action]:
        """A timer set with ``SetTimer`` is due."""
        if type(timer) is MissingTimer:
            return self.broadcast_core.handle_timer(timer, now)
        assert type(timer) is ShuffleTimer or type(timer) is KeepaliveTimer
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
            kind = type(action)
            if kind is NeighborUp:
                extra += tree.neighbor_up(action.peer, now)  # type: ignore[union-attr]
            elif kind is NeighborDown:
                extra += tree.neighbor_down(action.peer)  # type: ignore[union-attr]
        if extra:
            actions += extra
        return actions
