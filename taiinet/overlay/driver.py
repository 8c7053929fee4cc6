"""The overlay over the link layer: ``Overlay`` (or a core that owns one) in a ``Runner``.

Theory of operation
-------------------
The generic work (queues, batching, pacing, keep-alive, one parse per frame,
timers, dispatch by protocol id) is the link layer's (``taiinet.link``).
This module adds what is the overlay's:

* ``OverlayDriver`` registers the overlay's codec (protocol 10); the
  overlay cores return the contract's actions (``Send``, ``SetTimer``,
  ``CloseLink``, ``ProbeLink``), which the runner carries out.  Plumtree
  paces its routine ``IHave``s itself (its lazy queue); a ``Send(lazy=True)``
  of any core may still wait in the link layer to share a write
  (``lazy_delay`` 50 ms, ``lazy_interval`` 0.25 s, ``lazy_batch`` 128).
* ``NeighborUp``/``NeighborDown`` events, and links coming up or going,
  set ``membership_changed``: the node follows its neighbours by events.
* ``Deliver`` events go on the bounded ``deliveries`` channel; if the
  application lags ``delivery_buffer`` messages behind, further deliveries
  are dropped and counted in ``dropped_deliveries`` (the overlay never blocks
  on a reader).
* No protocol policy: what the overlay sends, and to whom, is its cores'
  (the cap on shuffle replies to strangers is HyParView's
  ``exchange_reply_burst``), so the simulator measures what ships.

Every link frame is first charged to its sender's budget (the core's
``admit_frame``; see ``taiinet.overlay.budget``): a frame over budget is
dropped unread (counted in ``frames_refused``), and the core closes the link
of a peer that keeps exceeding it.  A neighbour that sends nothing, not even
a ``Pong``, for ``probe_timeout`` after a probe is dropped by the core.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from typing import Any, Protocol

import trio

from taiinet.link.config import (
    DEFAULT_LAZY_BATCH,
    DEFAULT_LAZY_DELAY,
    DEFAULT_LAZY_INTERVAL,
    DEFAULT_SEND_QUEUE,
    LinkConfig,
)
from taiinet.link.manager import Dial, Link
from taiinet.link.runner import Runner
from taiinet.overlay.actions import Deliver, NeighborDown, NeighborUp
from taiinet.overlay.codec import CODEC
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.errors import OverlayUsageError
from taiinet.overlay.plumtree import ForwardFilter
from taiinet.wire.peer_id import PeerId

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_DELIVERY_BUFFER", "DEFAULT_SEND_QUEUE", "Dial", "DriverCore",
           "OverlayDriver"]

#: Deliveries buffered for the application.
DEFAULT_DELIVERY_BUFFER = 1024


class DriverCore(Protocol):
    """``Overlay``, or a core that owns one (the pubsub router): the contract's
    inputs (``taiinet.core``, with ``LinkObserver`` and ``FrameAdmission``),
    plus ``join`` and the active view the driver reports."""

    @property
    def active_view(self) -> list[PeerId]: ...

    def start(self, now: float) -> list[Any]: ...

    def join(self, contact: PeerId, now: float, known: Iterable[PeerId] = ()) -> list[Any]: ...

    def handle_message(self, peer: PeerId, message: Any, now: float) -> list[Any]: ...

    def admit_frame(self, peer: PeerId, size: int, messages: int,
                    now: float) -> list[Any] | None: ...

    def heard_from(self, peer: PeerId, now: float) -> None: ...

    def handle_link_down(self, peer: PeerId, now: float) -> list[Any]: ...

    def handle_link_up(self, peer: PeerId, address: str | None, now: float) -> list[Any]: ...

    def handle_timer(self, timer: Any, now: float) -> list[Any]: ...


class OverlayDriver(Runner):
    """Runs one node's overlay; start ``run`` in a nursery (``await nursery.start``)."""

    def __init__(self, peer_id: PeerId, dial: Dial, *, rng: random.Random | None = None,
                 config: OverlayConfig | None = None,
                 forward_filter: ForwardFilter | None = None,
                 send_queue: int = DEFAULT_SEND_QUEUE,
                 delivery_buffer: int = DEFAULT_DELIVERY_BUFFER,
                 lazy_delay: float = DEFAULT_LAZY_DELAY,
                 lazy_interval: float = DEFAULT_LAZY_INTERVAL,
                 lazy_batch: int = DEFAULT_LAZY_BATCH,
                 core: DriverCore | None = None) -> None:
        """``core``: a layer that owns the overlay (the node's pubsub router);
        by default the driver runs an ``Overlay`` of its own, made from
        ``rng``, ``config`` and ``forward_filter``."""
        self.peer_id = peer_id
        #: The driver's own ``Overlay``, or ``None`` when a ``core`` was given.
        self.overlay: Overlay | None = None
        if core is None:
            own = Overlay(peer_id, rng or random.Random(), config, forward_filter)
            self.overlay, core = own, own
        self.driver_core: DriverCore = core
        link_config = LinkConfig(send_queue=send_queue, lazy_delay=lazy_delay,
                                 lazy_interval=lazy_interval,
                                 lazy_batch=max(1, min(lazy_batch, send_queue // 2)))
        super().__init__(core, dial, on_event=self._on_overlay_event,
                         link_config=link_config)
        self.register(CODEC)
        self._deliver_send, self.deliveries = trio.open_memory_channel[Deliver](delivery_buffer)
        self.dropped_deliveries = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; every link is closed on the way out."""
        try:
            await super().run(task_status=task_status)
        finally:
            self._deliver_send.close()

    def join(self, contact: PeerId, known: Iterable[PeerId] = ()) -> None:
        """Enter the overlay through ``contact`` (dialed at once); ``known``: other
        peers heard of outside the overlay, kept as passive entries."""
        self._apply(self.driver_core.join(contact, trio.current_time(), known))

    def broadcast(self, message_id: bytes, payload: bytes) -> None:
        """Broadcast to the overlay; the local ``Deliver`` appears on ``deliveries`` too.

        Only on a driver running its own ``Overlay``: a driver given another
        core sends through that core's own API.
        """
        if self.overlay is None:
            raise OverlayUsageError("this driver runs another core: publish through it")
        self._apply(self.overlay.broadcast(message_id, payload, trio.current_time()))

    def _apply(self, actions: list[Any]) -> None:
        self.apply(actions)

    async def flush(self, peer: PeerId) -> bool:
        """Wait until every frame queued so far for ``peer`` was written to its
        connection; False if the link goes away first (or there is none)."""
        return await self.links.flush(peer)

    @property
    def _links(self) -> dict[PeerId, Link]:
        return self.links.links

    @property
    def frames_sent(self) -> int:
        """Items (overlay messages, pings, other protocols') written to links; a
        frame counts each of its items, so with the links' frame count it gives
        the batching ratio."""
        return self.links.items_sent

    @property
    def neighbors(self) -> list[PeerId]:
        """The core's active view, links being dialed included."""
        return list(self.driver_core.active_view)

    @property
    def membership_changed(self) -> trio.Event:
        """Set at the next change of the neighbours or of their links (take it
        before reading ``linked_neighbors``, then wait on it: no polling)."""
        return self.links.changed

    @property
    def linked_neighbors(self) -> list[PeerId]:
        """Active-view peers with an open, authenticated connection (Noise done).

        A peer the core took as neighbour but whose dial is still in progress (or
        will fail) is not one yet: this is what callers waiting for neighbours count.
        """
        return [peer for peer in self.driver_core.active_view if self.links.is_linked(peer)]

    def _on_overlay_event(self, event: Any) -> None:
        kind = type(event)
        if kind is Deliver:
            try:
                self._deliver_send.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self.dropped_deliveries += 1
        elif kind is NeighborUp or kind is NeighborDown:
            self.links.notify_changed()
