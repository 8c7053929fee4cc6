"""Subscriptions: a query, a bounded queue of matching messages, an async iterator.

A subscription's queue is bounded in messages (``buffer``) and in bytes
(``buffer_bytes``, counted as ``Message.size``: a decoded document takes
several times its encoded size), and always takes one message whatever its
size.  When a message does not fit, the ``"drop"`` policy drops the oldest
queued messages until it does (each counted in ``dropped``); ``"block"``
makes the node's delivery task wait for the reader.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import trio

from taiinet.node.errors import NodeClosed
from taiinet.pubsub.query import Query

if TYPE_CHECKING:
    from taiinet.node.node import Node

#: What a full subscription queue does with a new message: drop the oldest
#: queued one (and count it) or make the node's delivery task wait.
SlowPolicy = Literal["drop", "block"]
#: Bytes (``Message.size``) a subscription queues by default before its policy applies.
DEFAULT_SUBSCRIPTION_BUFFER_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One verified document delivered to a subscription."""

    data: Any
    #: Peer id of the publisher (the envelope's verified signer).
    publisher: str
    #: Message id: hex of SHA-256 of the signed envelope.
    id: str
    #: Local wall clock (``time.time()``) when this node delivered it.
    received_at: float
    #: The publisher's wall clock when it published (as it claims; signed).
    published_at: float
    #: Overlay hops it travelled (0 for our own publications).
    hops: int
    #: Bytes it counts toward its subscription's ``buffer_bytes``: the
    #: document's encoded size plus 72 per value (an estimate of its decoded size).
    size: int = 0


class Subscription:
    """Made by ``Node.subscribe``: use it with ``async with`` and ``async for``."""

    def __init__(self, node: Node, query: Query, *, buffer: int, policy: SlowPolicy,
                 on_close: Callable[[Subscription], None],
                 buffer_bytes: int = DEFAULT_SUBSCRIPTION_BUFFER_BYTES) -> None:
        if buffer < 1 or buffer_bytes < 1:
            raise ValueError("a subscription buffer holds at least one message")
        self.node = node
        self.query = query
        self.buffer = buffer
        self.buffer_bytes = buffer_bytes
        #: Sum of the ``size`` of the queued messages.
        self.queued_bytes = 0
        self.policy: SlowPolicy = policy
        #: Messages dropped because this subscriber was ``buffer`` messages behind.
        self.dropped = 0
        #: Messages delivered into this subscription's queue.
        self.delivered = 0
        self._queue: deque[Message] = deque()
        self._readable = trio.Event()
        self._writable = trio.Event()
        self._closed = False
        self._open = False
        self._on_close = on_close

    async def __aenter__(self) -> Subscription:
        self.node._add_subscription(self)
        self._open = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving; iteration ends once the queued messages are read."""
        if not self._closed:
            self._closed = True
            self._on_close(self)
            self._readable.set()
            self._writable.set()

    async def send(self, document: Any) -> str:
        """Publish ``document`` to everyone interested (this subscription too, if it matches)."""
        return await self.node.publish(document)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._readable = trio.Event()
            await self._readable.wait()
        message = self._queue.popleft()
        self.queued_bytes -= message.size
        self._writable.set()
        return message

    async def receive(self) -> Message:
        """The next message; raises ``NodeClosed`` once closed and drained."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise NodeClosed("the subscription is closed") from None

    def pending(self) -> int:
        return len(self._queue)

    # -- the node's side ----------------------------------------------------

    async def _put(self, message: Message) -> None:
        if self._closed:
            return
        while self._queue and (len(self._queue) >= self.buffer
                               or self.queued_bytes + message.size > self.buffer_bytes):
            if self.policy == "drop":
                self.queued_bytes -= self._queue.popleft().size
                self.dropped += 1
                continue
            self._writable = trio.Event()
            await self._writable.wait()
            if self._closed:
                return
        self._queue.append(message)
        self.queued_bytes += message.size
        self.delivered += 1
        self._readable.set()
