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
* A viewer feeds checked chunks to a ``Reassembler`` and puts the packets on
  a bounded channel (a slow reader loses packets, counted, never blocks the
  relay); when it wants a keyframe it sends ``KeyframeRequest`` to its parent.
* A keyframe request from a child goes up (rate limited); at the root it
  calls the broadcaster's ``on_keyframe_request``.
* A malformed message or bad media raises (the link is dropped, the tree repairs).
"""

from __future__ import annotations

import heapq
import logging
import random
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
#: dialed through the signal mesh (a second or more), and a loaded host may
#: delay a heartbeat; a killed peer's link reports its failure at once anyway.
NODE_TREE_CONFIG = TreeConfig(join_timeout=3.0, peer_timeout=3.0, orphan_grace=4.0)


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
        self._next_seq = 0
        self._group: list[bytes] = []
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
                for message in self.relay.backfill(action.after):
                    self.service.send(self, action.peer, message)
            elif isinstance(action, CloseLink):
                # Kept open: the tree's peers are few (its parent, children and the
                # peers it asked to join), and re-dialing one through the signal mesh
                # costs seconds on a loaded host; the driver closes links that fail.
                pass
            elif isinstance(action, Evicted):
                log.warning("stream: evicted %s for stalling its children", action.peer)
            else:  # ParentChanged
                self.stats.parent_changes += 1
                self.stats.parents.append(action.parent)
                del self.stats.parents[:-64]

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

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire the cores' timers (and poll reassembly every 0.1 s)."""
        task_status.started()
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
