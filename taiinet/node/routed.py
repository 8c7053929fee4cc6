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
the bounded ``documents`` channel (extras dropped and counted).
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
                 delivery_buffer: int = DEFAULT_DELIVERY_BUFFER) -> None:
        self.router = make_router(identity.peer_id, rng, SignedDocuments(identity),
                                  pubsub_config, overlay_config)
        super().__init__(identity.peer_id, dial, other_frames=self._on_other_frame,
                         delivery_buffer=delivery_buffer, core=_RouterCore(self.router))
        self._documents_send, self.documents = trio.open_memory_channel[Deliver](
            delivery_buffer)
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
                try:
                    self._documents_send.send_nowait(action)
                except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
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
        """A pubsub frame for the router; a malformed one raises (the driver drops the peer)."""
        message = decode_pubsub_frame(data)
        if message is not None:
            self._apply(self.router.handle_message(peer, message, trio.current_time()))
