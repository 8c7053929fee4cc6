"""The link layer: one bounded, batched, paced queue per peer, one parse per frame.

Theory of operation
-------------------
Every node link carries ``LinkFrame``s (docs/protocol.md section 4): each
frame holds items, each item a protocol id and that protocol's message as
bytes.  ``LinkManager`` owns the links of one node, whatever protocols run
over them:

* **Sending.**  ``enqueue(peer, item)`` puts an encoded item
  (``taiinet.wire.framing.encode_item``) in the peer's bounded queue
  (``LinkConfig.send_queue``); a task per peer dials the peer first if there
  is no connection (with the injected ``dial``), then writes the queue out.
  Each write takes every item queued by then, within ``max_items`` and
  ``max_frame_size``, and sends them as one frame: under load items go out
  in batches, at low load one by one.  The queue is a plain deque and the
  sender waits on one flag (``urgent``, a ``Wakeup``), so queueing an item costs no
  channel; before each write the sender lets one scheduler round pass, or
  ``BATCH_ROUNDS`` when items came while it wrote (a busy link), so that
  what other links' readers queue meanwhile goes in the same frame (one
  task counts those rounds for all the senders, ``taiinet.link.rounds``).  Over
  a transport that cuts frames into packets (WebRTC), a busy link's frame
  ends at a packet boundary, the rest going first in the next frame
  (``taiinet.link.packets``).  A full
  queue (a peer too slow to keep up), a failed dial or write, or a closed
  connection take the link down.
* **Pacing.**  A queue that holds only lazy items (``enqueue(..., urgent=
  False)``: Plumtree's routine ``IHave``s) waits until an urgent item is
  queued for that peer or the lazy flusher fires: ``lazy_delay`` after the
  first of them, but no sooner than ``lazy_interval`` after the link's
  previous write, and at once when ``LinkConfig.held_lazy`` are held.  One
  flusher task serves every link.
* **Receiving.**  A reader per connection parses each frame once
  (``decode_link_frame``), charges it to its sender's budget
  (``LinkHandler.admit_frame``, before anything of it is used), reports
  ``heard_from`` (the keep-alive: any frame shows the peer alive), then hands
  each item in order to ``handle_item``.  The link's own protocol
  (``LINK_PROTOCOL``, Ping/Pong) is handled here: a frame holding ``Ping``s
  is answered with one ``Pong`` of the last nonce, a ``Pong`` needs nothing.
  A malformed frame, or an item whose protocol handler raises a
  ``TaiiNetError``, drops the link (the peer broke the protocol).
* **Keep-alive.**  ``probe(peer)`` queues a ``Ping``; the core decides when a
  silent peer has failed (it saw no ``heard_from``) and closes its link.
* **Closing.**  ``close(peer)`` flushes the queue then closes the
  connections; ``drop(peer)`` closes them at once, queue and all, and reads
  nothing more from the peer.

Two peers may dial each other at once: both connections are kept, frames are
read from both and sent on the one a frame last came from (the newest until
one has), so both sides soon send on the same connection and the other falls
idle in both directions (its idle deadline then closes it with nothing
written on it lately: no frame is lost); the link is down when the last one
closes.  No connection is closed alone on purpose (docs/protocol.md 4.3).

A frame is lost only if its connection ends before the peer read it, and
nothing tells us which frames the peer read.  So a connection that ends
while frames we wrote on it may be unread (written after the last frame that
came from it: ``Link.unanswered``) ends the whole link, reported down like
any failure, even if other connections remain: the cores then see the
neighbour go (and come back on a new link) and repair what it missed,
instead of the link layer losing frames while the link stays up.  (Resending
those frames on another connection would not do: without acknowledgements
we cannot tell which of them the peer already handled.)  What was written on
a connection that then stayed open ``LinkConfig.read_within`` seconds
(default: the listeners' idle deadline) counts as read: the peer reads every
connection of a link all the time, so a frame still unread by then would
have to be held that long by a transport that neither side saw fail.
Without this, the connection left idle by two peers that dialed each other,
written on before both settled on the other one, ended the link when its
idle deadline closed it a minute later.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from taiinet.errors import ConnectionClosed, TaiiNetError
from taiinet.link.config import LinkConfig
from taiinet.link.packets import whole_packets
from taiinet.link.rounds import Rounds
from taiinet.link.wakeup import Wakeup
from taiinet.transport.connection import Connection, Packets
from taiinet.wire.framing import decode_link_frame, join_items
from taiinet.wire.keepalive import LINK_PROTOCOL, decode_control, ping_item, pong_item
from taiinet.wire.peer_id import PeerId

log = logging.getLogger(__name__)

Dial = Callable[[PeerId], Awaitable[Connection]]

_PING = ping_item(0)

#: Scheduler rounds a sender lets pass before it takes a batch off its queue,
#: so that what other tasks (the readers of other links) queue meanwhile goes
#: in the same frame: each frame costs a Noise seal, a transport write, and a
#: read with its task switches at the other end.  A sender woken from an
#: empty queue lets one round pass; a busy one (items came while it wrote)
#: all of them, so an idle link neither waits nor spends task switches on it.
#: Measured with ``bench/pubsub.py --links websocket`` at 80 documents/s (20
#: nodes, load average 26-32, same session): 2 rounds sent 0.56-0.61 link
#: frames per delivery at 360-497 us of CPU, 4 rounds 0.39-0.42 at 318-388 us,
#: 8 rounds 0.24-0.26 at 238-265 us, 16 rounds no better (0.17-0.26, 236-267 us);
#: 8 for busy senders only: 0.28 at 259-282 us, with fewer task steps per
#: delivery (4.5-4.8, against 5.4-6.5 with 8 rounds always).
#: With WebSocket links read in the reader's own task (no trio-websocket reader
#: task and channel hop, one pipeline stage less), 8 rounds sent more frames:
#: at 100 documents/s (load average 6-7, same session, interleaved) 8 rounds
#: 0.35-0.36 frames per delivery at 241-268 us, 12 rounds 0.25-0.26 at
#: 225-232 us with p50 83-108 ms, 16 rounds 0.21 at 226-230 us but p50 124 ms
#: (main with trio-websocket and 8 rounds: 0.27 at 264-268 us, p50 122-138 ms).
#: 24 rounds, and quiet senders waiting for a round with nothing queued or
#: nothing runnable, were measured after the per-frame cuts and not kept
#: (docs/measurements.md, History, "link batching": at most 4-8 % less CPU at
#: saturation, within noise, for half again the p50).
BATCH_ROUNDS = 12


class LinkHandler(Protocol):
    """What the link layer reports, and asks, of the node above it (the runner)."""

    def admit_frame(self, peer: PeerId, size: int, items: int, now: float) -> bool:
        """Whether a frame of ``size`` bytes and ``items`` items from ``peer`` is within
        its budget; a refused frame is dropped unread."""

    def heard_from(self, peer: PeerId, now: float) -> None:
        """A frame (any) came from ``peer``."""

    def handle_item(self, peer: PeerId, protocol: int, body: bytes, now: float) -> None:
        """One item; raise a ``TaiiNetError`` if it breaks its protocol (the link drops)."""

    def handle_link_down(self, peer: PeerId, now: float) -> None:
        """The link to ``peer`` is gone (not after ``drop(..., report=False)``)."""

    def handle_link_address(self, peer: PeerId, address: str, now: float) -> None:
        """A connection from ``peer`` came from ``address`` (before its first frame)."""


@dataclass(slots=True)
class Link:
    """One peer's link: its connections, its send queue and its pacing state."""

    peer: PeerId
    connections: list[Connection]
    #: Set when an item that must not wait (anything but a lazy one) is queued,
    #: when lazy ones are due, and when the link closes or is dropped; cleared
    #: by the sender as it takes a batch.
    urgent: Wakeup
    #: Encoded items to send, then ``None`` once ``close`` was asked
    #: (at most ``LinkConfig.send_queue`` items).
    queue: deque[bytes | None] = field(default_factory=deque)
    closing: bool = False
    #: The sender task ended (the link closed, or the node is shutting down).
    stopped: bool = False
    #: Lazy items queued since the last write.
    lazy_held: int = 0
    #: On the lazy flusher's heap (it will wake the sender).
    lazy_pending: bool = False
    #: When the sender last wrote to the link (paces lazy-only writes).
    written_at: float = -math.inf
    #: Opened by this node (to send), not by the peer (``add_connection``).
    dialed: bool = False
    #: Dropped at once (a failed link, or a peer disconnected): nothing more is read.
    dropped: bool = False
    #: Items queued on this link, and items written to its connection.
    queued: int = 0
    written: int = 0
    #: What ``flush`` waits on: made by the first one that waits, set and
    #: forgotten by the next write (or when the link goes), so that a frame
    #: makes no event when nobody flushes.
    wrote: trio.Event | None = None
    #: The connections written on since the last frame that came from them, and
    #: when each was last written on: if one ends within ``LinkConfig.read_within``
    #: of that, what was written on it may be unread, so the link fails.
    unanswered: dict[Connection, float] = field(default_factory=dict)
    #: Items at the head of the queue left out of the last frame to end it at a
    #: packet boundary: the next frame takes them all (``whole_packets``).
    held: int = 0

    def wake_flushers(self) -> None:
        """Wake the ``flush`` calls waiting on this link (items written, or it went)."""
        if self.wrote is not None:
            self.wrote.set()
            self.wrote = None


