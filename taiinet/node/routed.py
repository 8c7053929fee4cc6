"""Runs the pubsub router core in the overlay's trio driver.

The router (``PubsubRouter``, or ``TreeRouter`` for
``PubsubConfig(tree="stable")``) owns the node's ``Overlay`` and returns the
overlay's actions
plus its own (``Deliver`` of documents to subscriptions, ``SendInterest``,
``SetInterestTimer``, ``Published``).  ``RoutedDriver`` is an
``OverlayDriver`` whose core is the router: the overlay's actions are carried
out as before; interest adverts travel as ``Frame.pubsub`` on the same links
and come back through the driver's ``other_frames`` hook; the router's
timers share the driver's timer heap; documents for the subscriptions go on
the ``documents`` channel, bounded in documents (``delivery_buffer``) and in
bytes (``delivery_buffer_bytes``, counted as ``Deliver.cost``: a decoded
document is several times its encoded size); one that does not fit is
dropped and counted in ``dropped_documents`` (the driver never waits for
the application).
"""

from __future__ import annotations

import heapq
import random
import time
from typing import Any

import trio

from taiinet.node.codec import decode_pubsub_frame, encode_pubsub_frame
from taiinet.overlay.actions import Action as OverlayAction
from taiinet.overlay.core import OverlayConfig
from taiinet.overlay.driver import DEFAULT_DELIVERY_BUFFER, Dial, OverlayDriver
from taiinet.pubsub import (
    Deliver,
    Published,
    PubsubConfig,
    SendInterest,
    SetInterestTimer,
    SignedDocuments,
)
from taiinet.pubsub.factory import Router, make_router
from taiinet.pubsub.tree.router import TreeRouter
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

#: Bytes of documents (``Deliver.cost``) waiting for the application at most;
#: an empty queue takes one document of any size.
DEFAULT_DELIVERY_BUFFER_BYTES = 16 * 1024 * 1024


class DeliveryQueue(trio.abc.ReceiveChannel[Deliver]):
    """Documents waiting for the application, bounded in documents and in bytes."""

    def __init__(self, limit: int, limit_bytes: int) -> None:
        self._send, self._receive = trio.open_memory_channel[Deliver](limit)
        self.limit_bytes = limit_bytes
        #: Sum of the ``cost`` of the queued documents.
        self.queued_bytes = 0

    def offer(self, delivery: Deliver) -> bool:
        """Queue ``delivery`` if it fits (it always does in an empty queue); ``False`` if not."""
        if self.queued_bytes and self.queued_bytes + delivery.cost > self.limit_bytes:
            return False
        try:
            self._send.send_nowait(delivery)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        self.queued_bytes += delivery.cost
        return True

    async def receive(self) -> Deliver:
        delivery = await self._receive.receive()
        self.queued_bytes -= delivery.cost
        return delivery

    async def aclose(self) -> None:
        await self._receive.aclose()


class _RouterCore:
    """The router behind the interface the overlay driver expects of its core."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def start(self, now: float) -> list[Any]:
        if isinstance(self.router, TreeRouter):
            # The stable tree's root is the oldest node: its claim is the wall clock.
            return self.router.start(now, started_unix_ms=int(time.time() * 1000))
        return self.router.start(now)

    def join(self, contact: PeerId, now: float) -> list[Any]:
        return self.router.join(contact, now)

    def handle_message(self, peer: PeerId, message: Any, now: float) -> list[Any]:
        return self.router.handle_message(peer, message, now)

    def admit_frame(self, peer: PeerId, size: int, messages: int,
                    now: float) -> list[Any] | None:
        return self.router.admit_frame(peer, size, messages, now)

    def heard_from(self, peer: PeerId, now: float) -> None:
        self.router.overlay.heard_from(peer, now)  # keep-alive: the link is alive

    def handle_link_down(self, peer: PeerId, now: float) -> list[Any]:
        return self.router.handle_link_down(peer, now)

    def handle_timer(self, timer: Any, now: float) -> list[Any]:
        return self.router.handle_timer(timer, now)

    @property
    def active_view(self) -> list[PeerId]:
        return self.router.active_view


class RoutedDriver(OverlayDriver):
    """An ``OverlayDriver`` running a ``PubsubRouter`` (see the module docstring)."""

    def __init__(self, identity: Identity, dial: Dial, *, rng: random.Random,
                 overlay_config: OverlayConfig | None = None,
                 pubsub_config: PubsubConfig | None = None,
                 delivery_buffer: int = DEFAULT_DELIVERY_BUFFER,
                 delivery_buffer_bytes: int = DEFAULT_DELIVERY_BUFFER_BYTES) -> None:
        self.router = make_router(identity.peer_id, rng, SignedDocuments(identity),
                                  pubsub_config, overlay_config)
        super().__init__(identity.peer_id, dial, other_frames=self._on_other_frame,
                         delivery_buffer=delivery_buffer, core=_RouterCore(self.router))
        self.documents = DeliveryQueue(delivery_buffer, delivery_buffer_bytes)
        self.dropped_documents = 0

    def publish(self, document: Any, *, published_unix_ms: int, nonce: int) -> bytes:
        """Sign and route ``document``; return its message id."""
        actions = self.router.publish(document, trio.current_time(),
                                      published_unix_ms=published_unix_ms, nonce=nonce)
        first = actions[0]
        assert isinstance(first, Published)
        self._apply(actions[1:])
        return first.message_id

    def subscribe(self, subscription_id: Any, query: Any) -> None:
        self._apply(self.router.subscribe(subscription_id, query, trio.current_time()))

    def unsubscribe(self, subscription_id: Any) -> None:
        self._apply(self.router.unsubscribe(subscription_id, trio.current_time()))

    def _apply(self, actions: list[Any]) -> None:
        overlay: list[OverlayAction] = []
        for action in actions:
            kind = type(action)
            if kind is Deliver:
                if not self.documents.offer(action):
                    self.dropped_documents += 1
            elif kind is SendInterest:
                self._enqueue(action.peer, encode_pubsub_frame(action.advert),
                              urgent=not action.lazy)
            elif kind is SetInterestTimer:
                self._timer_seq += 1
                heapq.heappush(self._timers, (action.at, self._timer_seq, action.timer))
                self._timer_changed.set()
            elif kind is not Published:
                overlay.append(action)
        if overlay:
            super()._apply(overlay)

    def _on_other_frame(self, peer: PeerId, data: bytes) -> None:
        """A pubsub frame for the router; a malformed one raises (the driver drops the peer).

        Charged to the peer's advert budget before it is decoded (decoding
        compiles its filters).
        """
        refused = self.router.admit_advert(peer, trio.current_time())
        if refused is not None:
            self._apply(refused)
            return
        message = decode_pubsub_frame(data)
        if message is not None:
            self._apply(self.router.handle_message(peer, message, trio.current_time()))
