"""Broadcast a source and record a stream in real time: what ``taiinet stream`` runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from taiinet.media.packets import MediaPacket
from taiinet.media.source import Encoder, file_source, test_pattern
from taiinet.media.writer import MediaWriter

if TYPE_CHECKING:
    from taiinet.node.node import Node
    from taiinet.wire.peer_id import PeerId


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastReport:
    chunks: int
    bytes_made: int
    bytes_sent: int
    most_children: int
    slots: int
    keyframe_requests: int

    @property
    def upload_streams(self) -> float:
        """Chunk bytes sent / chunk bytes made: how many copies of the stream went out."""
        return self.bytes_sent / self.bytes_made if self.bytes_made else 0.0


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def broadcast(node: Node, name: str, *, file: str | None = None,
                    duration: float | None = None, slots: int = 4,
                    width: int = 320, height: int = 240, fps: int = 15,
                    stop: trio.Event | None = None) -> BroadcastReport:
    """Encode ``file`` (or the test pattern) to VP8 + Opus and broadcast it as ``name``,
    paced in real time; a frame that is late is sent at once (never skipped).  Ends
    early, with its report, once ``stop`` is set (``taiinet stream publish`` sets it
    on SIGTERM)."""
    encoder = Encoder(width, height, fps)
    source: Iterator[tuple[float, list[MediaPacket]]] = (
        test_pattern(encoder, duration) if file is None
        else file_source(file, encoder, duration))
    async with node.stream_publish(name, encoder.tracks, slots=slots) as live, \
            trio.open_nursery() as nursery:
        with trio.CancelScope() as sending:
            if stop is not None:
                nursery.start_soon(_cancel_when_set, stop, sending)
            start = trio.current_time()
            for due, packets in source:
                await trio.sleep_until(start + due)
                if live.keyframe_wanted:
                    live.keyframe_wanted = False
                    encoder.force_keyframe()
                live.send(packets)
        nursery.cancel_scope.cancel()
        stats = live.session.stats
        return BroadcastReport(chunks=live.session.relay_next_seq, bytes_made=stats.bytes_in,
                               bytes_sent=stats.bytes_sent, most_children=stats.most_children,
                               slots=slots, keyframe_requests=stats.keyframe_requests)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchReport:
    packets: dict[int, int]
    parent_changes: int
    lost_chunks: int
    skipped_packets: int
    keyframe_requests: int
    chunks: int
    #: Seconds from the first packet to the end of watching (the media a viewer
    #: should have got, if none was lost).
    watched: float
    #: True if watching ended because no media came for ``idle`` seconds.
    stopped: bool


async def watch(node: Node, name: str, out: str, *, duration: float | None = None,
                slots: int = 2, timeout: float = 30.0, idle: float = 20.0,
                on_parent: Callable[[PeerId | None], None] | None = None,
                stop: trio.Event | None = None) -> WatchReport:
    """Watch ``name`` (relaying to ``slots`` viewers) and write its media to ``out``, for
    ``duration`` seconds, until ``stop`` is set (``taiinet stream watch`` sets it on
    SIGTERM) or until no media came for ``idle`` seconds (the stream ended);
    ``on_parent`` is told every new parent (``None``: detached)."""
    async with node.stream_watch(name, slots=slots, timeout=timeout) as viewing, \
            trio.open_nursery() as nursery:
        viewing.session.on_parent_changed = on_parent
        writer = MediaWriter(out, viewing.tracks)
        counts: dict[int, int] = {}
        first: float | None = None
        stopped = False
        try:
            with trio.move_on_after(float("inf") if duration is None else duration) as window:
                if stop is not None:
                    nursery.start_soon(_cancel_when_set, stop, window)
                packets = viewing.session.packets
                while True:
                    with trio.move_on_after(idle):
                        packet = await packets.receive()
                        if first is None:
                            first = trio.current_time()
                        writer.write(packet)
                        counts[packet.track] = counts.get(packet.track, 0) + 1
                        continue
                    stopped = True
                    break
        finally:
            writer.close()
            nursery.cancel_scope.cancel()
        session = viewing.session
        return WatchReport(packets=counts, parent_changes=session.stats.parent_changes,
                           lost_chunks=session.reassembler.lost_chunks,
                           skipped_packets=session.reassembler.skipped_packets,
                           keyframe_requests=session.stats.keyframe_requests,
                           chunks=session.stats.chunks_received,
                           watched=0.0 if first is None else trio.current_time() - first,
                           stopped=stopped)
