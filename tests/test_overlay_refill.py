"""A short active view whose every candidate is full backs off instead of dialing them
again each keep-alive tick (``taiinet.overlay.refill``); a change of the view ends it."""

from __future__ import annotations

import random

from taiinet.core import Send
from taiinet.overlay.actions import KeepaliveTimer
from taiinet.overlay.config import HyParViewConfig
from taiinet.overlay.hyparview import HyParView
from taiinet.overlay.messages import Neighbor, NeighborReply
from taiinet.overlay.refill import RefillPacing
from taiinet.sim.network import sim_peer_ids

ME, NEIGHBOUR, *FULL = sim_peer_ids(12)
TICK = KeepaliveTimer()


def requests(actions: list[object]) -> list[Send[Neighbor]]:
    return [a for a in actions if isinstance(a, Send) and isinstance(a.message, Neighbor)
            and a.peer != NEIGHBOUR]  # (not the confirmations)


def refuse_all(node: HyParView, actions: list[object], now: float) -> int:
    """Every request is refused at once, as by full peers; how many were sent."""
    sent = 0
    todo = requests(actions)
    while todo:
        request = todo.pop(0)
        sent += 1
        todo += requests(node.handle_message(request.peer, NeighborReply(accepted=False), now))
    return sent


def short_node() -> HyParView:
    node = HyParView(ME, random.Random(4), HyParViewConfig(active_size=2))
    node.start(0.0)
    node.join(NEIGHBOUR, 0.0, known=FULL)
    return node


def test_refused_ticks_back_off_until_the_view_changes() -> None:
    node = short_node()
    asked_at: list[float] = []
    for tick in range(1, 31):  # one minute of keep-alive ticks
        now = 2.0 * tick
        node.heard_from(NEIGHBOUR, now)
        sent = refuse_all(node, node.handle_timer(TICK, now), now)
        asked_at += [now] * sent
    # The first refilling tick spends its 3 refusals; the tick after it pauses the
    # refill for 4, 8, 16, then 32 s, with one request a pause (every tick, 90
    # requests, without the backoff).
    assert sorted(set(asked_at)) == [2.0, 8.0, 18.0, 36.0]
    assert len(asked_at) == 3 + 1 + 1 + 1
    assert node.active == [NEIGHBOUR]
    # The neighbour goes: the view changed, so the refill asks at once and the next tick too.
    now = 62.0
    sent = refuse_all(node, node.handle_link_down(NEIGHBOUR, now), now)
    assert sent >= 1
    again = node.handle_timer(TICK, now + 2.0)
    assert requests(again)  # (an empty view never backs off either)


def test_the_backoff_is_capped_and_ends_with_a_change() -> None:
    pacing = RefillPacing()
    due = []
    now = 0.0
    for _ in range(12):
        for _ in range(3 if pacing.strikes == 0 else 1):
            assert not pacing.spent(3)
            pacing.refused()
        assert pacing.spent(3)
        assert not pacing.tick(now, 2.0, 3, 32.0)
        due.append(pacing.resume_at - now)
        now = pacing.resume_at
        assert pacing.tick(now, 2.0, 3, 32.0)  # nothing refused meanwhile: it refills
    assert due[:5] == [4.0, 8.0, 16.0, 32.0, 32.0] and max(due) == 32.0
    pacing.refused()
    pacing.view_changed()
    assert pacing.tick(now, 2.0, 3, 32.0) and pacing.strikes == 0