class LinkManager:
    """The links of one node; ``run`` it in a nursery (``await nursery.start``)."""

    def __init__(self, dial: Dial, handler: LinkHandler, config: LinkConfig | None = None
                 ) -> None:
        self.config = config or LinkConfig()
        self._dial = dial
        self._handler = handler
        self.links: dict[PeerId, Link] = {}
        #: (due, seq, link): when the flusher wakes each link holding lazy items.
        self._lazy_due: list[tuple[float, int, Link]] = []
        self._lazy_seq = 0
        self._lazy_wake = trio.Event()
        #: Counts the scheduler rounds the senders wait before a batch (one task for all).
        self._rounds = Rounds()
        self._nursery: trio.Nursery | None = None
        #: Items written to links; with the links' frame count, the batching ratio.
        self.items_sent = 0
        #: Links that went down, by why ("queue full", "write failed", "dial failed",
        #: "failed by the core", "protocol broken", "connection ended [(error)]"):
        #: what an overload or a misbehaving peer costs (``bench/pubsub.py`` prints it).
        self.ended: Counter[str] = Counter()
        #: Set (and replaced) whenever a link comes up, starts closing or goes away,
        #: so that whoever follows the linked peers waits for it instead of polling.
        self.changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; every link is closed on the way out."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._serve_until_stopped)
                nursery.start_soon(self._rounds.run)
                task_status.started()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                for link in list(self.links.values()):
                    for connection in link.connections:
                        await connection.aclose()

    # --- the node's side ------------------------------------------------------------

    def add_connection(self, connection: Connection) -> None:
        """Take an incoming (or otherwise opened) connection."""
        peer = connection.remote_peer_id
        link = self.links.get(peer)
        if link is None:
            link = self._new_link(peer)
        link.connections.append(connection)
        self._spawn(self._reader, link, connection)
        self.notify_changed()

    def notify_changed(self) -> None:
        """Wake the waiters on ``changed`` (links, or what the node counts as neighbours)."""
        self.changed.set()
        self.changed = trio.Event()

    def enqueue(self, peer: PeerId, item: bytes, *, urgent: bool = True) -> None:
        """Queue an encoded item for ``peer`` (dialed if there is no link)."""
        link = self.links.get(peer)
        if link is None or link.closing:
            if link is not None:
                del self.links[peer]  # the closing one finishes on its own
            link = self._new_link(peer)
            link.dialed = True  # its sender dials it (unless the peer dials first)
        if link.stopped:
            # Shutting down: the sender was cancelled while a reader still had
            # a frame in hand (trio returns ready data even when cancelled).
            return
        if len(link.queue) >= self.config.send_queue:
            log.warning("link: %s is too slow, dropping its link", peer)
            self._drop(link, why="queue full")
            return
        link.queue.append(item)
        link.queued += 1
        if urgent or self.config.lazy_delay <= 0:
            link.urgent.set()
            return
        link.lazy_held += 1
        if link.lazy_held >= self.config.held_lazy:
            link.urgent.set()
        elif not link.lazy_pending:
            link.lazy_pending = True
            self._push_lazy(link, max(trio.current_time() + self.config.lazy_delay,
                                      link.written_at + self.config.lazy_interval))

    def probe(self, peer: PeerId) -> None:
        """Queue a ``Ping`` for ``peer``; with no link, it is reported down at once."""
        if peer in self.links:
            self.enqueue(peer, _PING)
        else:
            self._link_down(peer)

    def close(self, peer: PeerId) -> None:
        """Flush ``peer``'s queue, then close its connections."""
        link = self.links.get(peer)
        if link is None or link.closing:
            return
        link.closing = True
        link.urgent.set()
        self.notify_changed()
        if link.stopped:
            return  # shutting down: the sender is gone (see ``enqueue``)
        if len(link.queue) >= self.config.send_queue:
            self._drop(link, why="queue full")
        else:
            link.queue.append(None)

    def drop(self, peer: PeerId, *, report: bool = False, why: str = "dropped") -> None:
        """Close every connection to ``peer`` now and read nothing more from it
        (``why`` is counted in ``ended``)."""
        link = self.links.get(peer)
        if link is not None:
            self._drop(link, report=report, why=why)

    async def flush(self, peer: PeerId) -> bool:
        """Wait until every item queued so far for ``peer`` was written to its
        connection; False if the link goes away first (or there is none)."""
        link = self.links.get(peer)
        if link is None:
            return False
        target = link.queued
        while link.written < target:
            if self.links.get(peer) is not link or link.dropped:
                return False
            if link.wrote is None:
                link.wrote = trio.Event()
            await link.wrote.wait()  # set by every write, and when the link goes
        return True

    def is_linked(self, peer: PeerId) -> bool:
        """Whether ``peer`` has an open, authenticated connection (not closing)."""
        link = self.links.get(peer)
        return link is not None and not link.closing and bool(link.connections)

    def dialed_peers(self) -> list[PeerId]:
        """Peers whose link this node opened."""
        return [link.peer for link in self.links.values() if link.dialed]

    # --- internals --------------------------------------------------------------------

    def _push_lazy(self, link: Link, due: float) -> None:
        self._lazy_seq += 1
        heapq.heappush(self._lazy_due, (due, self._lazy_seq, link))
        self._lazy_wake.set()

    def _new_link(self, peer: PeerId) -> Link:
        link = Link(peer=peer, connections=[], urgent=Wakeup())
        self.links[peer] = link
        self._spawn(self._sender, link)
        return link

    def _drop(self, link: Link, report: bool = True, *, why: str) -> None:
        """Forget a link now and close its connections; report it down if asked.

        ``why`` is counted in ``ended`` (once per link)."""
        if not link.dropped:
            self.ended[why] += 1
        if self.links.get(link.peer) is link:
            del self.links[link.peer]
        link.closing = True
        link.dropped = True
        link.urgent.set()
        link.wake_flushers()  # nothing more will be written
        link.queue.clear()
        for connection in link.connections:
            self._spawn(connection.aclose)
        self.notify_changed()
        if report:
            self._link_down(link.peer)

    def _drop_if_current(self, link: Link, why: str) -> None:
        self._drop(link, report=self.links.get(link.peer) is link and not link.closing, why=why)

    def _link_down(self, peer: PeerId) -> None:
        self._handler.handle_link_down(peer, trio.current_time())

    def _spawn(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    # --- tasks ------------------------------------------------------------------------

    async def _sender(self, link: Link) -> None:
        try:
            if await self._send_queue(link):
                return
        finally:
            link.stopped = True
        # Closed on purpose (``close``): flush done, close the connections.
        link.wake_flushers()  # nothing more will be written
        if self.links.get(link.peer) is link:
            del self.links[link.peer]
            self.notify_changed()
        for connection in link.connections:
            await connection.aclose()

    @staticmethod
    def _mark_unanswered(link: Link, connection: Connection) -> None:
        link.unanswered[connection] = trio.current_time()

    async def _send_queue(self, link: Link) -> bool:
        """Write the queue out until the close marker (False) or the link is dropped
        or fails (True: nothing left to close here)."""
        queue = link.queue
        backlog = False
        while True:
            # Busy: items came while the last write was in progress.
            busy = backlog or link.urgent.is_set()
            if not busy:
                # Nothing queued, or only lazy items: wait until an urgent item
                # comes, the lazy flusher's turn, or the link closes.
                await link.urgent.wait()
            # Let the tasks already runnable (readers of other links) run first,
            # so that what they queue for this peer goes in the same frame.
            await self._rounds.wait(BATCH_ROUNDS if busy else 1)
            if link.dropped:
                return True
            link.urgent.clear()
            if not queue:
                continue
            link.lazy_held = 0
            link.written_at = trio.current_time()
            # A busy link's frame ends at a packet boundary (``whole_packets``).
            packets = link.connections[-1].packets if busy and link.connections else None
            items, closing, link.held = self._take_batch(queue, packets, link.held)
            backlog = bool(queue)
            if items:
                if not link.connections and not await self._dial_link(link):
                    return True
                connection = link.connections[-1]
                # Marked before the write (the connection may end during it) and
                # after (a frame that came meanwhile may have been sent before
                # the peer read this one).
                self._mark_unanswered(link, connection)
                try:
                    await connection.send(join_items(items))
                except TaiiNetError as exc:
                    log.info("link: link to %s failed: %s", link.peer, exc)
                    self._drop_if_current(link, "write failed")
                    return True
                self._mark_unanswered(link, connection)
                self.items_sent += len(items)
                link.written += len(items)
                link.wake_flushers()
            if closing:
                return False

    async def _dial_link(self, link: Link) -> bool:
        try:
            connection = await self._dial(link.peer)
        except (TaiiNetError, OSError, trio.TooSlowError) as exc:
            log.info("link: cannot reach %s: %s", link.peer, exc)
            self._drop_if_current(link, "dial failed")
            return False
        link.connections.append(connection)
        self._spawn(self._reader, link, connection)
        self.notify_changed()
        return True

    def _take_batch(self, queue: deque[bytes | None], packets: Packets | None = None,
                    keep: int = 0) -> tuple[list[bytes], bool, int]:
        """The items at the head of ``queue`` that fit one frame (at least one),
        whether the close marker was reached, and how many items were left at
        the head of the queue to end the frame at a packet boundary.

        Never waits: the items that queued while the previous write was in
        progress go together, so frames grow with the load.  ``packets`` (a
        busy link's, see ``whole_packets``) may leave the last items for the
        next frame, but never the first ``keep`` (items left once already).
        """
        items: list[bytes] = []
        size = 0
        limit, most = self.config.max_frame_size, self.config.max_items
        while queue:
            item = queue[0]
            if item is None:
                queue.popleft()
                return items, True, 0
            size += len(item)
            if items and (len(items) == most or size > limit):
                break
            items.append(item)
            queue.popleft()
        if packets is not None and len(items) > max(1, keep):
            send = whole_packets(items, packets, keep)
            if send < len(items):
                left = items[send:]
                del items[send:]
                queue.extendleft(reversed(left))
                return items, False, len(left)
        return items, False, 0

    async def _reader(self, link: Link, connection: Connection) -> None:
        peer = link.peer
        address = connection.remote_address
        if address is not None:  # before its first frame: per-address limits
            self._handler.handle_link_address(peer, address, trio.current_time())
        why = "connection ended"
        receive = connection.receive
        try:
            while True:
                # ``async for data in connection``, without its async generator
                # (one object and one frame resumed less per frame).
                try:
                    data = await receive()
                except ConnectionClosed:
                    break
                if not self._read_frame(link, connection, data):
                    why = "protocol broken"
                    break
        except TaiiNetError as exc:
            log.info("link: link from %s ended: %s", peer, exc)
            why = f"connection ended ({type(exc).__name__})"
        finally:
            with trio.CancelScope(shield=True):
                await connection.aclose()
        if connection in link.connections:
            link.connections.remove(connection)
            self.notify_changed()
        written = link.unanswered.pop(connection, None)
        # Written on long enough ago while it stayed open: read (module doc).
        unread = (written is not None
                  and trio.current_time() - written < self.config.read_within)
        if self.links.get(peer) is not link or link.closing:
            return
        if unread and link.connections:
            # Frames written on it may be lost: the link fails (module doc).
            log.info("link: a connection to %s ended with frames perhaps unread", peer)
            self._drop(link, why=why)
        elif not link.connections:
            self._drop(link, why=why)

    def _read_frame(self, link: Link, connection: Connection, data: bytes) -> bool:
        """Handle one frame; False when nothing more is to be read from the link."""
        peer = link.peer
        config = self.config
        try:
            items = decode_link_frame(data, config.max_frame_size, config.max_items)
        except TaiiNetError as exc:
            log.warning("link: %s broke the protocol: %s", peer, exc)
            return False
        link.unanswered.pop(connection, None)
        connections = link.connections
        if connections[-1] is not connection and connection in connections:
            connections.remove(connection)  # send where the peer sends (module doc)
            connections.append(connection)
        now = trio.current_time()
        if not self._handler.admit_frame(peer, len(data), len(items), now):
            return not link.dropped  # over budget: dropped unread
        self._handler.heard_from(peer, now)
        pong: int | None = None
        handle = self._handler.handle_item
        try:
            for protocol, body in items:
                if protocol == LINK_PROTOCOL:
                    kind, nonce = decode_control(body)
                    if kind == "ping":
                        pong = nonce
                else:
                    handle(peer, protocol, body, now)
                if link.dropped:
                    return False  # the node disconnected the peer: read nothing more
        except TaiiNetError as exc:
            log.warning("link: %s broke the protocol: %s", peer, exc)
            return False
        if pong is not None and self.links.get(peer) is link and not link.closing:
            self.enqueue(peer, pong_item(pong))
        return True

    async def _serve_until_stopped(self) -> None:
        """The lazy flusher, which runs as long as the manager: once it has ended,
        no task is started any more.  (The nursery refuses new tasks as soon as its
        last child has ended, before ``run`` resumes: a connection added then, by a
        join dial finishing as the node closes, gets no reader and is closed by
        ``run`` on its way out, instead of crashing the node.)"""
        try:
            await self._lazy_flusher()
        finally:
            self._nursery = None

    async def _lazy_flusher(self) -> None:
        """Wake the senders holding lazy items when they are due (see the module doc)."""
        while True:
            self._lazy_wake = trio.Event()
            if not self._lazy_due:
                await self._lazy_wake.wait()
                continue
            with trio.move_on_at(self._lazy_due[0][0]):
                await self._lazy_wake.wait()
            now = trio.current_time()
            while self._lazy_due and self._lazy_due[0][0] <= now:
                _due, _seq, link = heapq.heappop(self._lazy_due)
                link.lazy_pending = False
                if link.lazy_held == 0 or link.closing:
                    continue  # an urgent item took them along meanwhile
                paced = link.written_at + self.config.lazy_interval
                if paced > now:  # written since this entry was made
                    link.lazy_pending = True
                    self._push_lazy(link, paced)
                else:
                    link.urgent.set()
