# taiinet: sans-io core
"""The media half of a relay: check chunks against seals, keep a short buffer, backfill.

Theory of operation
-------------------
The broadcaster sends a ``Seal`` (signed hashes of a group of chunks) and then
the chunks it covers; every relay forwards both unchanged to its children.
``MediaRelay`` checks each seal's signature once and each chunk's hash as it
arrives (``taiinet.stream.seal``), so a relay only ever forwards chunks the
broadcaster made: a seal that does not verify or a chunk that does not match
its hash is ``BadMedia``, blamed on the peer that sent it (its own parent,
which should have checked it).  A chunk that comes before any seal covering
it cannot be checked and is dropped (counted in ``unsealed``).

It keeps the last ``buffer_seconds`` of checked chunks (and at most
``max_chunks`` / ``max_bytes``) with the seals covering them.  When the tree
core adopts a child (``Backfill(after)``), ``backfill`` lists what to send
it: a re-adopted child (``after`` >= 0) gets every buffered chunk after the
last one it holds, a newcomer (``after`` = -1) the chunks from the newest
keyframe on, each preceded by its seal.  So a repair shorter than the buffer
loses no media, and a newcomer can decode at once.

Keyframe requests travel up the tree, each relay forwarding at most one per
``keyframe_interval``; the broadcaster honours at most one per interval.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from taiinet.stream.errors import BadMedia, StreamUsageError
from taiinet.stream.messages import Chunk, Seal
from taiinet.stream.seal import chunk_hash, seal_is_valid
from taiinet.v1 import stream_pb2
from taiinet.wire.peer_id import PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayConfig:
    #: Seconds of chunks kept for backfill: a repair shorter than this loses no
    #: media.  On a loaded host a repair over WebSocket (link failure, a standby
    #: join over a freshly dialed link) took 3-6 s; over WebRTC a killed parent
    #: is noticed only by the peer timeout, and standby peers killed with it
    #: each cost a dial that fails after seconds: repairs took 10-12 s at load
    #: 30, so 20 s (~600 KB at 250 kbit/s).
    buffer_seconds: float = 20.0
    #: Most chunks and bytes kept, whatever their age.
    max_chunks: int = 4096
    max_bytes: int = 16 * 1024 * 1024
    #: Most seals remembered (older ones are forgotten with their chunks).
    max_seals: int = 512
    #: Seconds between two keyframe requests sent up (or honoured at the root).
    keyframe_interval: float = 1.0

    def __post_init__(self) -> None:
        if self.buffer_seconds <= 0 or self.keyframe_interval <= 0:
            raise StreamUsageError("buffer_seconds and keyframe_interval must be positive")
        if min(self.max_chunks, self.max_bytes, self.max_seals) < 1:
            raise StreamUsageError("relay bounds must be at least 1")


class MediaRelay:
    """One peer's media state for one stream (see the module docstring)."""

    __slots__ = ("_bytes", "_chunks", "_expected", "_last_keyframe_request", "_seals",
                 "broadcaster", "config", "keyframes", "stream_id", "unsealed", "video_tracks")

    def __init__(self, stream_id: bytes, broadcaster: PeerId,
                 config: RelayConfig | None = None,
                 video_tracks: frozenset[int] = frozenset({0})) -> None:
        self.stream_id = stream_id
        self.video_tracks = video_tracks
        self.broadcaster = broadcaster
        self.config = config or RelayConfig()
        #: seq -> (arrival time, payload) of checked chunks, oldest first.
        self._chunks: OrderedDict[int, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        #: first seq -> seal, oldest first; seq -> hash of the chunks not yet seen.
        self._seals: OrderedDict[int, Seal] = OrderedDict()
        self._expected: dict[int, bytes] = {}
        #: seqs of buffered chunks that start a video keyframe.
        self.keyframes: list[int] = []
        self._last_keyframe_request = float("-inf")
        #: Chunks dropped because no seal covered them.
        self.unsealed = 0

    def seal(self, seal: Seal) -> bool:
        """A seal arrived; True if it is new (forward it).  ``BadMedia`` if forged."""
        if seal.first in self._seals:
            return False
        if not seal_is_valid(self.broadcaster, self.stream_id, seal):
            raise BadMedia("a seal the broadcaster did not sign")
        self._seals[seal.first] = seal
        for i, digest in enumerate(seal.hashes):
            if seal.first + i not in self._chunks:
                self._expected[seal.first + i] = digest
        while len(self._seals) > self.config.max_seals:
            _, old = self._seals.popitem(last=False)
            for seq in range(old.first, old.first + len(old.hashes)):
                self._expected.pop(seq, None)
        return True

    def own_seal(self, seal: Seal) -> None:
        """At the broadcaster: remember a seal it made (no check needed)."""
        self._seals[seal.first] = seal
        for i, digest in enumerate(seal.hashes):
            self._expected[seal.first + i] = digest

    def chunk(self, chunk: Chunk, now: float) -> bool:
        """A chunk arrived; True if it is new and checked (deliver and forward it).

        ``BadMedia`` if it does not match its seal.
        """
        seq = chunk.seq
        digest = self._expected.get(seq)
        if digest is None:
            if seq not in self._chunks:
                self.unsealed += 1
            return False
        if chunk_hash(seq, chunk.payload) != digest:
            raise BadMedia(f"chunk {seq} does not match its seal")
        del self._expected[seq]
        self._store(seq, chunk.payload, now)
        return True

    def _store(self, seq: int, payload: bytes, now: float) -> None:
        chunks = self._chunks
        chunks[seq] = (now, payload)  # arrival order; backfill sorts by seq
        self._bytes += len(payload)
        if _starts_keyframe(payload, self.video_tracks):
            self.keyframes.append(seq)
        cfg = self.config
        oldest = now - cfg.buffer_seconds
        while chunks and (len(chunks) > cfg.max_chunks or self._bytes > cfg.max_bytes
                          or next(iter(chunks.values()))[0] < oldest):
            _, (_, data) = chunks.popitem(last=False)
            self._bytes -= len(data)
        if chunks:
            low = min(chunks)
            self.keyframes = [k for k in self.keyframes if k >= low]
        while self._seals:
            first, seal = next(iter(self._seals.items()))
            end = first + len(seal.hashes)
            if len(self._seals) > 1 and chunks and end <= min(chunks):
                self._seals.popitem(last=False)
                for s in range(first, end):
                    self._expected.pop(s, None)
            else:
                break

    def backfill(self, after: int) -> list[Seal | Chunk]:
        """What to send a newly adopted child whose newest chunk is ``after`` (-1: none)."""
        start = (self.keyframes[-1] if self.keyframes else None) if after < 0 else after + 1
        out: list[Seal | Chunk] = []
        seals = list(self._seals.values())
        # The seals of the chunks it gets, and the newest (it covers chunks still to come).
        for seal in seals:
            end = seal.first + len(seal.hashes)
            if (start is not None and end > start) or seal is seals[-1]:
                out.append(seal)
        if start is not None:
            out.extend(Chunk(seq=seq, payload=self._chunks[seq][1])
                       for seq in sorted(s for s in self._chunks if s >= start))
            out.sort(key=lambda m: m.first if isinstance(m, Seal) else m.seq + 0.5)
        return out

    def keyframe_request(self, now: float) -> bool:
        """A keyframe is wanted (by us or a child); True if it should go up (or be made) now."""
        if now - self._last_keyframe_request < self.config.keyframe_interval:
            return False
        self._last_keyframe_request = now
        return True


def _starts_keyframe(payload: bytes, video: frozenset[int]) -> bool:
    part = stream_pb2.MediaPart()
    try:
        part.ParseFromString(payload)
    except DecodeError:  # sealed by the broadcaster, but not media we know: not a keyframe
        return False
    return part.keyframe and part.part == 0 and part.track in video
