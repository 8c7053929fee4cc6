"""Media over the relay tree: backfill after a repair, seals, chunk checks, reassembly."""

from __future__ import annotations

import random

import pytest

from taiinet.media.packets import MediaPacket, Reassembler, cut
from taiinet.sim.network import sim_peer_ids
from taiinet.sim.stream import StreamSimConfig, simulate
from taiinet.stream import codec
from taiinet.stream.actions import Backfill
from taiinet.stream.errors import BadMedia
from taiinet.stream.messages import Chunk, Join, KeyframeRequest, Seal
from taiinet.stream.relay import MediaRelay
from taiinet.stream.seal import make_seal
from taiinet.stream.tree import RelayTree
from taiinet.wire.identity import Identity

STREAM = bytes(32)
BROADCASTER = Identity.from_seed(bytes(32))
OTHER = Identity.from_seed(bytes([1]) * 32)


def test_a_parent_backfills_a_repaired_child_from_the_chunk_it_last_held() -> None:
    root, viewer = BROADCASTER.peer_id, sim_peer_ids(1)[0]
    tree = RelayTree(root, root, 2, random.Random(0))
    tree.start(0.0)
    tree.chunk(40, 0.0)
    out = tree.handle_message(viewer, Join(slots=1, have=31), 0.1)
    assert Backfill(peer=viewer, after=31) in out


def test_backfill_cuts_repair_loss_at_churn() -> None:
    """Repairs after crashes skip chunks without the buffer; with it, every viewer is served."""
    config = StreamSimConfig(viewers=300, seed=3, churn=0.05, duration=8.0)
    without = simulate(StreamSimConfig(viewers=300, seed=3, churn=0.05, duration=8.0,
                                       buffer=0.0))
    with_buffer = simulate(config)
    assert with_buffer.served == 1.0
    assert with_buffer.served > without.served
    assert with_buffer.delay_p99 < 2.0


def _group(first: int, packets: list[MediaPacket]) -> tuple[Seal, list[Chunk]]:
    payloads = [p for packet in packets for p in cut(packet)]
    seal = make_seal(BROADCASTER, STREAM, first, payloads)
    return seal, [Chunk(seq=first + i, payload=p) for i, p in enumerate(payloads)]


def test_a_relay_takes_sealed_chunks_and_refuses_forgeries() -> None:
    relay = MediaRelay(STREAM, BROADCASTER.peer_id)
    seal, chunks = _group(0, [MediaPacket(track=0, pts=0, keyframe=True, data=b"k" * 40_000)])
    assert len(chunks) == 3
    assert relay.seal(seal) and not relay.seal(seal)
    assert relay.chunk(chunks[0], 0.0) and not relay.chunk(chunks[0], 0.0)
    with pytest.raises(BadMedia):
        relay.chunk(Chunk(seq=1, payload=b"forged"), 0.0)
    forged = make_seal(OTHER, STREAM, 10, [b"x"])
    with pytest.raises(BadMedia):
        relay.seal(forged)
    assert not relay.chunk(Chunk(seq=99, payload=b"unsealed"), 0.0)
    assert relay.unsealed == 1


def test_backfill_sends_a_newcomer_the_last_keyframe_and_a_returning_child_what_it_missed() -> None:
    relay = MediaRelay(STREAM, BROADCASTER.peer_id)
    seq = 0
    for n in range(6):
        seal, chunks = _group(seq, [MediaPacket(track=0, pts=n, keyframe=n % 3 == 0,
                                                data=b"v"), MediaPacket(track=1, pts=n,
                                                                        keyframe=True, data=b"a")])
        relay.own_seal(seal)
        for chunk in chunks:
            relay.chunk(chunk, n * 0.1)
        seq += len(chunks)
    newcomer = relay.backfill(-1)
    assert isinstance(newcomer[0], Seal)
    assert [m.seq for m in newcomer if isinstance(m, Chunk)] == [6, 7, 8, 9, 10, 11]
    returning = relay.backfill(8)
    assert [m.seq for m in returning if isinstance(m, Chunk)] == [9, 10, 11]
    assert [m.first for m in returning if isinstance(m, Seal)] == [8, 10]


