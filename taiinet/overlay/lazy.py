# taiinet: sans-io core
"""Plumtree's lazy queue: the pacing of routine ``IHave``s, per lazy link.

An announcement (``IHave``) never decides delivery latency; it only starts a
repair when the tree failed.  So the ``IHave``s for one peer are *held* and
sent together (the paper's lazy queue): ``lazy_delay`` after the first one
held, but no sooner than ``lazy_interval`` after that link's previous
flush, and at once when ``lazy_batch`` are held.  Under load a lazy link
then carries about 1 / ``lazy_interval`` link writes a second instead of one
per message (the runner writes the ``Send``s of one flush as one batch).

Timers are values (``LazyFlushTimer(peer)``); one that finds nothing due is
stale and ignored.  A ``lazy_delay`` of 0 turns the queue off: each
``IHave`` goes out at once as ``Send(lazy=True)`` (left to the runner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from taiinet.overlay.actions import Action, LazyFlushTimer, Send, SetTimer
from taiinet.overlay.config import PlumtreeConfig
from taiinet.overlay.messages import IHave
from taiinet.wire.peer_id import PeerId


@dataclass(slots=True)
class _LazyLink:
    """What is held for one peer, and when it goes."""

    held: list[IHave] = field(default_factory=list)
    #: When the flush timer set for ``held`` is due (``None``: none set).
    due: float | None = None
    #: When ``held`` last went out.
    flushed_at: float = -math.inf


class LazyQueue:
    """Held ``IHave``s of one node, per neighbour (see the module docstring)."""

    __slots__ = ("_links", "config")

    def __init__(self, config: PlumtreeConfig) -> None:
        self.config = config
        self._links: dict[PeerId, _LazyLink] = {}

    def announce(self, peer: PeerId, ihave: IHave, now: float, out: list[Action]) -> None:
        """Hold ``ihave`` for ``peer`` (or send it, if it fills the batch)."""
        cfg = self.config
        if cfg.lazy_delay <= 0:
            out.append(Send(peer=peer, message=ihave, lazy=True))
            return
        link = self._links.get(peer)
        if link is None:
            link = self._links[peer] = _LazyLink()
        link.held.append(ihave)
        if len(link.held) >= cfg.lazy_batch:
            self._flush(peer, link, now, out)
        elif link.due is None:
            link.due = max(now + cfg.lazy_delay, link.flushed_at + cfg.lazy_interval)
            out.append(SetTimer(at=link.due, timer=LazyFlushTimer(peer=peer)))

    def handle_timer(self, timer: LazyFlushTimer, now: float) -> list[Action]:
        """Send what is held for the timer's peer, unless the timer is stale."""
        out: list[Action] = []
        link = self._links.get(timer.peer)
        if link is not None and link.due is not None and link.due <= now:
            self._flush(timer.peer, link, now, out)
        return out

    def forget(self, peer: PeerId) -> None:
        """``peer`` is no neighbour any more: drop what was held for it."""
        self._links.pop(peer, None)

    def held(self, peer: PeerId) -> int:
        link = self._links.get(peer)
        return len(link.held) if link is not None else 0

    def _flush(self, peer: PeerId, link: _LazyLink, now: float, out: list[Action]) -> None:
        out.extend(Send(peer=peer, message=ihave) for ihave in link.held)
        link.held.clear()
        link.due = None
        link.flushed_at = now
