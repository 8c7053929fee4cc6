"""Handing the router's deliveries to a node's subscriptions.

A ``Deliver`` goes straight into the matching subscriptions' queues, within
the call that routed it (``now``: no channel, no task switch), unless that
could reorder it (deliveries are queued before it, or being handed over) or
a ``"block"`` subscription it goes to is full.  Then it waits in the
driver's bounded ``documents`` queue for ``run``, the node's delivery task,
which waits for the full subscription's reader.
"""

from __future__ import annotations

import time

from taiinet.core.frozen import quick_new
from taiinet.node.routed import RoutedDriver
from taiinet.node.subscription import Message, Subscription
from taiinet.pubsub import Deliver


class HandOver:
    """The node's side of ``RoutedDriver.hand_over`` and its delivery task."""

    __slots__ = ("_driver", "_handing", "_subscriptions", "delivered")

    def __init__(self, driver: RoutedDriver, subscriptions: dict[int, Subscription]) -> None:
        self._driver = driver
        self._subscriptions = subscriptions
        #: ``run`` is handing over queued deliveries (``now`` then queues behind them).
        self._handing = False
        #: Messages put on subscription queues (one per matching subscription).
        self.delivered = 0
        driver.hand_over = self.now

    def now(self, delivery: Deliver, envelope: bytes) -> bool:
        """Queue ``delivery`` in its subscriptions now; ``False`` (nothing done) if
        it must wait in the driver's queue."""
        if self._handing or self._driver.documents.pending:
            return False
        subscriptions = self._subscriptions
        cost = delivery.cost
        takers: list[Subscription] = []
        for key in delivery.subscription_ids:
            subscription = subscriptions.get(key)  # type: ignore[call-overload]
            if subscription is not None:
                if subscription._would_wait(cost):
                    return False
                takers.append(subscription)
        message = _message(delivery, envelope)
        for subscription in takers:
            subscription._put_nowait(message)
        self.delivered += len(takers)
        return True

    async def run(self) -> None:
        """The delivery task: hand over what the driver queued, in order."""
        documents = self._driver.documents
        async for first in documents:
            self._handing = True
            delivery: Deliver | None = first
            while delivery is not None:  # what is queued goes without a checkpoint each
                await self._queued(delivery)
                delivery = documents.receive_nowait()
            self._handing = False

    async def _queued(self, delivery: Deliver) -> None:
        message = _message(delivery, self._driver.envelopes.pop(delivery.message_id, b""))
        for key in delivery.subscription_ids:
            subscription = self._subscriptions.get(key)  # type: ignore[call-overload]
            if subscription is not None:
                await subscription._put(message)
                self.delivered += 1


_new_message = quick_new(Message)


def _message(delivery: Deliver, envelope: bytes) -> Message:
    return _new_message(data=delivery.document, publisher=delivery.publisher,
                   id=delivery.message_id.hex(), received_at=time.time(),
                   published_at=delivery.published_unix_ms / 1000,
                   hops=delivery.hops, size=delivery.cost, envelope=envelope)
