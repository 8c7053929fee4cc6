"""Runs the pubsub router core in the overlay's trio driver.

The router (``TreeRouter``, or ``BroadcastRouter`` for
``PubsubConfig(routing=False)``) owns the node's ``Overlay`` and returns the
core contract's actions (docs/cores.md) plus ``Deliver`` of documents to
subscriptions.  ``RoutedDriver`` is an ``OverlayDriver`` whose core is the
router, carried out by the runner like any core: a ``Send`` of an interest
advert travels as protocol 12 (pubsub) on the same links, each advert
charged to its sender's advert budget before it is decoded; the router's
timers share the runner's timer heap.  The driver adds only the wall clock
(the router's claim as the tree's root, at ``start``) and the deliveries:
documents for the subscriptions go to ``hand_over`` (the node's
subscriptions, at once, when they can take them), else on
the ``documents`` channel, bounded in documents (``delivery_buffer``) and in
bytes (``delivery_buffer_bytes``, counted as ``Deliver.cost``: a decoded
document is several times its encoded size); one that does not fit is
dropped and counted in ``dropped_documents`` (the driver never waits for
the application).

History messages (protocol 13, docs/seed.md) ride the same links: the
node's ``HistoryService`` registers itself with ``register``, and
``send``, ``release`` and ``drop`` let it use the links.

With ``keep_envelopes`` (a seeder), the router's document codec
keeps each payload it opens until the actions of that call are carried out,
and the signed envelope of every queued delivery waits in ``envelopes``
until the node takes it (the router itself keeps only decoded documents).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from typing import Any

import trio

from taiinet.node.codec import PUBSUB_CODEC
from taiinet.overlay.core import OverlayConfig
from taiinet.overlay.driver import DEFAULT_DELIVERY_BUFFER, Dial, OverlayDriver
from taiinet.pubsub import Deliver, PubsubConfig, SignedDocuments
from taiinet.pubsub.documents import OpenedDocument
from taiinet.pubsub.factory import make_router
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
        #: Documents queued.
        self.pending = 0

    def offer(self, delivery: Deliver) -> bool:
        """Queue ``delivery`` if it fits (it always does in an empty queue); ``False`` if not."""
        if self.queued_bytes and self.queued_bytes + delivery.cost > self.limit_bytes:
            return False
        try:
            self._send.send_nowait(delivery)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        self.queued_bytes += delivery.cost
        self.pending += 1
        return True

    async def receive(self) -> Deliver:
        delivery = await self._receive.receive()
        self.queued_bytes -= delivery.cost
        self.pending -= 1
        return delivery

    def receive_nowait(self) -> Deliver | None:
        """The next queued document, or ``None`` if none is queued (no checkpoint:
        a reader drains what one frame delivered without a task switch each)."""
        try:
            delivery = self._receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            return None
        self.queued_bytes -= delivery.cost
        self.pending -= 1
        return delivery

    async def aclose(self) -> None:
        await self._receive.aclose()


class _CapturingDocuments(SignedDocuments):
    """``SignedDocuments`` that also keep each payload it opened, by message id, until
    the driver has carried out the router's actions of that call (a seeder stores the
    signed envelopes it delivers; the router keeps only decoded documents)."""

    __slots__ = ("opened",)

    def __init__(self, identity: Identity) -> None:
        super().__init__(identity)
        self.opened: dict[bytes, bytes] = {}

    def open(self, payload: bytes) -> OpenedDocument:
        opened = super().open(payload)
        self._capture(payload)
        return opened

    def reopen(self, payload: bytes) -> OpenedDocument:
        opened = super().reopen(payload)
        self._capture(payload)
        return opened

    def seal_opened(self, document: Any, max_bytes: int, *, published_unix_ms: int,
                    nonce: int) -> tuple[bytes, OpenedDocument]:
        payload, opened = super().seal_opened(document, max_bytes,
                                              published_unix_ms=published_unix_ms, nonce=nonce)
        self._capture(payload)
        return payload, opened

    def _capture(self, payload: bytes) -> None:
        if len(self.opened) >= _MAX_CAPTURED:
            self.opened.clear()
        self.opened[hashlib.sha256(payload).digest()] = payload


#: Payloads a capturing codec holds between two action batches (a batch opens a few).
_MAX_CAPTURED = 1024


class RoutedDriver(OverlayDriver):
    """An ``OverlayDriver`` running a pubsub router (see the module docstring)."""

    def __init__(self, identity: Identity, dial: Dial, *, rng: random.Random,
                 overlay_config: OverlayConfig | None = None,
                 pubsub_config: PubsubConfig | None = None,
                 delivery_buffer: int = DEFAULT_DELIVERY_BUFFER,
                 delivery_buffer_bytes: int = DEFAULT_DELIVERY_BUFFER_BYTES,
                 keep_envelopes: bool = False) -> None:
        """``keep_envelopes``: keep the signed envelope of every document delivered, in
        ``envelopes`` by message id, until the node takes it (a seeder stores them)."""
        self._capture = _CapturingDocuments(identity) if keep_envelopes else None
        self.router = make_router(identity.peer_id, rng,
                                  self._capture or SignedDocuments(identity),
                                  pubsub_config, overlay_config)
        #: Signed envelopes of the queued deliveries, by message id (``keep_envelopes``).
        self.envelopes: dict[bytes, bytes] = {}
        super().__init__(identity.peer_id, dial, delivery_buffer=delivery_buffer,
                         core=self.router)
        self.documents = DeliveryQueue(delivery_buffer, delivery_buffer_bytes)
        #: Takes a delivery (and its envelope, ``b""`` unless kept) at once, without
        #: the ``documents`` queue, and says whether it did: the node's subscriptions
        #: when they can take it now (``taiinet.node.handover``); ``None``: always queue.
        self.hand_over: Callable[[Deliver, bytes], bool] | None = None
        self.dropped_documents = 0
        self.register(PUBSUB_CODEC, admit=self._admit_advert)
        self.carry(Deliver, self._deliver)
        if self._capture is not None:  # the payloads of one input, until it is carried out
            self.after_apply = self._capture.opened.clear

    def start_core(self, now: float) -> list[Any]:
        # The tree's root is the oldest node: its claim is the wall clock.
        return self.router.start(now, started_unix_ms=int(time.time() * 1000))

    def publish(self, document: Any, *, published_unix_ms: int, nonce: int) -> bytes:
        """Sign and route ``document``; return its message id."""
        message_id, actions = self.router.publish(document, trio.current_time(),
                                                  published_unix_ms=published_unix_ms,
                                                  nonce=nonce)
        self._apply(actions)
        return message_id

    def subscribe(self, subscription_id: Any, query: Any) -> None:
        self._apply(self.router.subscribe(subscription_id, query, trio.current_time()))

    def unsubscribe(self, subscription_id: Any) -> None:
        self._apply(self.router.unsubscribe(subscription_id, trio.current_time()))

    def _deliver(self, event: Deliver) -> None:
        """A ``Deliver`` of the router (``carry``): to the node's subscriptions now,
        else to the ``documents`` queue."""
        envelope = b"" if self._capture is None else self._capture.opened.get(
            event.message_id, b"")
        hand_over = self.hand_over
        if hand_over is not None and hand_over(event, envelope):
            return
        if not self.documents.offer(event):
            self.dropped_documents += 1
        elif envelope:
            self.envelopes[event.message_id] = envelope

    def send(self, peer: PeerId, message: object) -> None:
        """Send a message of a registered protocol to ``peer`` (dialed if there is no link)."""
        self.links.enqueue(peer, self.protocols.encode(message))

    def send_to_each(self, peers: list[PeerId], message: object) -> None:
        """Send one message to every peer in ``peers``, encoded once (a stream chunk
        goes to all of a relay's children)."""
        item = self.protocols.encode(message)
        for peer in peers:
            self.links.enqueue(peer, item)

    def release(self, peer: PeerId) -> None:
        """Close the link to ``peer`` once its queue is sent, unless it is a neighbour."""
        if peer not in self.driver_core.active_view:
            self.links.close(peer)

    def drop(self, peer: PeerId) -> None:
        """Close every link to ``peer`` now (it broke a protocol)."""
        self.links.drop(peer, report=True)

    def _admit_advert(self, peer: PeerId, now: float) -> bool:
        """Charge an advert to the peer's advert budget before it is decoded
        (decoding compiles its filters)."""
        refused = self.router.admit_advert(peer, now)
        if refused is None:
            return True
        self._apply(refused)
        return False
