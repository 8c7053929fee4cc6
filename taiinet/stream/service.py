"""The trio driver of live streams inside a node: relay tree + media relay per stream.

Stream messages (link protocol 14, ``codec.CODEC``) ride the node's links
(``RoutedDriver``'s ``send``/``send_to_each``; a peer that is not a
neighbour is dialed through the signal mesh); the node registers
``handle_message`` and ``handle_link_down`` with its link layer.  Per
stream, a ``RelayTree`` core places this node in the tree and a
``MediaRelay`` core checks and buffers media; this module only moves
messages between them and the links and keeps their timers.

* Seals and chunks are accepted only from the current parent; a new one is
  forwarded to every child as the same item bytes (encoded once).
* A backfill longer than ``CATCH_UP_SLICE`` messages (a child re-adopted
  after a repair of a few seconds is owed hundreds of chunks) is *paced*:
  the child gets it in slices, each sent once its link wrote the previous
  one, and the live messages for it queue behind the backfill until it is
  done, so the child gets every chunk in order and the link's per-peer queue
  (``LinkConfig.send_queue``, 256 items) never overflows.  Before, the whole
  backfill went into the queue at once; a repair of 4 s over WebRTC overflowed
  it, the link was dropped as too slow, the child repaired again and was
  owed more: viewers lost their parents in a loop.
* A viewer feeds checked chunks to a ``Reassembler`` and puts the packets on
  a bounded channel (a slow reader loses packets, counted, never blocks the
  relay); when it wants a keyframe it sends ``KeyframeRequest`` to its parent.
* A keyframe request from a child goes up (rate limited); at the root it
  calls the broadcaster's ``on_keyframe_request``.
* A malformed message or bad media raises (the link is dropped, the tree repairs).
* A ``CloseLink`` from a tree (a link idle for ``link_idle_timeout``, a silent
  or evicted child, a stream left) closes the link once its queue is out,
  unless another stream's tree holds it or the overlay has the peer as a
  neighbour (``RoutedDriver.release``).
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from taiinet.core.actions import CloseLink, Send, SetTimer
from taiinet.media.packets import MediaPacket, Reassembler, cut
from taiinet.stream.actions import (
    Action,
    Backfill,
    Evicted,
    Timer,
)
from taiinet.stream.announce import SignedAnnouncement
from taiinet.stream.config import TreeConfig
from taiinet.stream.errors import StreamUsageError
from taiinet.stream.messages import (
    MAX_SEAL_HASHES,
    Chunk,
    KeyframeRequest,
    Seal,
    StreamBody,
    StreamMessage,
)
from taiinet.stream.relay import MediaRelay, RelayConfig
from taiinet.stream.seal import make_seal
from taiinet.stream.tree import RelayTree
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

if TYPE_CHECKING:
    from taiinet.node.routed import RoutedDriver

log = logging.getLogger(__name__)

#: Packets a viewer's channel holds before new ones are dropped.
PACKET_BUFFER = 2048
#: The tree's timers on real links: a first ``Join`` may wait for a link to be
#: dialed through the signal mesh (a second or more), a loaded host may delay a
#: heartbeat, and a newly adopted child's first chunks (its backfill) may take
#: seconds over a fresh WebRTC link: with the simulator's 1 s stall timeout such
#: children blamed, left and banned honest parents (seen at load 30 on 2 cores).
#: A killed WebSocket peer's link reports its failure at once; over WebRTC the
#: peer timeout notices it, and the backfill covers the repair.
NODE_TREE_CONFIG = TreeConfig(join_timeout=3.0, peer_timeout=3.0, orphan_grace=4.0,
                              stall_timeout=3.0, upstream_grace=6.0)
#: Messages of a child's catch-up (backfill, then the live ones behind it) sent
#: before waiting for its link to write them: a quarter of the link's queue.
CATCH_UP_SLICE = 64
#: Most messages waiting in one child's catch-up (the oldest are dropped past it).
MAX_CATCH_UP = 8192
#: Seconds a catch-up waits when the child's link went away under it (it is
#: being replaced or dialed again; the tree drops the child if it is down).
CATCH_UP_RETRY = 0.1


@dataclass(slots=True)
class StreamStats:
    """Counters of one stream on one node."""

    chunks_received: int = 0
    chunks_sent: int = 0
    bytes_sent: int = 0
    #: Chunk bytes made (the broadcaster) or received new (a viewer).
    bytes_in: int = 0
    seals: int = 0
    parent_changes: int = 0
    keyframe_requests: int = 0
    packets_delivered: int = 0
    packets_dropped: int = 0
    most_children: int = 0
    parents: list[PeerId | None] = field(default_factory=list)


class StreamSession:
    """This node's part in one stream."""

    def __init__(self, service: StreamService, signed: SignedAnnouncement, slots: int,
                 rng: random.Random, tree_config: TreeConfig | None,
                 relay_config: RelayConfig | None) -> None:
        a = signed.announcement
        self.service = service
        self.signed = signed
        self.stream_id = signed.stream_id
        self.tree = RelayTree(service.peer_id, a.broadcaster, slots, rng,
                              tree_config or NODE_TREE_CONFIG)
        self.tracks = a.tracks
        video = frozenset(i for i, t in enumerate(a.tracks) if t.is_video)
        self.relay = MediaRelay(self.stream_id, a.broadcaster, relay_config, video)
        self.reassembler = Reassembler(video)
        self.packets_in, self.packets = trio.open_memory_channel[MediaPacket](PACKET_BUFFER)
        self.stats = StreamStats()
        #: At the broadcaster: called when a viewer asked for a keyframe.
        self.on_keyframe_request: Callable[[], None] | None = None
        #: Called with the new parent (``None``: detached) whenever it changes.
        self.on_parent_changed: Callable[[PeerId | None], None] | None = None
        self._next_seq = 0
        self._group: list[bytes] = []
        #: Children being backfilled in slices: what they are still owed, in order.
        self.catch_up: dict[PeerId, deque[StreamBody]] = {}
        self.closed = False

    @property
    def is_root(self) -> bool:
        return self.tree.is_root

    @property
    def relay_next_seq(self) -> int:
        """At the broadcaster: chunks made so far."""
        return self._next_seq

    # --- the broadcaster ---------------------------------------------------------

    def publish(self, packets: list[MediaPacket]) -> None:
        """Queue packets for the next seal (``flush`` sends the group)."""
        for packet in packets:
            self._group.extend(cut(packet))
            if len(self._group) >= MAX_SEAL_HASHES:
                self.flush()

    def flush(self) -> None:
        """Seal the queued chunks and send the seal, then the chunks, to the children."""
        if not self._group:
            return
        now = trio.current_time()
        first = self._next_seq
        seal = make_seal(self.service.identity, self.stream_id, first, self._group)
        self.relay.own_seal(seal)
        self.stats.seals += 1
        self._fan_out(seal)
        for i, payload in enumerate(self._group):
            chunk = Chunk(seq=first + i, payload=payload)
            self.relay.chunk(chunk, now)
            self.tree.chunk(chunk.seq, now)
            self.stats.bytes_in += len(payload)
            self._fan_out(chunk)
        self._next_seq += len(self._group)
        self._group = []

    # --- messages ----------------------------------------------------------------------

    def _fan_out(self, message: StreamBody) -> None:
        children = list(self.tree.children)
        if not children:
            return
        if self.catch_up:
            for child in [c for c in children if c in self.catch_up]:
                owed = self.catch_up[child]
                owed.append(message)
                if len(owed) > MAX_CATCH_UP:
                    owed.popleft()
            children = [c for c in children if c not in self.catch_up]
        if children:
            self.service.driver.send_to_each(children, StreamMessage(self.stream_id, message))
        if isinstance(message, Chunk):
            self.stats.chunks_sent += len(children)
            self.stats.bytes_sent += len(message.payload) * len(children)
        self.stats.most_children = max(self.stats.most_children, len(children))

    def handle(self, peer: PeerId, message: StreamBody, now: float) -> None:
        kind = type(message)
        if kind is Chunk:
            if peer == self.tree.parent:
                self._on_chunk(message, now)  # type: ignore[arg-type]
        elif kind is Seal:
            if peer == self.tree.parent and self.relay.seal(message):  # type: ignore[arg-type]
                self._fan_out(message)
        elif kind is KeyframeRequest:
            if peer in self.tree.children:
                self._want_keyframe(now)
        else:
            self.apply(self.tree.handle_message(peer, message, now))  # type: ignore[arg-type]

    def _on_chunk(self, chunk: Chunk, now: float) -> None:
        if not self.relay.chunk(chunk, now):
            return
        self.tree.chunk(chunk.seq, now)
        self.stats.chunks_received += 1
        self.stats.bytes_in += len(chunk.payload)
        self._fan_out(chunk)
        packets, want = self.reassembler.push(chunk.seq, chunk.payload, now)
        self._deliver(packets)
        if want:
            self._want_keyframe(now)

    def poll(self, now: float) -> None:
        packets, want = self.reassembler.poll(now)
        self._deliver(packets)
        if want:
            self._want_keyframe(now)

    def _deliver(self, packets: list[MediaPacket]) -> None:
        for packet in packets:
            try:
                self.packets_in.send_nowait(packet)
                self.stats.packets_delivered += 1
            except trio.WouldBlock:
                self.stats.packets_dropped += 1

    def _want_keyframe(self, now: float) -> None:
        if not self.relay.keyframe_request(now):
            return
        self.stats.keyframe_requests += 1
        if self.is_root:
            if self.on_keyframe_request is not None:
                self.on_keyframe_request()
        elif self.tree.parent is not None:
            self.service.send(self, self.tree.parent, KeyframeRequest())

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.service.send(self, action.peer, action.message)
            elif isinstance(action, SetTimer):
                self.service.set_timer(self, action.at, action.timer)
            elif isinstance(action, Backfill):
                self._backfill(action.peer, self.relay.backfill(action.after))
            elif isinstance(action, CloseLink):
                log.info("stream: closing the link to %s", action.peer)
                self.service.release(self, action.peer)
            elif isinstance(action, Evicted):
                log.warning("stream: evicted %s for stalling its children", action.peer)
            else:  # ParentChanged
                log.info("stream: parent %s", action.parent)
                self.stats.parent_changes += 1
                self.stats.parents.append(action.parent)
                del self.stats.parents[:-64]
                if self.on_parent_changed is not None:
                    self.on_parent_changed(action.parent)

    def _backfill(self, peer: PeerId, messages: list[Seal | Chunk]) -> None:
        """Send a newly adopted child what it missed: at once if it is short, else paced."""
        owed = self.catch_up.get(peer)
        if owed is not None:  # re-adopted while catching up: it says what it holds now
            owed.clear()
            owed.extend(messages)
        elif len(messages) <= CATCH_UP_SLICE:
            for message in messages:
                self.service.send(self, peer, message)
        else:
            log.info("stream: backfilling %s with %d messages, paced", peer, len(messages))
            self.catch_up[peer] = deque(messages)
            self.service.start_catch_up(self, peer)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.apply(self.tree.leave(trio.current_time()))
            self.packets_in.close()


