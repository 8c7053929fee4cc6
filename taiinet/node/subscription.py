"""Subscriptions: a query, a bounded queue of matching messages, a trio receive channel.

A subscription's life: *new* (made by ``node.subscribe``; nothing is
registered yet) -> *open* (its ``async with`` entered: the query is
registered and messages queue up) -> *ended* (the node closed: the queued
messages can still be read, then ``trio.EndOfChannel``, so ``async for``
stops) or *closed* (its owner closed it: every later read raises
``SubscriptionClosed``).  Reading a new subscription raises
``SubscriptionNotOpen`` at once; entering one twice (a nested ``async with``)
raises ``SubscriptionInUse`` at once - subscribe again for a second reader.

A subscription's queue is bounded in messages (``buffer``) and in bytes
(``buffer_bytes``, counted as ``Message.size``: a decoded document takes
several times its encoded size), and always takes one message whatever its
size.  When a message does not fit, the ``"drop"`` policy drops the oldest
queued messages until it does (each counted in ``dropped``); ``"block"``
makes the node's delivery task wait for the reader.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import trio

from taiinet.core.frozen import quick_init
from taiinet.history.seam import Seam
from taiinet.link.wakeup import Wakeup
from taiinet.node.errors import (
    InvalidInput,
    NodeClosed,
    SubscriptionClosed,
    SubscriptionInUse,
    SubscriptionNotOpen,
)
from taiinet.pubsub.query import Query

if TYPE_CHECKING:
    from taiinet.node.history import Fetch
    from taiinet.node.node import Node

#: What a full subscription queue does with a new message: drop the oldest
#: queued one (and count it) or make the node's delivery task wait.
SlowPolicy = Literal["drop", "block"]
#: Bytes (``Message.size``) a subscription queues by default before its policy applies.
DEFAULT_SUBSCRIPTION_BUFFER_BYTES = 16 * 1024 * 1024
#: Queued messages ``receive`` hands out in a row without letting other tasks run.
#: Every call is a cancel point and waiting for a message is a schedule point;
#: a reader of a queue that stays full yields once every this many messages (a
#: schedule point per message, as trio's memory channels make, cost ~3 us of
#: CPU per delivery at saturation).
RECEIVE_BATCH = 16


@quick_init
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
    #: Read from seeders' stores (a subscription's history, ``find``), not received live.
    stored: bool = False
    #: The signed envelope as received (kept only on a node that stores documents).
    envelope: bytes = field(default=b"", repr=False)


_State = Literal["new", "open", "ended", "closed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HistorySpec:
    """What a subscription reads from the seeders before its live documents: those
    published at or after ``since_unix_ms``, the first ``limit`` of them."""

    since_unix_ms: int = 0
    limit: float = math.inf


class Subscription(trio.abc.ReceiveChannel[Message]):
    """Made by ``Node.subscribe``: enter it with ``async with``, then ``async for`` or
    ``receive()``.  A ``trio.abc.ReceiveChannel[Message]``: the node is its sender."""

    def __init__(self, node: Node, query: Query, *, buffer: int, policy: SlowPolicy,
                 on_close: Callable[[Subscription], None],
                 buffer_bytes: int = DEFAULT_SUBSCRIPTION_BUFFER_BYTES,
                 history: HistorySpec | None = None) -> None:
        if buffer < 1 or buffer_bytes < 1:
            raise InvalidInput("a subscription buffer holds at least one message")
        if policy not in ("drop", "block"):
            raise InvalidInput(f"slow_policy is 'drop' or 'block', not {policy!r}")
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
        #: Messages ``receive`` handed out since it last let other tasks run.
        self._taken = 0
        #: Set when a message is queued (the reader waits on it), and when a
        #: queued one is taken (a blocked ``_put`` waits on that); reused, not
        #: made per wait (``taiinet.link.wakeup``).
        self._readable = Wakeup()
        self._writable = Wakeup()
        self._state: _State = "new"
        self._on_close = on_close
        #: Stored documents to read first (``None``: live only, or the history is read).
        self.history = history
        self._seam: Seam[Message] | None = None if history is None else Seam(max_held=buffer)
        self._fetch: Fetch | None = None

    async def __aenter__(self) -> Subscription:
        if self._state == "open":
            raise SubscriptionInUse(
                "this subscription is already open: a nested `async with` would close it "
                "early; call node.subscribe(query) again for a second reader")
        if self._state == "closed":
            raise SubscriptionClosed("this subscription was closed: call node.subscribe(query) "
                                     "for a new one")
        if self._state == "ended":
            raise NodeClosed("the node is closed")
        self.node._add_subscription(self)
        self._state = "open"
        return self

    async def aclose(self) -> None:
        """Stop receiving: the query is withdrawn, queued messages are dropped, and
        every later ``receive`` raises ``SubscriptionClosed``."""
        self.close()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """``aclose`` for synchronous code."""
        if self._state != "closed":
            self._finish("closed")
            self._queue.clear()
            self.queued_bytes = 0

    def clone(self) -> Subscription:
        """Not supported: a subscription has one owner (see ``SubscriptionInUse``)."""
        raise SubscriptionInUse("a subscription cannot be cloned: call node.subscribe(query) "
                                "again for a second reader (each gets every matching message)")

    async def send(self, document: Any) -> str:
        """Publish ``document`` to everyone interested (this subscription too, if it matches)."""
        return await self.node.publish(document)

    async def receive(self) -> Message:
        """The next message.

        A cancel point on every call; a schedule point when it waits for a
        message, and at least once every ``RECEIVE_BATCH`` queued messages taken
        in a row (not on each: a reader drains what the node queued without
        a scheduler round per message).
        Raises ``SubscriptionNotOpen`` before the ``async with`` is entered,
        ``trio.EndOfChannel`` once the node closed and the queue is drained
        (``async for`` then stops), ``SubscriptionClosed`` after ``aclose``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        taken = self._taken
        while not self._queue:
            self._check_readable()
            if self._state == "ended":
                raise trio.EndOfChannel
            taken = 0  # it waits (a schedule point): a new run of messages
            if self._seam is not None and not self._seam.live:
                await self._read_history()
                continue
            self._readable.clear()
            await self._readable.wait()
        self._check_readable()
        message = self._queue.popleft()
        self.queued_bytes -= message.size
        self._writable.set()
        taken += 1
        if taken >= RECEIVE_BATCH:
            taken = 0
            await trio.lowlevel.cancel_shielded_checkpoint()  # a taken message is never lost
        self._taken = taken
        return message

    def pending(self) -> int:
        return len(self._queue)

    @property
    def live_duplicates(self) -> int:
        """Live documents not delivered because the history had them already."""
        return 0 if self._seam is None else self._seam.duplicates

    async def _read_history(self) -> None:
        """Read the next stored documents into the queue; at their end, the held live ones."""
        assert self._seam is not None and self.history is not None
        if self._fetch is None:
            service = self.node.history
            seeders = await service.find_seeders()
            if self._fetch is None and self._state == "open":
                self._fetch = service.open_fetch(self.query, seeders,
                                                 since_unix_ms=self.history.since_unix_ms,
                                                 limit=self.history.limit)
            return
        batch = await self._fetch.next_batch()
        if self._state != "open":
            return
        from taiinet.node.history import item_message

        now = time.time()
        messages: list[Message] = []
        for item in batch:
            messages += self._seam.history(item.message_id.hex(), item_message(item, now))
        if not batch:
            messages = self._seam.finish()
            self._fetch = None
        for message in messages:
            self._queue.append(message)
            self.queued_bytes += message.size
            self.delivered += 1

    def _check_readable(self) -> None:
        if self._state == "new":
            raise SubscriptionNotOpen(
                "this subscription is not open: use `async with node.subscribe(query) as sub:` "
                "and read inside the block")
        if self._state == "closed":
            raise SubscriptionClosed("this subscription is closed")

    # -- the node's side ----------------------------------------------------

    def _end(self) -> None:
        """The node closed: what is queued can still be read, then the channel ends."""
        if self._state in ("new", "open"):
            self._finish("ended")

    def _finish(self, state: _State) -> None:
        was_open = self._state == "open"
        self._state = state
        if self._fetch is not None:
            self._fetch.close()
            self._fetch = None
        if was_open:
            self._on_close(self)
        self._readable.set()
        self._writable.set()

    def _full_for(self, size: int) -> bool:
        return bool(self._queue) and (len(self._queue) >= self.buffer
                                      or self.queued_bytes + size > self.buffer_bytes)

    def _would_wait(self, size: int) -> bool:
        """Whether ``_put`` of a message of ``size`` would wait for the reader."""
        return self._state == "open" and self.policy == "block" and self._full_for(size)

    def _put_nowait(self, message: Message) -> None:
        """``_put`` of a message that does not wait (``_would_wait`` said so)."""
        if not self._admits(message):
            return
        while self._full_for(message.size):  # the "drop" policy
            self._drop_oldest()
        self._append(message)

    def _admits(self, message: Message) -> bool:
        """Whether ``message`` is queued at all: the subscription is open and its
        seam (if any) passes it."""
        if self._state != "open":
            return False
        return self._seam is None or bool(self._seam.arrived(message.id, message))

    def _drop_oldest(self) -> None:
        self.queued_bytes -= self._queue.popleft().size
        self.dropped += 1

    async def _put(self, message: Message) -> None:
        if not self._admits(message):
            return
        while self._full_for(message.size):
            if self.policy == "drop":
                self._drop_oldest()
                continue
            self._writable.clear()
            await self._writable.wait()
            if self._state != "open":
                return
        self._append(message)

    def _append(self, message: Message) -> None:
        self._queue.append(message)
        self.queued_bytes += message.size
        self.delivered += 1
        self._readable.set()
