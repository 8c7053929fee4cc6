# taiinet: sans-io core
"""Encoded media packets <-> chunk payloads (``MediaPart``), and in-order reassembly.

A packet larger than ``MAX_PART`` bytes is cut into up to ``MAX_PARTS`` parts
carried by chunks of consecutive ``seq``.  ``Reassembler`` takes checked
chunks in any order, releases packets in ``seq`` order, waits at most
``gap_wait`` seconds for a missing chunk before skipping it, and then drops
video until the next keyframe (a decoder cannot use frames that refer to
lost ones), telling the caller to ask for a keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from taiinet.stream.errors import StreamDecodeError, StreamUsageError
from taiinet.v1 import stream_pb2

#: Largest piece of a packet in one chunk.
MAX_PART = 16 * 1024
#: Most parts of one packet (so a packet is at most 1 MiB).
MAX_PARTS = 64
#: Chunks held waiting for a missing one before it is given up.
MAX_PENDING = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaPacket:
    """One encoded packet of track ``track`` (an index into the announcement's tracks)."""

    track: int
    pts: int
    keyframe: bool
    data: bytes


def cut(packet: MediaPacket) -> list[bytes]:
    """The chunk payloads carrying ``packet``, in order."""
    data = packet.data
    pieces = [data[i:i + MAX_PART] for i in range(0, len(data), MAX_PART)] or [b""]
    if len(pieces) > MAX_PARTS:
        raise StreamUsageError(f"a packet of {len(data)} bytes needs more than {MAX_PARTS} parts")
    return [stream_pb2.MediaPart(track=packet.track, pts=packet.pts, keyframe=packet.keyframe,
                                 part=i, parts=len(pieces), data=piece).SerializeToString()
            for i, piece in enumerate(pieces)]


def _part(payload: bytes) -> stream_pb2.MediaPart:
    part = stream_pb2.MediaPart()
    try:
        part.ParseFromString(payload)
    except DecodeError:
        raise StreamDecodeError("undecodable MediaPart") from None
    if not 1 <= part.parts <= MAX_PARTS or part.part >= part.parts or len(part.data) > MAX_PART:
        raise StreamDecodeError("MediaPart out of range")
    return part


class Reassembler:
    """Checked chunks in, packets out in ``seq`` order (see the module docstring)."""

    __slots__ = ("_gap_since", "_need_keyframe", "_next", "_pending", "_video", "_want", "gap_wait",
                 "lost_chunks", "skipped_packets")

    def __init__(self, video_tracks: frozenset[int], gap_wait: float = 1.0) -> None:
        self._video = video_tracks
        self.gap_wait = gap_wait
        self._next: int | None = None
        self._pending: dict[int, bytes] = {}
        self._gap_since: float | None = None
        self._need_keyframe = True
        self._want = False
        #: Chunks given up on, and packets dropped while waiting for a keyframe.
        self.lost_chunks = 0
        self.skipped_packets = 0

    def push(self, seq: int, payload: bytes, now: float) -> tuple[list[MediaPacket], bool]:
        """Take a chunk; return the packets now complete, and True if a keyframe is wanted."""
        if self._next is None:
            self._next = seq
        if seq >= self._next and len(self._pending) < MAX_PENDING:
            self._pending[seq] = payload
        return self.poll(now)

    def poll(self, now: float) -> tuple[list[MediaPacket], bool]:
        """Release what is ready; give up a gap older than ``gap_wait``."""
        out: list[MediaPacket] = []
        pending = self._pending
        while pending and self._next is not None:
            packet, used = self._take(self._next)
            if used:
                self._gap_since = None
                self._next += used
                if packet is not None:
                    out.extend(self._admit(packet))
                continue
            if self._gap_since is None:
                self._gap_since = now
            if now - self._gap_since < self.gap_wait and len(pending) < MAX_PENDING:
                break
            # Give up the missing chunk(s): jump to the next packet start.
            self._gap_since = None
            nxt = min(pending)
            self.lost_chunks += max(0, nxt - self._next)
            self._next = nxt
            self._drop_partial()
            if self._video:
                self._need_keyframe = True
                self._want = True
        want, self._want = self._want, False
        return out, want

    def _drop_partial(self) -> None:
        """At ``_next`` after a gap: skip parts of a packet whose start was lost."""
        assert self._next is not None
        while self._next in self._pending:
            part = _part(self._pending[self._next])
            if part.part == 0:
                return
            del self._pending[self._next]
            self._next += 1

    def _take(self, seq: int) -> tuple[MediaPacket | None, int]:
        """The packet starting at ``seq`` if all its parts are here, and chunks used (0: wait)."""
        first = self._pending.get(seq)
        if first is None:
            return None, 0
        head = _part(first)
        if head.part != 0:  # a stray tail part: drop it
            del self._pending[seq]
            return None, 1
        data = [head.data]
        for i in range(1, head.parts):
            payload = self._pending.get(seq + i)
            if payload is None:
                return None, 0
            part = _part(payload)
            if part.part != i or part.track != head.track:
                raise StreamDecodeError("MediaPart sequence broken")
            data.append(part.data)
        for i in range(head.parts):
            del self._pending[seq + i]
        return MediaPacket(track=head.track, pts=head.pts, keyframe=head.keyframe,
                           data=b"".join(data)), head.parts

    def _admit(self, packet: MediaPacket) -> list[MediaPacket]:
        if packet.track in self._video:
            if self._need_keyframe and not packet.keyframe:
                self.skipped_packets += 1
                self._want = True
                return []
            self._need_keyframe = False
        return [packet]