class StreamService:
    """All streams of one node (see the module docstring)."""

    def __init__(self, driver: RoutedDriver, identity: Identity, rng: random.Random) -> None:
        self.driver = driver
        self.identity = identity
        self.peer_id = identity.peer_id
        self.rng = rng
        self.sessions: dict[bytes, StreamSession] = {}
        self._timers: list[tuple[float, int, StreamSession, Timer | None]] = []
        self._timer_seq = 0
        self._timer_changed = trio.Event()
        self._nursery: trio.Nursery | None = None

    def open(self, signed: SignedAnnouncement, slots: int, *,
             tree_config: TreeConfig | None = None,
             relay_config: RelayConfig | None = None) -> StreamSession:
        session = StreamSession(self, signed, slots, random.Random(self.rng.getrandbits(64)),
                                tree_config, relay_config)
        if session.stream_id in self.sessions:
            raise StreamUsageError("this node already takes part in that stream")
        self.sessions[session.stream_id] = session
        session.apply(session.tree.start(trio.current_time()))
        self.set_timer(session, trio.current_time() + 0.1, None)
        return session

    def close(self, session: StreamSession) -> None:
        session.close()
        self.sessions.pop(session.stream_id, None)

    def keeps_link(self, peer: PeerId) -> bool:
        """Whether a stream's tree needs the link to ``peer`` (the node's link layer
        asks before another layer closes a link: ``Runner.link_keepers``)."""
        return any(not s.closed and s.tree.needs_link(peer) for s in self.sessions.values())

    def release(self, session: StreamSession, peer: PeerId) -> None:
        """``session``'s tree closed its link to ``peer``: close the link unless another
        stream's tree still holds it (or the overlay keeps it as a neighbour)."""
        if not any(other is not session and not other.closed and other.tree.has_link(peer)
                   for other in self.sessions.values()):
            self.driver.release(peer)

    def send(self, session: StreamSession, peer: PeerId, message: StreamBody) -> None:
        self.driver.send(peer, StreamMessage(session.stream_id, message))

    def set_timer(self, session: StreamSession, at: float, timer: Timer | None) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (at, self._timer_seq, session, timer))
        self._timer_changed.set()

    def handle_message(self, peer: PeerId, message: StreamMessage, now: float) -> None:
        """A stream message from ``peer`` (decoded by the link layer with ``codec.CODEC``);
        one for a stream this node does not take part in is ignored."""
        session = self.sessions.get(message.stream_id)
        if session is not None and not session.closed:
            session.handle(peer, message.body, now)

    def handle_link_down(self, peer: PeerId, now: float) -> None:
        """The link to ``peer`` is gone: every tree it was part of repairs."""
        for session in list(self.sessions.values()):
            if not session.closed:
                session.apply(session.tree.handle_link_down(peer, now))

    def start_catch_up(self, session: StreamSession, peer: PeerId) -> None:
        if self._nursery is None:  # not running: nothing can be paced
            session.catch_up.pop(peer, None)
            return
        self._nursery.start_soon(self._catch_up, session, peer)

    async def _catch_up(self, session: StreamSession, peer: PeerId) -> None:
        """Send ``peer`` what it is owed, a slice per write of its link, until it has
        caught up (then live messages go to it directly again) or is no longer a child.

        A link that went away under a slice (replaced by a new connection, or
        down: then the tree drops the child) is waited for, not given up on:
        giving up dropped what the child was owed, and the live messages after
        it went straight out, past a hole its reassembler skipped after 1 s
        (10 s of video lost at load 30 over WebRTC)."""
        owed = session.catch_up[peer]
        try:
            while owed and not session.closed and peer in session.tree.children:
                for _ in range(min(len(owed), CATCH_UP_SLICE)):
                    self.send(session, peer, owed.popleft())
                if owed and not await self.driver.flush(peer):
                    await trio.sleep(CATCH_UP_RETRY)
        finally:
            if session.catch_up.get(peer) is owed:
                del session.catch_up[peer]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire the cores' timers (and poll reassembly every 0.1 s); pace catch-ups."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started()
                await self._run_timers()
            finally:
                self._nursery = None

    async def _run_timers(self) -> None:
        while True:
            self._timer_changed = trio.Event()
            if not self._timers:
                await self._timer_changed.wait()
                continue
            at = self._timers[0][0]
            with trio.move_on_at(at):
                await self._timer_changed.wait()
            now = trio.current_time()
            while self._timers and self._timers[0][0] <= now:
                _, _, session, timer = heapq.heappop(self._timers)
                if session.closed:
                    continue
                if timer is None:
                    session.poll(now)
                    self.set_timer(session, now + 0.1, None)
                else:
                    session.apply(session.tree.handle_timer(timer, now))
