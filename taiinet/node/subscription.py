"""Subscriptions: a query, a bounded queue of matching messages, an async iterator."""

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


class Subscription:
    """Made by ``Node.subscribe``: use it with ``async with`` and ``async for``."""

    def __init__(self, node: Node, query: Query, *, buffer: int, policy: SlowPolicy,
                 on_close: Callable[[Subscription], None]) -> None:
        if buffer < 1:
            raise ValueError("a subscription buffer holds at least one message")
        self.node = node
        self.query = query
        self.buffer = buffer
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
        while len(self._queue) >= self.buffer:
            if self.policy == "drop":
                self._queue.popleft()
                self.dropped += 1
                break
            self._writable = trio.Event()
            await self._writable.wait()
            if self._closed:
                return
        self._queue.append(message)
        self.delivered += 1
        self._readable.set()
