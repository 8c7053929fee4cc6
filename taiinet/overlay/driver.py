"""The trio driver of the overlay core: runs ``Overlay`` over ``Connection``s.

Theory of operation
-------------------
One ``Overlay`` core; every input is fed to it synchronously (trio is
cooperative, so no lock is needed) and its actions are carried out at once:

* ``Send``: the frame goes into the peer's bounded send queue; a task per
  peer dials it first if there is no connection (with the injected ``dial``)
  and then writes the queue out: each write takes every frame queued by then
  (up to a batch's limits) and sends them as one ``FrameBatch`` link frame,
  so under load frames go out in batches and at low load one by one.  A
  queue that holds only lazy frames (``Send(lazy=True)``: Plumtree's routine
  ``IHave``s) waits until another frame is queued for that peer or the
  driver's lazy flusher fires: ``lazy_delay`` (50 ms) after the first of
  them, but no sooner than ``lazy_interval`` (0.25 s) after the link's
  previous write, and at once when ``lazy_batch`` (128) are held.
  Announcements do not decide delivery latency (they only start repairs),
  and pacing them lets those of successive messages share a link message
  (Plumtree's lazy queue): under load a lazy link carries about four link
  messages a second instead of one per message.  A ``ShuffleReply`` to a
  peer we have no link to (the shuffle's origin, named by whoever forwarded
  the shuffle) is dropped while ``max_exchange_dials`` (16) links this
  driver dialed to non-neighbours are open: a burst of shuffles naming many
  origins cannot make a node dial them all (counted in
  ``exchange_dials_refused``; a lost reply only skips one view exchange).
  Membership requests (``Join``, ``Neighbor``) are never held back.  A dial
  failure, a closed connection or a
  full queue (a peer too slow to keep up) is reported to the core as
  ``handle_link_down``.
* ``CloseLink``: the peer's queue is flushed and its connections closed; with
  ``failed`` (a hung peer) they are closed at once, queue and all.
* ``ProbeLink``: a ``Ping`` frame is queued; a dead link fails the write (or
  has already ended its reader) and is reported down.  A hung peer (link
  open, nothing read or answered) is failed by the core: every link frame
  received is reported with ``heard_from``, and a neighbour that sends
  nothing, not even the ``Pong``, for ``probe_timeout`` after a probe is
  dropped and closed with ``CloseLink(failed=True)``.
* ``SetTimer``: kept in a heap served by one timer task.
* ``Deliver``: put on the bounded ``deliveries`` channel; if the application
  lags ``delivery_buffer`` messages behind, further deliveries are dropped and
  counted in ``dropped_deliveries`` (the overlay never blocks on a reader).

Every link frame received is first charged to its sender's budget
(``admit_frame``: messages and bytes per second, a batch counting each
message in it, ``Ping``s too; see ``taiinet.overlay.budget``): a frame over
budget is dropped unread (counted in ``frames_refused``), and the core
closes the link of a peer that keeps exceeding it.

Incoming connections are handed over with ``add_connection`` (or ``serve``
on a listener).  Two peers may dial each other at once: both connections are
kept, frames are read from both and sent on the newest; the link is down when
the last one closes.  A received batch is fed to the core frame by frame, in
order; a malformed frame or batch drops the link.  Frames of other layers are
passed to ``other_frames`` if given, else ignored (if it raises a
``TaiiNetError``, the peer broke that layer's protocol and the link is
dropped); ``Ping`` and ``Pong`` are
the driver's own: a link frame holding a ``Ping`` is answered with one
``Pong`` (of the last ``Ping``'s nonce), without the core.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio
from google.protobuf.message import DecodeError

from taiinet.errors import TaiiNetError
from taiinet.overlay import codec
from taiinet.overlay.actions import (
    Action,
    CloseLink,
    Deliver,
    ProbeLink,
    Send,
    SetTimer,
    Timer,
)
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.errors import OverlayUsageError
from taiinet.overlay.messages import ShuffleReply
from taiinet.overlay.plumtree import ForwardFilter
from taiinet.transport.connection import Connection
from taiinet.v1 import frame_pb2
from taiinet.wire.peer_id import PeerId

log = logging.getLogger(__name__)

Dial = Callable[[PeerId], Awaitable[Connection]]
#: ``other_frames(peer, frame)``: a frame of another layer; it raises a
#: ``TaiiNetError`` when the frame breaks that layer's protocol, and the
#: driver drops the link as for a malformed overlay frame.
OtherFrame = Callable[[PeerId, bytes], None]

#: Frames queued per peer before the link is declared too slow and dropped.
DEFAULT_SEND_QUEUE = 256
#: Deliveries buffered for the application.
DEFAULT_DELIVERY_BUFFER = 1024
#: Seconds a lazy frame (``IHave``) may wait for other frames to the same peer
#: to go with it (the Plumtree paper's lazy queue); any other frame sends at once.
DEFAULT_LAZY_DELAY = 0.05
#: Seconds between two link messages that only lazy frames set off, per link:
#: under load a lazy link's announcements go out about this often, together.
DEFAULT_LAZY_INTERVAL = 0.25
#: Links dialed to non-neighbours (HyParView exchanges) open at once beyond which
#: a ``ShuffleReply`` to a peer without a link is dropped.
DEFAULT_MAX_EXCHANGE_DIALS = 16
#: Lazy frames held for one peer that make the sender go without waiting
#: (well under ``DEFAULT_SEND_QUEUE``: a held queue must not look like a slow peer).
DEFAULT_LAZY_BATCH = 128

_PING = frame_pb2.Frame(ping=frame_pb2.Ping(nonce=0)).SerializeToString()
#: First bytes of a ``Frame`` holding a ``Ping`` (field 1) or a ``Pong`` (field 2).
_LINK_CONTROL_KEYS = (b"\x0a", b"\x12")


@dataclass(slots=True)
class _Link:
    peer: PeerId
    send: trio.MemorySendChannel[bytes | None]
    receive: trio.MemoryReceiveChannel[bytes | None]
    connections: list[Connection]
    #: Set when a frame that must not wait (anything but a lazy one) is queued.
    urgent: trio.Event
    closing: bool = False
    #: Lazy frames queued since the last write.
    lazy_held: int = 0
    #: On the lazy flusher's heap (it will wake the sender).
    lazy_pending: bool = False
    #: When the sender last wrote to the link (paces lazy-only writes).
    written_at: float = -math.inf
    #: Opened by this driver (to send), not by the peer (``add_connection``).
    dialed: bool = False
    #: Dropped at once (a failed link, or a peer disconnected by its core):
    #: nothing more is read from it.
    dropped: bool = False
    #: Frames queued on this link, and frames written to its connection.
    queued: int = 0
    written: int = 0
    #: Set (and replaced) whenever frames were written.
    wrote: trio.Event = field(default_factory=trio.Event)


class DriverCore(Protocol):
    """What the driver asks of its core: ``Overlay``, or a layer that owns one.

    Typed, so that a core put in by a subclass (the node's ``RoutedDriver``
    runs the pubsub router) is checked to answer every call the driver makes.
    """

    @property
    def active_view(self) -> list[PeerId]: ...

    def start(self, now: float) -> list[Any]: ...

    def join(self, contact: PeerId, now: float) -> list[Any]: ...

    def handle_message(self, peer: PeerId, message: Any, now: float) -> list[Any]: ...

    def admit_frame(self, peer: PeerId, size: int, messages: int,
                    now: float) -> list[Any] | None: ...

    def heard_from(self, peer: PeerId, now: float) -> None: ...

    def handle_link_down(self, peer: PeerId, now: float) -> list[Any]: ...

    def handle_link_address(self, peer: PeerId, address: str, now: float) -> list[Any]: ...

    def handle_timer(self, timer: Any, now: float) -> list[Any]: ...


class OverlayDriver:
    """Runs one node's overlay; start ``run`` in a nursery (``await nursery.start``)."""

    def __init__(self, peer_id: PeerId, dial: Dial, *, rng: random.Random | None = None,
                 config: OverlayConfig | None = None,
                 forward_filter: ForwardFilter | None = None,
                 other_frames: OtherFrame | None = None,
                 send_queue: int = DEFAULT_SEND_QUEUE,
                 delivery_buffer: int = DEFAULT_DELIVERY_BUFFER,
                 lazy_delay: float = DEFAULT_LAZY_DELAY,
                 lazy_interval: float = DEFAULT_LAZY_INTERVAL,
                 lazy_batch: int = DEFAULT_LAZY_BATCH,
                 max_exchange_dials: int = DEFAULT_MAX_EXCHANGE_DIALS,
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
        self.core: DriverCore = core
        self._dial = dial
        self._other_frames = other_frames
        self._send_queue = send_queue
        self._lazy_delay = lazy_delay
        self._lazy_interval = lazy_interval
        self._lazy_batch = max(1, min(lazy_batch, send_queue // 2))
        #: (due, seq, link): when the flusher wakes each link holding lazy frames.
        self._lazy_due: list[tuple[float, int, _Link]] = []
        self._lazy_seq = 0
        self._lazy_wake = trio.Event()
        self._links: dict[PeerId, _Link] = {}
        self._timers: list[tuple[float, int, Timer]] = []
        self._timer_seq = 0
        self._timer_changed = trio.Event()
        self._deliver_send, self.deliveries = trio.open_memory_channel[Deliver](delivery_buffer)
        self.dropped_deliveries = 0
        self._max_exchange_dials = max_exchange_dials
        #: Dials to non-neighbours not made because ``max_exchange_dials`` were open.
        self.exchange_dials_refused = 0
        #: Frames (overlay messages and pings) written to links; a batch counts
        #: each of its frames, so with the links' own frame count it gives the
        #: batching ratio.
        self.frames_sent = 0
        #: Link frames received over their sender's budget and dropped unread.
        self.frames_refused = 0
        self._nursery: trio.Nursery | None = None

    # --- public API ------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; every link is closed on the way out."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._apply(self.core.start(trio.current_time()))
                nursery.start_soon(self._timer_task)
                nursery.start_soon(self._lazy_flusher)
                task_status.started()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                for link in list(self._links.values()):
                    for connection in link.connections:
                        await connection.aclose()
            self._deliver_send.close()

    def join(self, contact: PeerId) -> None:
        """Enter the overlay through ``contact`` (dialed at once)."""
        self._apply(self.core.join(contact, trio.current_time()))

    def broadcast(self, message_id: bytes, payload: bytes) -> None:
        """Broadcast to the overlay; the local ``Deliver`` appears on ``deliveries`` too.

        Only on a driver running its own ``Overlay``: a driver given another
        core sends through that core's own API.
        """
        if self.overlay is None:
            raise OverlayUsageError("this driver runs another core: publish through it")
        self._apply(self.overlay.broadcast(message_id, payload, trio.current_time()))

    def add_connection(self, connection: Connection) -> None:
        """Take an incoming (or otherwise opened) connection into the overlay."""
        peer = connection.remote_peer_id
        link = self._links.get(peer)
        if link is None:
            link = self._new_link(peer)
        link.connections.append(connection)
        self._spawn(self._reader, link, connection)

    async def serve(self, listener: AsyncIterable[Connection]) -> None:
        """Add every connection a listener accepts (run it as a task)."""
        async for connection in listener:
            self.add_connection(connection)

    async def flush(self, peer: PeerId) -> bool:
        """Wait until every frame queued so far for ``peer`` was written to its
        connection; False if the link goes away first (or there is none)."""
        link = self._links.get(peer)
        if link is None:
            return False
        target = link.queued
        while link.written < target:
            if self._links.get(peer) is not link or link.dropped:
                return False
            with trio.move_on_after(1.0):  # re-check a link dropped meanwhile
                await link.wrote.wait()
        return True

    @property
    def neighbors(self) -> list[PeerId]:
        """The core's active view, links being dialed included."""
        return list(self.core.active_view)

    @property
    def linked_neighbors(self) -> list[PeerId]:
        """Active-view peers with an open, authenticated connection (Noise done).

        A peer the core took as neighbour but whose dial is still in progress (or
        will fail) is not one yet: this is what callers waiting for neighbours count.
        """
        links = self._links
        return [peer for peer in self.core.active_view
                if (link := links.get(peer)) is not None and not link.closing
                and link.connections]

    # --- actions -------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if (type(action.message) is ShuffleReply and action.peer not in self._links
                        and self._exchange_dials_full(action.peer)):
                    log.info("overlay: no shuffle reply to %s: %d exchange links open",
                             action.peer, self._max_exchange_dials)
                    self.exchange_dials_refused += 1
                    continue
                self._enqueue(action.peer, codec.encode_frame(action.message),
                              urgent=not action.lazy)
            elif isinstance(action, SetTimer):
                self._timer_seq += 1
                heapq.heappush(self._timers, (action.at, self._timer_seq, action.timer))
                self._timer_changed.set()
            elif isinstance(action, Deliver):
                try:
                    self._deliver_send.send_nowait(action)
                except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                    self.dropped_deliveries += 1
            elif isinstance(action, CloseLink):
                link = self._links.get(action.peer)
                if link is not None:
                    if action.failed:
                        self._drop(link, report=False)
                    else:
                        self._close_link(link)
            elif isinstance(action, ProbeLink):
                if action.peer in self._links:
                    self._enqueue(action.peer, _PING)
                else:
                    self._link_down(action.peer)

    def _enqueue(self, peer: PeerId, frame: bytes, *, urgent: bool = True) -> None:
        link = self._links.get(peer)
        if link is None or link.closing:
            if link is not None:
                del self._links[peer]  # the closing one finishes on its own
            link = self._new_link(peer)
            link.dialed = True  # its sender dials it (unless the peer dials first)
        try:
            link.send.send_nowait(frame)
            link.queued += 1
            if urgent or self._lazy_delay <= 0:
                link.urgent.set()
                return
            link.lazy_held += 1
            if link.lazy_held >= self._lazy_batch:
                link.urgent.set()
            elif not link.lazy_pending:
                link.lazy_pending = True
                now = trio.current_time()
                self._push_lazy(link, max(now + self._lazy_delay,
                                          link.written_at + self._lazy_interval))
        except trio.WouldBlock:
            log.warning("overlay: %s is too slow, dropping its link", peer)
            self._drop(link)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # Shutting down: the sender was cancelled while a reader still had
            # a frame in hand (trio returns ready data even when cancelled).
            pass

    def _push_lazy(self, link: _Link, due: float) -> None:
        self._lazy_seq += 1
        heapq.heappush(self._lazy_due, (due, self._lazy_seq, link))
        self._lazy_wake.set()

    def _new_link(self, peer: PeerId) -> _Link:
        send, receive = trio.open_memory_channel[bytes | None](self._send_queue)
        link = _Link(peer=peer, send=send, receive=receive, connections=[],
                     urgent=trio.Event())
        self._links[peer] = link
        self._spawn(self._sender, link)
        return link

    def _close_link(self, link: _Link) -> None:
        """Flush and close: the sender closes the connections after the queue."""
        if not link.closing:
            link.closing = True
            link.urgent.set()
            with_none = link.send
            try:
                with_none.send_nowait(None)
            except trio.WouldBlock:
                self._drop(link)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # shutting down: the sender is gone (see ``_enqueue``)

    def _drop(self, link: _Link, report: bool = True) -> None:
        """Forget a link now and close its connections; report it down to the core."""
        if self._links.get(link.peer) is link:
            del self._links[link.peer]
        link.closing = True
        link.dropped = True
        link.urgent.set()
        link.send.close()
        for connection in link.connections:
            self._spawn(connection.aclose)
        if report:
            self._link_down(link.peer)

    def _link_down(self, peer: PeerId) -> None:
        self._apply(self.core.handle_link_down(peer, trio.current_time()))

    def _spawn(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    # --- tasks ------------------------------------------------------------------------

    async def _sender(self, link: _Link) -> None:
        carried: bytes | None = None
        async with link.receive:
            while True:
                backlog = carried is not None
                if carried is None:
                    try:
                        frame = await link.receive.receive()
                    except trio.EndOfChannel:
                        break
                else:
                    frame, carried = carried, None
                if frame is None:
                    break
                if not backlog:
                    # Only lazy frames queued: let more frames join them until an
                    # urgent one comes or the lazy flusher's turn.
                    await link.urgent.wait()
                link.urgent = trio.Event()
                link.lazy_held = 0
                link.written_at = trio.current_time()
                frames, carried, closing = _take_batch(link.receive, frame)
                if not link.connections:
                    try:
                        connection = await self._dial(link.peer)
                    except (TaiiNetError, OSError, trio.TooSlowError) as exc:
                        log.info("overlay: cannot reach %s: %s", link.peer, exc)
                        self._drop_if_current(link)
                        return
                    link.connections.append(connection)
                    self._spawn(self._reader, link, connection)
                data = frames[0] if len(frames) == 1 else codec.encode_batch(frames)
                try:
                    await link.connections[-1].send(data)
                except TaiiNetError as exc:
                    log.info("overlay: link to %s failed: %s", link.peer, exc)
                    self._drop_if_current(link)
                    return
                self.frames_sent += len(frames)
                link.written += len(frames)
                link.wrote.set()
                link.wrote = trio.Event()
                if closing:
                    break
        # Closed on purpose (CloseLink): flush done, close the connections.
        if self._links.get(link.peer) is link:
            del self._links[link.peer]
        for connection in link.connections:
            await connection.aclose()

    def _exchange_dials_full(self, peer: PeerId) -> bool:
        """Whether dialing ``peer`` (not a neighbour) would pass ``max_exchange_dials``."""
        active = set(self.core.active_view)
        if peer in active:
            return False
        dialed = sum(1 for link in self._links.values()
                     if link.dialed and link.peer not in active)
        return dialed >= self._max_exchange_dials

    def _drop_if_current(self, link: _Link) -> None:
        self._drop(link, report=self._links.get(link.peer) is link and not link.closing)

    async def _reader(self, link: _Link, connection: Connection) -> None:
        peer = link.peer
        address = connection.remote_address
        if address is not None:  # before its first message: per-address limits
            self._apply(self.core.handle_link_address(peer, address, trio.current_time()))
        try:
            async for data in connection:
                try:
                    parts = codec.decode_link_frame(data)
                except TaiiNetError as exc:
                    log.warning("overlay: %s broke the protocol: %s", peer, exc)
                    break
                now = trio.current_time()
                refused = self.core.admit_frame(peer, len(data), len(parts), now)
                if refused is not None:  # over the peer's budget: dropped unread
                    self.frames_refused += 1
                    self._apply(refused)
                    if link.dropped:
                        break  # disconnected as a persistent offender
                    continue
                self.core.heard_from(peer, now)
                pong: int | None = None
                broken = False
                for part in parts:
                    if isinstance(part, bytes):
                        control = _link_control(part)
                        if control is None:
                            if self._other_frames is not None:
                                try:
                                    self._other_frames(peer, part)
                                except TaiiNetError as exc:
                                    log.warning("overlay: %s broke the protocol: %s", peer, exc)
                                    broken = True
                                    break
                        elif control.HasField("ping"):
                            pong = control.ping.nonce
                    else:
                        self._apply(self.core.handle_message(peer, part, now))
                    if link.dropped:
                        break  # the core disconnected the peer: read nothing more
                if broken or link.dropped:
                    break
                if pong is not None and self._links.get(peer) is link and not link.closing:
                    self._enqueue(peer, frame_pb2.Frame(
                        pong=frame_pb2.Pong(nonce=pong)).SerializeToString())
        except TaiiNetError as exc:
            log.info("overlay: link from %s ended: %s", peer, exc)
        finally:
            with trio.CancelScope(shield=True):
                await connection.aclose()
        if connection in link.connections:
            link.connections.remove(connection)
        if not link.connections and self._links.get(peer) is link and not link.closing:
            self._drop(link)

    async def _lazy_flusher(self) -> None:
        """Wake the senders holding lazy frames when they are due (see the module doc).

        One timer for the whole driver instead of one per link and batch.
        """
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
                    continue  # an urgent frame took them along meanwhile
                paced = link.written_at + self._lazy_interval
                if paced > now:  # written since this entry was made
                    link.lazy_pending = True
                    self._push_lazy(link, paced)
                else:
                    link.urgent.set()

    async def _timer_task(self) -> None:
        while True:
            now = trio.current_time()
            while self._timers and self._timers[0][0] <= now:
                _at, _seq, timer = heapq.heappop(self._timers)
                self._apply(self.core.handle_timer(timer, now))
            self._timer_changed = trio.Event()
            deadline = self._timers[0][0] if self._timers else trio.current_time() + 3600
            with trio.move_on_at(deadline):
                await self._timer_changed.wait()



def _link_control(frame: bytes) -> frame_pb2.Frame | None:
    """``frame`` parsed if it is a ``Ping`` or a ``Pong`` (the driver's own), else ``None``.

    Only frames that start with those fields' keys are parsed again.
    """
    if frame[:1] not in _LINK_CONTROL_KEYS:
        return None
    parsed = frame_pb2.Frame()
    try:
        parsed.ParseFromString(frame)
    except DecodeError:
        return None
    return parsed if parsed.WhichOneof("body") in ("ping", "pong") else None


def _take_batch(receive: trio.MemoryReceiveChannel[bytes | None], first: bytes,
                ) -> tuple[list[bytes], bytes | None, bool]:
    """``first`` and the frames queued behind it that fit one batch.

    Returns the frames, one frame taken that did not fit or ``None``, and
    whether the close marker was reached.  The frame that did not fit starts
    the next batch at once (a sender holding one never waits).  Never waits:
    the frames that queued while the previous send was in progress go
    together, so batches grow with the load.
    """
    frames = [first]
    size = codec.batch_item_size(first)
    while True:
        try:
            frame = receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            return frames, None, False
        if frame is None:
            return frames, None, True
        size += codec.batch_item_size(frame)
        if len(frames) == codec.MAX_BATCH_FRAMES or not codec.batch_fits(size):
            return frames, frame, False
        frames.append(frame)