def test_reassembly_in_order_and_a_keyframe_wanted_after_a_gap() -> None:
    packets = [MediaPacket(track=0, pts=i, keyframe=i in (0, 4), data=bytes([i]) * 20_000)
               for i in range(6)]
    payloads = [p for packet in packets for p in cut(packet)]  # 2 chunks each
    r = Reassembler(frozenset({0}), gap_wait=1.0)
    got, want = r.push(1, payloads[1], 0.0)
    got, want = r.push(0, payloads[0], 0.0)
    assert got == [] and not want  # chunk 0 arrived after 1: _next is 1, a stray tail
    r = Reassembler(frozenset({0}), gap_wait=1.0)
    out: list[MediaPacket] = []
    for seq in [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11]:  # chunk 4 (packet 2's head) lost
        got, want = r.push(seq, payloads[seq], 0.1)
        out += got
    assert [p.pts for p in out] == [0, 1] and not want
    got, want = r.poll(1.5)  # the gap is given up: packet 3 is not a keyframe
    assert want and [p.pts for p in got] == [4, 5]
    assert out[0].data == packets[0].data


def test_media_messages_round_trip_as_link_items_of_protocol_14() -> None:
    from taiinet.link.registry import ProtocolRegistry
    from taiinet.stream.messages import StreamMessage
    from taiinet.wire.framing import decode_link_frame, join_items

    registry = ProtocolRegistry()
    got: list[tuple[str, StreamMessage]] = []
    down: list[str] = []
    registry.register(codec.CODEC, lambda peer, m, now: got.append((peer, m)),
                      link_down=lambda peer, now: down.append(peer))
    seal, chunks = _group(7, [MediaPacket(track=1, pts=3, keyframe=True, data=b"opus")])
    sent = [StreamMessage(STREAM, m)
            for m in (seal, chunks[0], KeyframeRequest(), Join(slots=3, have=12))]
    items = decode_link_frame(join_items([registry.encode(m) for m in sent]))
    assert [protocol for protocol, _ in items] == [codec.PROTOCOL_ID] * 4 == [14] * 4
    for protocol, body in items:
        registry.dispatch("peer", protocol, body, 0.0)
    assert got == [("peer", m) for m in sent]
    registry.link_down("peer", 1.0)
    assert down == ["peer"]
    with pytest.raises(codec.StreamDecodeError):
        registry.dispatch("peer", codec.PROTOCOL_ID, codec.encode(
            STREAM, Seal(first=0, hashes=(b"x",), signature=bytes(64))), 2.0)


def test_an_announcement_carries_its_tracks_and_refuses_unknown_codecs() -> None:
    from taiinet.stream import announce
    from taiinet.stream.codec import Track
    from taiinet.stream.errors import StreamDecodeError
    from taiinet.v1 import stream_pb2

    tracks = (Track(codec="vp8", width=320, height=240, rate=15),
              Track(codec="opus", rate=48_000, channels=1, extradata=b"OpusHead" + bytes(11)))
    signed = announce.sign(BROADCASTER, announce.Announcement(
        name="demo", broadcaster=BROADCASTER.peer_id, started=1, seq=0, tracks=tracks))
    assert announce.verify(signed.raw).announcement.tracks == tracks
    bad = stream_pb2.StreamAnnouncement(name="x", broadcaster=BROADCASTER.peer_id,
                                        tracks=[stream_pb2.Track(codec="gif", rate=1)])
    with pytest.raises(StreamDecodeError):
        codec.decode_tracks(bad)


def test_the_test_pattern_written_by_stream_copy_decodes_and_a_file_source_is_retimed(
        tmp_path: object) -> None:
    av = pytest.importorskip("av")
    from pathlib import Path

    from taiinet.media.source import Encoder, file_source, test_pattern
    from taiinet.media.writer import MediaWriter

    path = str(Path(str(tmp_path)) / "pattern.mkv")
    encoder = Encoder(160, 120, 10)
    writer = MediaWriter(path, encoder.tracks)
    for _, packets in test_pattern(encoder, 2.0):
        for packet in packets:
            writer.write(packet)
    writer.close()
    with av.open(path) as container:
        frames = [f for f in container.decode(video=0)]
    assert len(frames) == 20 and frames[0].width == 160
    counts = {0: 0, 1: 0}
    for _, packets in file_source(path, Encoder(160, 120, 5), None):
        for packet in packets:
            counts[packet.track] += 1
    assert 9 <= counts[0] <= 11  # 2 s at 5 fps, whatever the source's rate
    assert counts[1] >= 90  # 20 ms Opus frames
